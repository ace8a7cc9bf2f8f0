"""A corpus of hostile request bodies for the scoring routes, JSON and CSV.

A request that is wrong as a whole gets a 4xx with the error shape, never a 5xx and never
a stack trace. Inside a batch, one bad customer is an error at its index (the contract's
per-item error shape) while the others are scored; with ``?strict=true`` it is a 422.
Valid CSV in its common variants (a byte order mark, quoted fields, CRLF line ends) is
served like any other.
"""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from service.errors import MAX_DETAILS
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS, assert_error, customer
from training.job import TrainingResult

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY = 16 * 1024 * 1024
"""MAX_BODY_BYTES of the app under test: room for 100,000 customers to reach MAX_BATCH_SIZE."""
MAX_BATCH = 10_000
DEEP = 10_000

SINGLE = "/segment"
BATCH = "/segment/batch"
JSON = "application/json"
CSV = "text/csv"

CSV_HEADER = (
    "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    "Total_visits_online,Total_calls_made"
)
CSV_ROWS = ["87073,100000,2,1,1,0", "38414,50000,3,0,10,9", "17341,50000,7,1,3,4"]

MALFORMED = (400, "malformed_body")
INVALID = (422, "invalid_input")
UNSUPPORTED = (415, "unsupported_media_type")
BATCH_TOO_LARGE = (413, "batch_too_large")
BODY_TOO_LARGE = (413, "body_too_large")

LEAKS = ("Traceback", 'File "', "site-packages", "/service/", "/segmentation/")
"""What a stack trace or an internal path looks like in a response body."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the whole corpus (nothing here changes its state), keys on."""
    models = tmp_path_factory.mktemp("hostile") / "models"
    shutil.copytree(trained.path.parent, models)
    settings = settings_for(models, max_body_bytes=MAX_BODY, max_batch_size=MAX_BATCH, **KEYS)
    async with serve(settings) as http:
        http.headers["X-API-Key"] = CRM_KEY
        yield http


def raw_customer(extra: str = "", **literals: str) -> bytes:
    """A customer as JSON text, with some values replaced by raw ``literals``.

    ``extra`` is raw JSON text put first in the object (``'"key": value,'``).
    """
    values = {name: json.dumps(value) for name, value in customer().items()}
    values.update(literals)
    members = ", ".join(f'"{name}": {value}' for name, value in values.items())
    return ("{" + extra + members + "}").encode()


def raw_batch(*items: bytes) -> bytes:
    return b'{"customers": [' + b", ".join(items) + b"]}"


def csv_body(*rows: str, header: str = CSV_HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def assert_no_internals(response: httpx.Response) -> None:
    for leak in LEAKS:
        assert leak not in response.text, leak


def assert_refused(response: httpx.Response, expected: tuple[int, str]) -> dict[str, Any]:
    status, code = expected
    error = assert_error(response, status, code)
    assert_no_internals(response)
    assert response.headers["x-request-id"]
    return error


@dataclass(frozen=True)
class Hostile:
    """A whole request that must be refused with ``expected`` (status, error code)."""

    name: str
    path: str
    body: bytes
    expected: tuple[int, str]
    content_type: str | None = JSON


def cases(*hostile: Hostile) -> Any:
    return pytest.mark.parametrize("case", [pytest.param(h, id=h.name) for h in hostile])


async def post(client: httpx.AsyncClient, case: Hostile) -> httpx.Response:
    headers = {"content-type": case.content_type} if case.content_type else {}
    return await client.post(case.path, content=case.body, headers=headers)


@cases(
    Hostile("arrays-single", SINGLE, nested_arrays(DEEP), MALFORMED),
    Hostile("objects-single", SINGLE, nested_objects(DEEP), MALFORMED),
    Hostile(
        "in-a-field-single",
        SINGLE,
        raw_customer(avg_credit_limit="[" * DEEP + "]" * DEEP),
        MALFORMED,
    ),
    Hostile("arrays-batch", BATCH, nested_arrays(DEEP), MALFORMED),
    Hostile("objects-batch", BATCH, nested_objects(DEEP), MALFORMED),
    Hostile("in-the-list-batch", BATCH, raw_batch(nested_arrays(DEEP)), MALFORMED),
    Hostile("in-an-item-batch", BATCH, raw_batch(nested_objects(DEEP)), MALFORMED),
)
async def test_deeply_nested_json_is_400(client: httpx.AsyncClient, case: Hostile) -> None:
    error = assert_refused(await post(client, case), case.expected)
    assert error["details"][0]["rule"] == "json_invalid"


@cases(
    Hostile("float-overflow-single", SINGLE, raw_customer(avg_credit_limit="1e400"), INVALID),
    Hostile("negative-overflow-single", SINGLE, raw_customer(avg_credit_limit="-1e400"), INVALID),
    Hostile(
        "integer-400-digits-single", SINGLE, raw_customer(avg_credit_limit=str(10**400)), INVALID
    ),
    Hostile(
        "count-400-digits-single", SINGLE, raw_customer(total_credit_cards=str(10**400)), INVALID
    ),
    Hostile("key-400-digits-single", SINGLE, raw_customer(customer_key=str(10**400)), INVALID),
    Hostile("key-5000-digits-single", SINGLE, raw_customer(customer_key="9" * 5000), MALFORMED),
    Hostile(
        "float-overflow-batch", BATCH, raw_batch(raw_customer(avg_credit_limit="1e400")), MALFORMED
    ),
    Hostile(
        "integer-400-digits-batch",
        BATCH,
        raw_batch(raw_customer(total_visits_bank=str(10**400))),
        MALFORMED,
    ),
)
async def test_huge_number_is_4xx(client: httpx.AsyncClient, case: Hostile) -> None:
    error = assert_refused(await post(client, case), case.expected)
    assert error["details"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["avg_credit_limit", "total_calls_made"])
async def test_non_finite_literal_is_4xx_single_and_batch(
    client: httpx.AsyncClient, literal: str, field: str
) -> None:
    body = raw_customer(**{field: literal})
    single = assert_refused(await client.post(SINGLE, content=body), INVALID)
    assert single["details"][0]["field"] == field
    assert_refused(await client.post(BATCH, content=raw_batch(body)), MALFORMED)


@cases(
    Hostile("credit-limit-as-text", SINGLE, raw_customer(avg_credit_limit='"50000"'), INVALID),
    Hostile("count-as-text", SINGLE, raw_customer(total_credit_cards='"3"'), INVALID),
    Hostile("count-as-boolean", SINGLE, raw_customer(total_credit_cards="true"), INVALID),
    Hostile("count-as-list", SINGLE, raw_customer(total_calls_made="[9]"), INVALID),
    Hostile("count-as-object", SINGLE, raw_customer(total_calls_made='{"n": 9}'), INVALID),
    Hostile("customers-as-text", BATCH, b'{"customers": "all of them"}', INVALID),
    Hostile("customers-as-number", BATCH, b'{"customers": 3}', INVALID),
)
async def test_wrong_type_where_a_number_or_list_belongs_is_422(
    client: httpx.AsyncClient, case: Hostile
) -> None:
    error = assert_refused(await post(client, case), case.expected)
    assert error["details"][0]["field"]


@cases(
    Hostile("escaped-nul-in-a-name", SINGLE, raw_customer(extra='"k\\u0000": 1, '), INVALID),
    Hostile("escaped-nul-in-the-key", SINGLE, raw_customer(customer_key='"\\u0000"'), INVALID),
    Hostile("raw-nul-in-a-string", SINGLE, raw_customer(customer_key='"a\x00b"'), MALFORMED),
    Hostile("raw-nul-between-tokens", SINGLE, raw_customer(extra="\x00"), MALFORMED),
    Hostile("lone-surrogate", SINGLE, raw_customer(customer_key='"\\ud800"'), MALFORMED),
    Hostile("right-to-left-override", SINGLE, raw_customer(extra='"cl\u00e9\u202e": 1, '), INVALID),
    Hostile(
        "zero-width-joiner", SINGLE, raw_customer(extra='"avg_credit_limit\u200d": 1, '), INVALID
    ),
    Hostile("emoji-name", SINGLE, raw_customer(extra='"\U0001f4b3": 1, '), INVALID),
    Hostile("control-in-the-key", SINGLE, raw_customer(customer_key='"a\\u001bb"'), INVALID),
    Hostile("raw-nul-batch", BATCH, raw_batch(raw_customer(customer_key='"a\x00b"')), MALFORMED),
    Hostile(
        "lone-surrogate-batch", BATCH, raw_batch(raw_customer(customer_key='"\\udc00"')), MALFORMED
    ),
    Hostile("nul-in-the-envelope", BATCH, b'{"customers\\u0000": []}', INVALID),
)
async def test_unicode_and_nul_in_names_and_values_are_4xx(
    client: httpx.AsyncClient, case: Hostile
) -> None:
    assert_refused(await post(client, case), case.expected)


async def test_unicode_customer_key_is_kept_as_sent(client: httpx.AsyncClient) -> None:
    key = "客户-\u00e9-\U0001f4b3"
    response = await client.post(SINGLE, json=customer(customer_key=key))
    assert response.status_code == 200, response.text
    assert response.json()["customer_key"] == key


@cases(
    Hostile("xml", BATCH, b"<customers/>", UNSUPPORTED, "application/xml"),
    Hostile("plain-text", BATCH, raw_batch(raw_customer()), UNSUPPORTED, "text/plain"),
    Hostile("form", BATCH, b"customers=1", UNSUPPORTED, "application/x-www-form-urlencoded"),
    Hostile("image", BATCH, b"\x89PNG\r\n\x1a\n", UNSUPPORTED, "image/png"),
    Hostile("nonsense", BATCH, raw_batch(raw_customer()), UNSUPPORTED, "no/such; q=\x7f"),
    Hostile("csv-to-single", SINGLE, csv_body(*CSV_ROWS), UNSUPPORTED, CSV),
    Hostile("plain-text-to-single", SINGLE, raw_customer(), UNSUPPORTED, "text/plain"),
    Hostile("form-to-single", SINGLE, b"avg_credit_limit=1", UNSUPPORTED, "multipart/form-data"),
    Hostile(
        "multipart-without-boundary", BATCH, b"--x--", (400, "bad_request"), "multipart/form-data"
    ),
    Hostile(
        "multipart-garbage",
        BATCH,
        b"garbage",
        (400, "bad_request"),
        "multipart/form-data; boundary=x",
    ),
    Hostile(
        "multipart-without-a-file",
        BATCH,
        b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nnot a file\r\n--x--\r\n',
        INVALID,
        "multipart/form-data; boundary=x",
    ),
)
async def test_wrong_content_type_is_4xx(client: httpx.AsyncClient, case: Hostile) -> None:
    assert_refused(await post(client, case), case.expected)


@cases(
    Hostile("single", SINGLE, b"", MALFORMED),
    Hostile("single-without-type", SINGLE, b"", MALFORMED, None),
    Hostile("batch-json", BATCH, b"", MALFORMED),
    Hostile("batch-without-type", BATCH, b"", MALFORMED, None),
    Hostile("batch-csv", BATCH, b"", INVALID, CSV),
    Hostile("batch-csv-blank-lines", BATCH, b"\n\r\n\n", INVALID, CSV),
    Hostile("single-whitespace", SINGLE, b" \t\r\n", MALFORMED),
    Hostile("single-null", SINGLE, b"null", INVALID),
    Hostile("batch-null", BATCH, b"null", INVALID),
    Hostile("batch-empty-object", BATCH, b"{}", INVALID),
)
async def test_empty_body_is_4xx(client: httpx.AsyncClient, case: Hostile) -> None:
    assert_refused(await post(client, case), case.expected)


@cases(
    Hostile("single", SINGLE, b'{"customer_key": "\xff\xfe"}', MALFORMED),
    Hostile("batch-json", BATCH, b'{"customers": ["\xc3\x28"]}', MALFORMED),
    Hostile("batch-csv-cell", BATCH, csv_body() + b"1,\xff00,2,1,1,0\n", MALFORMED, CSV),
    Hostile(
        "batch-csv-utf16",
        BATCH,
        "\ufeff".encode("utf-16-le") + CSV_HEADER.encode("utf-16-le"),
        MALFORMED,
        CSV,
    ),
)
async def test_invalid_utf8_is_400(client: httpx.AsyncClient, case: Hostile) -> None:
    assert_refused(await post(client, case), case.expected)


@pytest.mark.parametrize("path", [SINGLE, BATCH])
async def test_json_with_a_byte_order_mark_is_400(client: httpx.AsyncClient, path: str) -> None:
    """JSON over the network carries no BOM (RFC 8259 8.1); CSV may, see below."""
    body = raw_customer() if path == SINGLE else raw_batch(raw_customer())
    error = assert_refused(await client.post(path, content=b"\xef\xbb\xbf" + body), MALFORMED)
    assert error["details"][0]["rule"] == "json_invalid"


@cases(
    Hostile(
        "missing-column",
        BATCH,
        csv_body("1,1000,2,1,1", header=CSV_HEADER.rsplit(",", 1)[0]),
        INVALID,
        CSV,
    ),
    Hostile(
        "extra-column",
        BATCH,
        csv_body("1,1000,2,1,1,0,x", header=CSV_HEADER + ",Income"),
        INVALID,
        CSV,
    ),
    Hostile(
        "repeated-column",
        BATCH,
        csv_body("1,1000,2,1,1,0,1", header=CSV_HEADER + ",Total_calls_made"),
        INVALID,
        CSV,
    ),
    Hostile(
        "nul-in-a-column-name",
        BATCH,
        csv_body(*CSV_ROWS, header=CSV_HEADER.replace("Key", "Key\x00")),
        INVALID,
        CSV,
    ),
    Hostile("not-a-header", BATCH, csv_body(*CSV_ROWS, header=CSV_ROWS[0]), INVALID, CSV),
    Hostile("json-sent-as-csv", BATCH, raw_batch(raw_customer()), INVALID, CSV),
    Hostile(
        "cell-over-the-csv-field-limit",
        BATCH,
        csv_body("1," + "9" * 200_000 + ",2,1,1,0"),
        MALFORMED,
        CSV,
    ),
    Hostile(
        "header-over-the-csv-field-limit", BATCH, csv_body(header="a" * 200_000), MALFORMED, CSV
    ),
    Hostile(
        "unclosed-quote-over-the-field-limit", BATCH, csv_body('"' + "1," * 100_000), MALFORMED, CSV
    ),
)
async def test_malformed_csv_is_4xx(client: httpx.AsyncClient, case: Hostile) -> None:
    error = assert_refused(await post(client, case), case.expected)
    assert error["details"]


async def test_csv_of_100000_rows_is_413_naming_the_limit(client: httpx.AsyncClient) -> None:
    body = csv_body(*(CSV_ROWS * 33_334))
    assert len(body) < MAX_BODY
    response = await client.post(BATCH, content=body, headers={"content-type": CSV})
    error = assert_refused(response, BATCH_TOO_LARGE)
    assert f"more than {MAX_BATCH} customers" in error["message"]  # counting stopped there


async def test_json_of_100000_customers_is_413_naming_the_limit(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"customers": [customer()] * 100_000})
    assert len(body) < MAX_BODY
    error = assert_refused(await client.post(BATCH, content=body), BATCH_TOO_LARGE)
    assert "100000 customers" in error["message"]


@pytest.mark.parametrize("path", [SINGLE, BATCH])
async def test_body_one_byte_over_the_limit_is_413_and_at_the_limit_is_read(
    client: httpx.AsyncClient, path: str
) -> None:
    valid = raw_customer() if path == SINGLE else raw_batch(raw_customer())
    at_limit = valid + b" " * (MAX_BODY - len(valid))
    served = await client.post(path, content=at_limit)
    assert served.status_code == 200, served.text
    assert served.json()["model_version"]
    error = assert_refused(await client.post(path, content=at_limit + b" "), BODY_TOO_LARGE)
    assert str(MAX_BODY) in error["message"]


@cases(
    Hostile("key", SINGLE, raw_customer(customer_key=json.dumps("k" * (MAX_BODY - 500))), INVALID),
    Hostile("whitespace", SINGLE, b" " * (MAX_BODY - 1), MALFORMED),
    Hostile("string", BATCH, json.dumps("x" * (MAX_BODY - 500)).encode(), INVALID),
)
async def test_huge_body_under_the_limit_is_refused_briefly(
    client: httpx.AsyncClient, case: Hostile
) -> None:
    assert len(case.body) < MAX_BODY
    response = await post(client, case)
    assert_refused(response, case.expected)
    # Nothing of the offending value is echoed back.
    assert len(response.content) < 2_000


async def test_huge_unknown_field_in_a_batch_item_is_answered_briefly(
    client: httpx.AsyncClient,
) -> None:
    item = raw_customer(extra=f'"x": "{"x" * (MAX_BODY - 500)}", ')
    response = await client.post(BATCH, content=raw_batch(item))
    assert response.status_code == 200, response.text
    error = response.json()["results"][0]["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0] == {
        "field": "x",
        "rule": "extra_forbidden",
        "message": "Extra inputs are not permitted",
    }
    assert len(response.content) < 2_000


@pytest.mark.parametrize("path", [SINGLE, BATCH])
async def test_many_unknown_fields_get_a_bounded_list_of_details(
    client: httpx.AsyncClient, path: str
) -> None:
    unknown = "".join(f'"field_{n}": {n}, ' for n in range(5_000))
    body = raw_customer(extra=unknown)
    response = await client.post(path, content=body if path == SINGLE else raw_batch(body))
    if path == SINGLE:
        error = assert_refused(response, INVALID)
    else:
        assert response.status_code == 200, response.text
        error = response.json()["results"][0]["error"]
    assert len(error["details"]) == MAX_DETAILS + 1
    assert error["details"][-1]["rule"] == "truncated"
    assert "4980 more" in error["details"][-1]["message"]
    assert error["message"].endswith("and 4995 more")
    assert len(error["message"]) < 200


SPACED_DUPLICATE = '"total_calls_made" :\n 9, '


@cases(
    Hostile("single", SINGLE, raw_customer(extra='"total_calls_made": 9, '), MALFORMED),
    Hostile("single-spaced-out", SINGLE, raw_customer(extra=SPACED_DUPLICATE), MALFORMED),
    Hostile(
        "batch-item",
        BATCH,
        raw_batch(raw_customer(), raw_customer(extra='"total_calls_made": 9, ')),
        MALFORMED,
    ),
    Hostile(
        "batch-item-spaced-out", BATCH, raw_batch(raw_customer(extra=SPACED_DUPLICATE)), MALFORMED
    ),
)
async def test_a_field_named_twice_is_refused_naming_it(
    client: httpx.AsyncClient, case: Hostile
) -> None:
    error = assert_refused(await post(client, case), case.expected)
    assert error["details"] == [
        {"field": "total_calls_made", "rule": "duplicate_key", "message": error["message"]}
    ]


async def test_a_huge_name_given_twice_is_quoted_briefly(client: httpx.AsyncClient) -> None:
    name = "n" * 100_000
    body = raw_batch(f'{{"{name}": 1, "{name}": 2}}'.encode())
    response = await client.post(BATCH, content=body)
    error = assert_refused(response, MALFORMED)
    assert error["details"][0]["field"] == "n" * 64
    assert len(response.content) < 1_000


async def test_the_customers_list_named_twice_is_refused(client: httpx.AsyncClient) -> None:
    body = b'{"customers": [], "customers": [' + raw_customer() + b"]}"
    error = assert_refused(await client.post(BATCH, content=body), MALFORMED)
    assert error["details"][0]["field"] == "customers"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(raw_customer().replace(b'":', b'" \t:'), id="spaced-out-names"),
        pytest.param(raw_customer(customer_key='"a:b"'), id="colon-in-a-key"),
    ],
)
async def test_unusual_but_valid_json_without_repeated_fields_is_scored(
    client: httpx.AsyncClient, body: bytes
) -> None:
    single = await client.post(SINGLE, content=body)
    assert single.status_code == 200, single.text
    batch = await client.post(BATCH, content=raw_batch(body, body))
    assert batch.status_code == 200, batch.text
    assert [result["segment_id"] for result in batch.json()["results"]] == [
        single.json()["segment_id"]
    ] * 2


async def assert_items_refused(
    client: httpx.AsyncClient, content: bytes, content_type: str, bad: list[int], size: int
) -> list[dict[str, Any]]:
    """Bad items get the per-item error shape, the others are scored; strict refuses all."""
    headers = {"content-type": content_type}
    response = await client.post(BATCH, content=content, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["n_errors"] == len(bad)
    assert [result["index"] for result in body["results"]] == list(range(size))
    errors = []
    for result in body["results"]:
        if result["index"] in bad:
            error = result["error"]
            assert set(error) == {"code", "message", "details"}
            assert error["code"] == "invalid_input"
            assert error["details"]
            errors.append(error)
        else:
            assert result["segment_id"], result
    strict = await client.post(BATCH, params={"strict": "true"}, content=content, headers=headers)
    assert_refused(strict, INVALID)
    assert_no_internals(response)
    return errors


async def test_hostile_json_items_are_errors_at_their_index(client: httpx.AsyncClient) -> None:
    items = [
        raw_customer(),
        raw_customer(avg_credit_limit='"50000"'),
        b"null",
        b"[1, 2, 3]",
        b'"a customer"',
        raw_customer(extra='"k\\u0000": 1, '),
        raw_customer(total_credit_cards="2.5"),
        raw_customer(total_visits_bank="-1"),
        raw_customer(customer_key='"\\u0000"'),
        raw_customer(customer_key="true"),
        raw_customer(),
    ]
    errors = await assert_items_refused(client, raw_batch(*items), JSON, list(range(1, 10)), 11)
    assert errors[0]["details"][0]["field"] == "avg_credit_limit"


async def test_hostile_csv_cells_are_errors_at_their_row(client: httpx.AsyncClient) -> None:
    rows = [
        CSV_ROWS[0],
        "2,nan,2,1,1,0",
        "3,inf,2,1,1,0",
        "4,1e400,2,1,1,0",
        "5," + "9" * 5_000 + ",2,1,1,0",
        "6,fifty thousand,2,1,1,0",
        "7,1000,2.5,1,1,0",
        "8,1000,-2,1,1,0",
        '9,"1,000",2,1,1,0',
        "10,1000\x00,2,1,1,0",
        CSV_ROWS[1],
    ]
    await assert_items_refused(client, csv_body(*rows), CSV, list(range(1, 10)), 11)


async def test_short_ragged_csv_rows_are_errors_naming_the_missing_cells(
    client: httpx.AsyncClient,
) -> None:
    rows = [CSV_ROWS[0], "2,1000,2", "3", CSV_ROWS[1], "4,1000,2,1,1"]
    errors = await assert_items_refused(client, csv_body(*rows), CSV, [1, 2, 4], 5)
    assert {detail["field"] for detail in errors[0]["details"]} == {
        "total_visits_bank",
        "total_visits_online",
        "total_calls_made",
    }
    assert [detail["field"] for detail in errors[2]["details"]] == ["total_calls_made"]


async def test_long_ragged_csv_rows_are_errors_not_truncated(client: httpx.AsyncClient) -> None:
    rows = [CSV_ROWS[0], "2,1000,2,1,1,0,7", CSV_ROWS[1], "4,1000,2,1,1,0,,"]
    errors = await assert_items_refused(client, csv_body(*rows), CSV, [1, 3], 4)
    assert [error["details"][0]["rule"] for error in errors] == ["too_many_cells"] * 2
    assert errors[0]["message"] == "row 1 has 7 cells; the header names 6"


async def test_a_csv_header_of_too_many_columns_is_refused(client: httpx.AsyncClient) -> None:
    header = CSV_HEADER + "".join(f",extra_{n}" for n in range(10_000))
    error = assert_refused(
        await post(client, Hostile("", BATCH, csv_body(header=header), INVALID, CSV)), INVALID
    )
    assert error["details"][0]["rule"] == "too_many_columns"


async def scored(client: httpx.AsyncClient, content: bytes) -> list[tuple[Any, ...]]:
    response = await client.post(BATCH, content=content, headers={"content-type": CSV})
    assert response.status_code == 200, response.text
    assert response.json()["n_errors"] == 0
    return [
        (result["customer_key"], result["segment_id"], result["confidence"])
        for result in response.json()["results"]
    ]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(b"\xef\xbb\xbf" + csv_body(*CSV_ROWS), id="byte-order-mark"),
        pytest.param(csv_body(*CSV_ROWS, newline="\r\n"), id="crlf"),
        pytest.param(csv_body(*CSV_ROWS, newline="\r"), id="cr"),
        pytest.param(
            csv_body(
                *(",".join(f'"{cell}"' for cell in row.split(",")) for row in CSV_ROWS),
                header=",".join(f'"{name}"' for name in CSV_HEADER.split(",")),
            ),
            id="every-field-quoted",
        ),
        pytest.param(csv_body(*(row.replace(",", " , ") for row in CSV_ROWS)), id="padded-cells"),
        pytest.param(csv_body(*CSV_ROWS) + b"\n\n\n", id="trailing-blank-lines"),
    ],
)
async def test_valid_csv_variant_is_scored_like_the_plain_csv(
    client: httpx.AsyncClient, variant: bytes
) -> None:
    plain = await scored(client, csv_body(*CSV_ROWS))
    assert [key for key, _, _ in plain] == ["87073", "38414", "17341"]
    assert await scored(client, variant) == plain


async def test_a_csv_of_millions_of_tiny_rows_is_refused_before_it_fills_memory(
    client: httpx.AsyncClient,
) -> None:
    """8 MiB of one-cell rows: millions of rows, within the body limit. Reading all of them
    before counting cost hundreds of megabytes; reading stops one past MAX_BATCH_SIZE."""
    body = CSV_HEADER.encode() + b"\n" + b"1\n" * (4 * 1024 * 1024 - 100)
    tracemalloc.start()
    try:
        response = await client.post(BATCH, content=body, headers={"content-type": "text/csv"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_refused(response, BATCH_TOO_LARGE)
    assert "more than 10000 customers" in response.json()["error"]["message"]
    assert peak < 64 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"


async def test_a_json_batch_of_millions_of_empty_objects_is_refused_before_parsing(
    client: httpx.AsyncClient,
) -> None:
    """8 MiB of ``{},`` parse into millions of objects before their count can be checked:
    the body is refused by counting its braces, brackets and quotes first."""
    body = b'{"customers": [' + b"{}," * (MAX_BODY // 3 - 100) + b"{}]}"
    assert len(body) < MAX_BODY
    tracemalloc.start()
    try:
        response = await client.post(
            BATCH, content=body, headers={"content-type": "application/json"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    error = assert_refused(response, BATCH_TOO_LARGE)
    assert f"more than {MAX_BATCH} customers" in error["message"]
    assert peak < 64 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"


async def test_a_full_batch_of_keys_made_of_braces_and_quotes_is_still_scored(
    client: httpx.AsyncClient,
) -> None:
    """The count that refuses floods must never refuse valid customers, whatever their keys."""
    keys = [f"{n:05d}" + '{["' * 19 + "{{" for n in range(MAX_BATCH)]  # 64 characters each
    assert {len(key) for key in keys} == {64}
    body = orjson.dumps({"customers": [customer(customer_key=key) for key in keys]})
    assert len(body) < MAX_BODY
    response = await client.post(BATCH, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    assert [result["customer_key"] for result in response.json()["results"]] == keys
