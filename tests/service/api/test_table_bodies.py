"""POST /segment/batch with Arrow IPC stream and Parquet bodies and answers, over HTTP.

Every format gives the same segments, scores and flags as the JSON answer and the scorer
in process; a table's bad rows get CSV's errors; keyed rows are recorded; the answer's
format follows ``?format=``, else ``Accept``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as arrow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation.features import FEATURES
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.scoring.csv_answer import answer_columns
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from tests.service.api.table_bodies import (
    ARROW,
    BATCH,
    MEDIA_TYPES,
    PARQUET,
    arrow_body,
    as_results,
    comparable,
    post_table,
    read_answer,
    table_body,
)
from tests.service.api.test_scoring_routes import as_customers, assert_error, customer
from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.helpers import ADMIN
from training.job import TrainingResult

FORMATS = ("arrow", "parquet")


def customers_table(items: list[dict[str, Any]]) -> arrow.Table:
    return arrow.Table.from_pylist(items)


@pytest.mark.parametrize("form", FORMATS)
async def test_the_bank_export_as_a_table_gives_the_json_answer_and_the_scorers(
    client: httpx.AsyncClient,
    training_assignments: pd.DataFrame,
    bank_export: Path,
    trained: TrainingResult,
    form: str,
) -> None:
    # The export as the bank writes it: its own column names, the row number, integer keys.
    export = arrow.Table.from_pandas(pd.read_csv(bank_export), preserve_index=False)
    answer = read_answer(await post_table(client, form, table_body(form, export)), form)
    as_json = await client.post(BATCH, json={"customers": as_customers(training_assignments)})
    assert as_json.status_code == 200
    model, _ = load_model(trained.path.parent, trained.version)
    assert tuple(answer.column_names) == answer_columns(model.segment_ids)
    assert as_results(answer) == comparable(as_json.json()["results"])
    assert answer["segment_id"].to_pylist() == training_assignments["segment_id"].tolist()
    metadata = answer.schema.metadata
    assert json.loads(metadata[b"counts"]) == as_json.json()["counts"]
    assert metadata[b"model_version"].decode() == trained.version
    assert metadata[b"n_errors"] == b"0"
    # The scorer in process, on the same features.
    features = training_assignments[list(FEATURES)].to_numpy(dtype=np.float64)
    in_process = model.assign(features, [None] * len(features))
    for row, expected in zip(as_results(answer), in_process, strict=True):
        assert row["segment_id"] == expected["segment_id"]
        assert row["confidence"] == expected["confidence"]
        assert row["distances"] == expected["distances"]
        assert row["atypical_reasons"] == expected["atypical_reasons"]


@pytest.mark.parametrize("form", FORMATS)
async def test_the_answer_is_typed(client: httpx.AsyncClient, form: str) -> None:
    body = table_body(form, customers_table([customer(), customer(total_calls_made=99)]))
    schema = read_answer(await post_table(client, form, body), form).schema
    segment_id = schema.field("segment_id").type
    assert arrow.types.is_dictionary(segment_id) and segment_id.value_type == arrow.string()
    assert arrow.types.is_dictionary(schema.field("runner_up_segment_id").type)
    assert schema.field("confidence").type == arrow.float64()
    assert {schema.field(n).type for n in schema.names if n.startswith("distance_")} == {
        arrow.float64()
    }
    assert schema.field("atypical").type == arrow.bool_()
    assert schema.field("recorded").type == arrow.bool_()
    assert schema.field("atypical_reasons").type == arrow.list_(arrow.string())
    assert schema.field("index").type == arrow.int64()


async def test_json_and_csv_bodies_can_be_answered_as_tables(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame, bank_export: Path
) -> None:
    items = as_customers(training_assignments)
    items[3] = customer(avg_credit_limit=0)
    as_json = comparable((await client.post(BATCH, json={"customers": items})).json()["results"])
    for form in FORMATS:
        response = await client.post(
            BATCH, json={"customers": items}, headers={"accept": MEDIA_TYPES[form]}
        )
        assert as_results(read_answer(response, form)) == as_json
    from_csv = await client.post(
        BATCH,
        content=bank_export.read_bytes(),
        headers={"content-type": "text/csv"},
        params={"format": "parquet"},
    )
    keys = read_answer(from_csv, "parquet")["customer_key"].to_pylist()
    assert keys == training_assignments["customer_key"].tolist()


@pytest.mark.parametrize("form", FORMATS)
async def test_a_table_body_can_be_answered_as_json_or_csv(
    client: httpx.AsyncClient, form: str
) -> None:
    items = [customer(), customer(customer_key="2", avg_credit_limit=-5), customer(key=None)]
    items = [{k: v for k, v in item.items() if k != "key"} for item in items]
    body = table_body(form, customers_table(items))
    from_table = await post_table(client, form, body, accept="application/json")
    from_json = await client.post(BATCH, json={"customers": items})
    assert from_table.headers["content-type"] == "application/json"
    assert from_table.json()["results"] == from_json.json()["results"]
    as_csv = await post_table(client, form, body, params={"format": "csv"})
    expected_csv = await client.post(BATCH, json={"customers": items}, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == expected_csv.text


@pytest.mark.parametrize(
    ("request_options", "expected"),
    [
        ({"headers": {"accept": ARROW}}, "arrow"),
        ({"headers": {"accept": f"application/json;q=0.9, {PARQUET}"}}, "parquet"),
        ({"headers": {"accept": f"{ARROW}, {PARQUET}"}}, "arrow"),
        ({"headers": {"accept": f"{ARROW};q=0, {PARQUET};q=0.5"}}, "parquet"),
        ({"headers": {"accept": f"{ARROW}; q=0.0, application/json"}}, "json"),
        ({"headers": {"accept": f"{ARROW};q=0.01"}}, "arrow"),
        ({"headers": {"accept": "*/*"}}, "json"),
        ({"headers": {"accept": "application/xml"}}, "json"),
        ({"headers": {"accept": "text/csv"}, "params": {"format": "arrow"}}, "arrow"),
        ({"headers": {"accept": ARROW}, "params": {"format": "json"}}, "json"),
        ({"params": {"format": "parquet"}}, "parquet"),
    ],
)
async def test_the_answer_format_follows_the_format_parameter_then_accept(
    client: httpx.AsyncClient, request_options: dict[str, Any], expected: str
) -> None:
    response = await client.post(BATCH, json={"customers": [customer()]}, **request_options)
    if expected == "json":
        assert response.headers["content-type"] == "application/json"
        assert response.json()["results"][0]["segment_id"]
    else:
        assert read_answer(response, expected).num_rows == 1


async def test_an_unknown_answer_format_is_422_naming_the_parameter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        BATCH, json={"customers": [customer()]}, params={"format": "feather"}
    )
    assert_error(response, 422, "query.format")


async def test_an_unknown_body_type_is_415_naming_the_table_types(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        BATCH, content=b"PAR1", headers={"content-type": "application/x-parquet"}
    )
    assert_error(response, 415)
    assert ARROW in response.json()["error"]["message"]
    assert PARQUET in response.json()["error"]["message"]


async def test_a_look_up_by_key_alone_is_refused_as_a_table_naming_the_items(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    known = str(training_assignments["customer_key"][0])
    items = [customer(), {"customer_key": known}]
    response = await client.post(BATCH, json={"customers": items}, headers={"accept": ARROW})
    assert_error(response, 422, "customers.1")
    assert "JSON or CSV only" in response.json()["error"]["message"]
    as_json = await client.post(BATCH, json={"customers": items})
    assert as_json.json()["results"][1]["customer_key"] == known


@pytest.mark.parametrize("form", FORMATS)
async def test_a_key_column_of_nulls_alone_is_a_batch_without_keys(
    client: httpx.AsyncClient, form: str
) -> None:
    """pandas makes a column of None the null type: it is read as no keys."""
    table = customers_table([customer(customer_key=None), customer(customer_key=None)])
    assert table.schema.field("customer_key").type == arrow.null()
    answer = read_answer(await post_table(client, form, table_body(form, table)), form)
    assert answer["customer_key"].to_pylist() == [None, None]
    assert answer["error"].to_pylist() == [None, None]


@pytest.mark.parametrize("form", FORMATS)
async def test_keyed_rows_are_recorded_and_say_so(client: httpx.AsyncClient, form: str) -> None:
    items = [customer(customer_key=f"table-{form}"), customer(customer_key=None)]
    answer = read_answer(
        await post_table(client, form, table_body(form, customers_table(items))), form
    )
    assert answer["recorded"].to_pylist() == [True, None]
    stored = await client.get(f"/customers/table-{form}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["segment_id"] == answer["segment_id"][0].as_py()
    assert stored.json()["history"][0]["source"] == "batch"


async def test_a_failed_write_says_not_recorded_on_the_keyed_rows(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(store: CustomerStore, assignments: object) -> None:
        raise StoreUnavailable("OperationalError: refused by the test")

    items = [customer(customer_key=None), customer(customer_key="new-1")]
    async with serve(settings_for(models_dir)) as client:
        monkeypatch.setattr(CustomerStore, "record", refuse)
        response = await post_table(client, "arrow", arrow_body(customers_table(items)))
    answer = read_answer(response, "arrow")
    assert answer["customer_key"].to_pylist() == [None, "new-1"]
    assert answer["recorded"].to_pylist() == [None, False]


async def test_a_shadow_scores_table_batches_and_their_answers_do_not_change(
    versions: tuple[Path, str, str],
) -> None:
    models, _, second = versions
    items = [customer(avg_credit_limit=limit) for limit in (5_000, 150_000)]
    body = arrow_body(customers_table(items))
    async with serve_with_keys(models) as client:
        without = await post_table(client, "arrow", body)
        started = await client.post("/admin/shadow", json={"version": second}, headers=ADMIN)
        assert started.status_code == 200, started.text
        with_shadow = await post_table(client, "arrow", body)
        shadowed = (await client.get("/admin/shadow", headers=ADMIN)).json()
    assert with_shadow.content == without.content
    assert shadowed["customers"] == len(items) and shadowed["requests"] == 1


def csv_of(rows: list[dict[str, Any]]) -> bytes:
    """The same rows as a CSV body: a null an empty cell, a float as Python writes it."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["customer_key", *FEATURES], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return text.getvalue().encode()


BAD_ROWS: list[dict[str, Any]] = [
    {"avg_credit_limit": None},
    {"avg_credit_limit": float("nan")},
    {"avg_credit_limit": float("inf")},
    {"total_visits_bank": float("-inf")},
    {"avg_credit_limit": 0.0},
    {"avg_credit_limit": 1e12},
    {"total_credit_cards": 2.5},
    {"total_credit_cards": -1.0},
    {"total_calls_made": 1e9},
    {"customer_key": "a\x00b"},
    {"customer_key": "k" * 65},
    {"customer_key": "\u202eevil"},
    {"customer_key": "   ", "avg_credit_limit": None},
]


@pytest.mark.parametrize("form", FORMATS)
async def test_bad_rows_get_the_errors_a_csv_body_gets(
    client: httpx.AsyncClient, form: str
) -> None:
    base = {"customer_key": "k1", **{k: float(v) for k, v in customer().items() if k in FEATURES}}
    rows = [
        base,
        *({**base, "customer_key": f"k{n}", **bad} for n, bad in enumerate(BAD_ROWS)),
        base,
    ]
    rows.append({**base, "customer_key": "  padded  "})  # stripped, as from a CSV cell
    from_table = await post_table(
        client, form, table_body(form, customers_table(rows)), accept="application/json"
    )
    from_csv = await client.post(BATCH, content=csv_of(rows), headers={"content-type": "text/csv"})
    assert from_table.status_code == from_csv.status_code == 200, from_table.text
    assert from_table.json() == from_csv.json()
    assert from_table.json()["n_errors"] == len(BAD_ROWS)
    # And the table answer says the same, row for row.
    answer = read_answer(
        await post_table(client, form, table_body(form, customers_table(rows))), form
    )
    as_csv = list(csv.DictReader(io.StringIO((await client.post(
        BATCH, content=csv_of(rows), headers={"content-type": "text/csv", "accept": "text/csv"}
    )).text)))  # fmt: skip
    assert answer["error"].to_pylist() == [row["error"] or None for row in as_csv]
    assert answer["segment_id"].to_pylist() == [row["segment_id"] or None for row in as_csv]
    assert answer["customer_key"][-1].as_py() == "padded"


@pytest.mark.parametrize("form", FORMATS)
async def test_strict_mode_refuses_the_table_as_it_refuses_csv(
    client: httpx.AsyncClient, form: str
) -> None:
    rows = [customer(customer_key="1"), customer(customer_key="2", total_visits_bank=-1.0)]
    strict = {"strict": "true"}
    refused = await post_table(client, form, table_body(form, customers_table(rows)), params=strict)
    assert_error(refused, 422, "customers.1.total_visits_bank")
    as_csv = await client.post(
        BATCH, content=csv_of(rows), headers={"content-type": "text/csv"}, params=strict
    )
    assert refused.json() == as_csv.json()
    accepted = await post_table(
        client, form, table_body(form, customers_table(rows[:1])), params=strict
    )
    assert read_answer(accepted, form).num_rows == 1


NUMERIC_TYPES = (
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
)


def holds(dtype: Any, values: list[float | None]) -> bool:
    """Whether a column of ``dtype`` holds these values exactly (nulls aside)."""
    given = [value for value in values if value is not None]
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return all(v == v and v == int(v) and limits.min <= v <= limits.max for v in given)
    return dtype != np.float16 or all(abs(v) <= 2048 for v in given if v == v)


@st.composite
def feature_columns(draw: st.DrawFn) -> list[Any]:
    """Columns of customers, mostly valid, some not (nulls, NaN, beyond the bounds), each
    feature of a numeric type that holds its values."""
    size = draw(st.integers(min_value=1, max_value=30))
    columns = []
    for feature in FEATURES:
        whole = feature != "avg_credit_limit"
        low, high = (0, 20) if whole else (1, 250_000)
        value = st.integers(low, high).map(float) | st.sampled_from([None, float("nan"), -1.0])
        if not whole:
            value |= st.floats(0.5, 300_000, allow_nan=False)
        values = draw(st.lists(value, min_size=size, max_size=size))
        dtype = draw(st.sampled_from([t for t in NUMERIC_TYPES if holds(t, values)]))
        missing = np.array([v is None for v in values])
        numbers = np.array([0.0 if v is None else v for v in values]).astype(dtype)
        columns.append(arrow.array(numbers, mask=missing))
    return columns


@pytest.fixture(scope="module")
def served_model(trained: TrainingResult) -> ActiveModel:
    model, _ = load_model(trained.path.parent, trained.version)
    return model


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arrays=feature_columns(), form=st.sampled_from(FORMATS))
async def test_any_table_gets_the_answer_of_the_same_customers_as_csv_and_in_process(
    client: httpx.AsyncClient, served_model: ActiveModel, arrays: list[Any], form: str
) -> None:
    table = arrow.Table.from_arrays(arrays, names=list(FEATURES))
    # The same values, as the table holds them after its type, sent as CSV.
    values = [array.to_pylist() for array in arrays]
    rows = [dict(zip(FEATURES, row, strict=True)) for row in zip(*values, strict=True)]
    from_table = await post_table(client, form, table_body(form, table), accept="application/json")
    from_csv = await client.post(BATCH, content=csv_of(rows), headers={"content-type": "text/csv"})
    assert from_table.json() == from_csv.json()
    answer = read_answer(await post_table(client, form, table_body(form, table)), form)
    results = as_results(answer)
    assert results == comparable(from_csv.json()["results"])
    scored = [row for row in results if "error" not in row]
    features = np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float64)
    at = [row["index"] for row in scored]
    expected = served_model.assign(features[at].reshape(-1, len(FEATURES)), [None] * len(at))
    for row, assigned in zip(scored, expected, strict=True):
        for field in ("segment_id", "confidence", "distances", "atypical", "atypical_reasons"):
            assert row[field] == assigned[field], field
