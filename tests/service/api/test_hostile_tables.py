"""Hostile Arrow IPC stream and Parquet bodies for POST /segment/batch.

As for JSON and CSV (test_hostile_inputs.py): a body that is wrong as a whole gets a 4xx
with the error shape, never a 5xx nor a stack trace. Truncated or garbage streams and
files are 400; columns of the wrong name or type 422, naming them; more rows than
MAX_BATCH_SIZE 413, found before the rows are decoded where the body says how many.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pyarrow as arrow
import pytest
import pytest_asyncio

from segmentation.features import FEATURES
from service.scoring.arrow_input import parse_arrow_batch
from tests.service.api.table_bodies import (
    ARROW,
    BATCH,
    PARQUET,
    arrow_body,
    parquet_body,
    post_table,
    read_answer,
)
from tests.service.api.test_hostile_inputs import (
    BATCH_TOO_LARGE,
    INVALID,
    MALFORMED,
    UNSUPPORTED,
    assert_refused,
)
from tests.service.api.test_table_bodies import csv_of
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS, customer
from training.job import TrainingResult

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BATCH = 10_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the whole corpus (nothing here changes its state), keys on."""
    models = tmp_path_factory.mktemp("hostile-tables") / "models"
    shutil.copytree(trained.path.parent, models)
    settings = settings_for(models, max_batch_size=MAX_BATCH, **KEYS)
    async with serve(settings) as http:
        http.headers["X-API-Key"] = CRM_KEY
        yield http


def customers(count: int = 3, **columns: Any) -> arrow.Table:
    """``count`` valid customers as a table, with some columns replaced or added."""
    values: dict[str, Any] = {name: [customer()[name]] * count for name in FEATURES}
    values.update(columns)
    return arrow.table(values)


GOOD_STREAM = arrow_body(customers())
GOOD_PARQUET = parquet_body(customers())


async def send(client: httpx.AsyncClient, body: bytes, media_type: str) -> httpx.Response:
    return await client.post(BATCH, content=body, headers={"content-type": media_type})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(GOOD_STREAM[:4], id="cut-in-the-first-length"),
        pytest.param(GOOD_STREAM[:40], id="cut-in-the-schema"),
        pytest.param(GOOD_STREAM[: len(GOOD_STREAM) // 2], id="cut-in-the-schema-or-batch"),
        pytest.param(GOOD_STREAM[:-20], id="cut-in-the-record-batch"),
        pytest.param(b"\xff\xff\xff\xff" + b"\x7f" * 64, id="a-huge-metadata-length"),
        pytest.param(bytes(range(256)) * 8, id="garbage"),
        pytest.param(b'{"customers": []}', id="json"),
        pytest.param(GOOD_PARQUET, id="parquet-sent-as-a-stream"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_a_broken_arrow_stream_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    error = assert_refused(await send(client, body, ARROW), MALFORMED)
    assert "Arrow IPC stream" in error["message"]


async def test_a_compressed_stream_is_415_before_it_is_decompressed(
    client: httpx.AsyncClient,
) -> None:
    """25 KB of ZSTD-compressed zeros stand for twenty million rows (800 MB once
    decompressed): compression is refused from each batch's header, unread."""
    zeros = arrow.array(np.zeros(20_000_000, dtype=np.int64))
    table = arrow.table(dict.fromkeys(FEATURES, zeros))
    sink = arrow.BufferOutputStream()
    options = arrow.ipc.IpcWriteOptions(compression="zstd")
    with arrow.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    assert len(body) < 100_000
    before = arrow.default_memory_pool().max_memory()
    error = assert_refused(await send(client, body, ARROW), UNSUPPORTED)
    assert "compressed" in error["message"]
    assert arrow.default_memory_pool().max_memory() == before  # nothing was decompressed


async def test_a_second_schema_where_a_batch_belongs_is_400(client: httpx.AsyncClient) -> None:
    schema_only = arrow_body(customers().slice(0, 0))[:-8]  # without its end-of-stream mark
    error = assert_refused(await send(client, schema_only + GOOD_STREAM, ARROW), MALFORMED)
    assert "where a record batch belongs" in error["message"]


async def test_an_arrow_file_sent_as_a_stream_is_400_saying_so(client: httpx.AsyncClient) -> None:
    sink = arrow.BufferOutputStream()
    table = customers()
    with arrow.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    error = assert_refused(await send(client, sink.getvalue().to_pybytes(), ARROW), MALFORMED)
    assert "Arrow IPC file, not a stream" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(GOOD_PARQUET[: len(GOOD_PARQUET) // 2], id="cut-in-half"),
        pytest.param(GOOD_PARQUET[:-1], id="last-byte-cut"),
        pytest.param(GOOD_PARQUET[:-12] + GOOD_PARQUET[-8:], id="footer-cut"),
        pytest.param(b"PAR1" + b"\x00" * 64 + b"PAR1", id="magic-around-nothing"),
        pytest.param(b"PAR1" + bytes(range(256)) * 4 + b"\xff\xff\x00\x00PAR1", id="garbage"),
        pytest.param(GOOD_STREAM, id="arrow-sent-as-parquet"),
        pytest.param(b"Avg_Credit_Limit\n1000\n", id="csv"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_a_broken_parquet_file_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    error = assert_refused(await send(client, body, PARQUET), MALFORMED)
    assert "Parquet" in error["message"]


WRONG_TYPES = [
    pytest.param("avg_credit_limit", arrow.array(["50000"] * 3), "string", id="text-feature"),
    pytest.param("total_credit_cards", arrow.array([True] * 3), "bool", id="bool-feature"),
    pytest.param("total_visits_bank", arrow.array([[1], [2], [3]]), "list<", id="list-feature"),
    pytest.param(
        "total_calls_made",
        arrow.array([{"n": 1}] * 3),
        "struct<",
        id="struct-feature",
    ),
    pytest.param("total_calls_made", arrow.nulls(3), "null", id="null-typed-feature"),
    pytest.param(
        "total_visits_online",
        arrow.array([0, 1, 2], type=arrow.timestamp("s")),
        "timestamp",
        id="timestamp-feature",
    ),
    pytest.param("customer_key", arrow.array([1.5, 2.5, 3.5]), "double", id="float-key"),
    pytest.param("customer_key", arrow.array([b"k1", b"k2", b"k3"]), "binary", id="binary-key"),
    pytest.param("sl_no", arrow.array([[1], [2], [3]]), "list<", id="list-row-number"),
]


@pytest.mark.parametrize(("column", "values", "type_name"), WRONG_TYPES)
@pytest.mark.parametrize("form", ["arrow", "parquet"])
async def test_a_column_of_the_wrong_type_is_422_naming_it_and_its_type(
    client: httpx.AsyncClient, form: str, column: str, values: Any, type_name: str
) -> None:
    table = customers(**{column: values})
    body = arrow_body(table) if form == "arrow" else parquet_body(table)
    error = assert_refused(await post_table(client, form, body), INVALID)
    assert [(item["field"], item["rule"]) for item in error["details"]] == [(column, "column_type")]
    assert column in error["message"] and type_name in error["message"]


async def test_a_dictionary_encoded_feature_is_422_in_a_stream(client: httpx.AsyncClient) -> None:
    """(In Parquet, dictionary encoding is an encoding: the column reads as its values.)"""
    body = arrow_body(customers(total_calls_made=arrow.array([1, 2, 3]).dictionary_encode()))
    error = assert_refused(await send(client, body, ARROW), INVALID)
    assert "total_calls_made is of type dictionary<values=int64" in error["message"]


@pytest.mark.parametrize("form", ["arrow", "parquet"])
@pytest.mark.parametrize(
    ("columns", "field", "rule"),
    [
        pytest.param({"income": [1, 2, 3]}, "income", "extra_forbidden", id="extra-column"),
        pytest.param(
            {"Avg_Credit_Limit": [1000] * 3}, "avg_credit_limit", "duplicate", id="named-twice"
        ),
        pytest.param(
            {f"extra_{n}": [n] * 3 for n in range(70)}, None, "too_many_columns", id="70-columns"
        ),
    ],
)
async def test_columns_that_are_not_the_features_are_422_as_in_csv(
    client: httpx.AsyncClient, form: str, columns: dict[str, Any], field: str | None, rule: str
) -> None:
    table = customers(**columns)
    body = arrow_body(table) if form == "arrow" else parquet_body(table)
    error = assert_refused(await post_table(client, form, body), INVALID)
    assert (field, rule) in [(item["field"], item["rule"]) for item in error["details"]]


@pytest.mark.parametrize("form", ["arrow", "parquet"])
async def test_a_missing_feature_column_is_422_naming_it(
    client: httpx.AsyncClient, form: str
) -> None:
    table = customers().drop_columns(["total_calls_made"])
    body = arrow_body(table) if form == "arrow" else parquet_body(table)
    error = assert_refused(await post_table(client, form, body), INVALID)
    assert [(item["field"], item["rule"]) for item in error["details"]] == [
        ("total_calls_made", "missing")
    ]


async def test_a_stream_over_the_batch_limit_is_413_in_however_many_batches(
    client: httpx.AsyncClient,
) -> None:
    body = arrow_body(customers(MAX_BATCH + 1), rows_per_batch=1_000)
    error = assert_refused(await send(client, body, ARROW), BATCH_TOO_LARGE)
    assert f"more than {MAX_BATCH} customers" in error["message"]
    at_the_limit = await post_table(client, "arrow", arrow_body(customers(MAX_BATCH)))
    assert read_answer(at_the_limit, "arrow").num_rows == MAX_BATCH


async def test_a_stream_of_more_record_batches_than_a_writer_makes_is_413(
    client: httpx.AsyncClient,
) -> None:
    """1,001 empty batches are 300 KB without a customer; a thousand batches are taken."""
    empty = customers().slice(0, 0)
    sink = arrow.BufferOutputStream()
    with arrow.ipc.new_stream(sink, empty.schema) as writer:
        for _ in range(1_001):
            writer.write_batch(arrow.RecordBatch.from_pylist([], schema=empty.schema))
    error = assert_refused(await send(client, sink.getvalue().to_pybytes(), ARROW), BATCH_TOO_LARGE)
    assert "more than 1,000 record batches" in error["message"]
    one_a_batch = arrow_body(customers(1_000), rows_per_batch=1)
    assert read_answer(await post_table(client, "arrow", one_a_batch), "arrow").num_rows == 1_000


ROUNDED_TWICE_BY_ARROW = [
    Decimal("5.11065404809806667551"),
    Decimal("2166.98537777245360300863"),
    Decimal("8421.48094555304578536033"),
]
"""Credit limits that Arrow's own cast to float64 turns into another float than the
nearest (which CSV reads from their text)."""


@pytest.mark.parametrize("form", ["arrow", "parquet"])
async def test_decimal_features_are_read_as_csv_reads_their_text(
    client: httpx.AsyncClient, form: str
) -> None:
    """A database's NUMERIC columns (credit limits with cents, counts as decimals) are
    read as the numbers they write, nulls as missing fields, bad values as CSV's errors."""
    limits = [Decimal("12500.00"), *ROUNDED_TWICE_BY_ARROW, None, Decimal("-1.00")]
    counts = [Decimal("2"), Decimal("3"), Decimal("1"), Decimal("4"), Decimal("2"), Decimal("2.5")]
    decimal = customers(
        len(limits),
        avg_credit_limit=arrow.array(limits, type=arrow.decimal128(38, 20)),
        total_credit_cards=arrow.array(counts, type=arrow.decimal128(10, 1)),
    )
    body = arrow_body(decimal) if form == "arrow" else parquet_body(decimal)
    answered = (await post_table(client, form, body, accept="application/json")).json()
    rows = [
        {**customer(), "avg_credit_limit": limit, "total_credit_cards": count}
        for limit, count in zip(limits, counts, strict=True)
    ]
    as_csv = (await send(client, csv_of(rows), "text/csv")).json()
    assert answered["results"] == as_csv["results"]
    assert [bool(result.get("error")) for result in answered["results"]] == [False] * 4 + [True] * 2
    for value in ROUNDED_TWICE_BY_ARROW:
        one = arrow.table(
            {name: [customer()[name]] for name in FEATURES}
            | {"avg_credit_limit": arrow.array([value], type=arrow.decimal128(38, 20))}
        )
        batch = parse_arrow_batch(arrow_body(one), max_size=1)
        assert batch.features[0][FEATURES.index("avg_credit_limit")] == float(value)
        assert arrow.compute.cast(one["avg_credit_limit"], arrow.float64())[0].as_py() != float(
            value
        )


async def test_a_parquet_file_over_the_batch_limit_is_413_before_it_is_decoded(
    client: httpx.AsyncClient,
) -> None:
    """Run-length encoding puts twenty million equal rows in a few kilobytes: the footer's
    count refuses them before a page is decoded."""
    many = 20_000_000
    ones = arrow.repeat(arrow.scalar(1, arrow.int8()), many)
    table = arrow.table(dict.fromkeys(FEATURES, ones))
    body = parquet_body(table, compression="zstd")
    assert len(body) < 1_000_000
    error = assert_refused(await send(client, body, PARQUET), BATCH_TOO_LARGE)
    assert f"{many} customers" in error["message"]


async def test_a_parquet_file_whose_pages_decompress_past_any_customer_is_400(
    client: httpx.AsyncClient,
) -> None:
    """Twenty keys of a million characters compress into a few kilobytes."""
    keys = arrow.array(["k" * 1_000_000] * 20)
    body = parquet_body(customers(20, customer_key=keys), compression="zstd", use_dictionary=False)
    assert len(body) < 100_000
    error = assert_refused(await send(client, body, PARQUET), MALFORMED)
    assert "once decompressed" in error["message"]


async def test_one_long_key_in_a_dictionary_page_is_an_error_per_row_answered_quickly(
    client: httpx.AsyncClient,
) -> None:
    """A dictionary page holds a ten-million-character key once for 10,000 rows: read as a
    dictionary, it is neither copied into every row nor validated whole on each."""
    indices = arrow.array([0] * MAX_BATCH, type=arrow.int32())
    keys = arrow.DictionaryArray.from_arrays(indices, arrow.array(["k" * 10_000_000]))
    table = customers(MAX_BATCH, customer_key=keys)
    body = parquet_body(table, compression="zstd", store_schema=False)  # as other writers do
    assert len(body) < 100_000
    started = time.perf_counter()
    response = await send(client, body, PARQUET)
    assert time.perf_counter() - started < 5
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert {result["error"]["details"][0]["rule"] for result in results} == {"string_too_long"}


async def test_a_null_typed_column_of_a_billion_rows_is_refused_by_its_type_unread(
    client: httpx.AsyncClient,
) -> None:
    """A null-typed column has no buffers: a few bytes can claim any length."""
    rows = 1_000_000_000
    columns = {name: arrow.nulls(rows, type=arrow.null()) for name in FEATURES}
    schema = arrow.schema([(name, arrow.null()) for name in FEATURES])
    sink = arrow.BufferOutputStream()
    with arrow.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(arrow.record_batch(list(columns.values()), schema=schema))
    body = sink.getvalue().to_pybytes()
    assert len(body) < 10_000
    error = assert_refused(await send(client, body, ARROW), INVALID)
    assert {item["rule"] for item in error["details"]} == {"column_type"}


@pytest.mark.parametrize("form", ["arrow", "parquet"])
async def test_a_table_of_no_rows_is_answered_with_no_rows(
    client: httpx.AsyncClient, form: str
) -> None:
    table = customers(3).slice(0, 0)
    body = arrow_body(table) if form == "arrow" else parquet_body(table)
    assert read_answer(await post_table(client, form, body), form).num_rows == 0


async def test_an_unsupported_table_type_is_415(client: httpx.AsyncClient) -> None:
    response = await send(client, GOOD_STREAM, "application/vnd.apache.arrow.file")
    assert_refused(response, UNSUPPORTED)
