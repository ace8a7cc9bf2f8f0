"""The row answer rendered from fragments is, byte for byte, the answer built as one dict
per customer (``legacy_row_answer``), in JSON and in CSV, whatever the batch holds."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation.features import FEATURES
from service.customer_records import RECORDED, CustomerRecords, Recorded
from service.errors import StoreUnavailableError
from service.models.active_model import ActiveModel
from service.scoring.batch_scoring import RenderedAs, atypical_reasons, score_batch
from service.scoring.csv_answer import _SAFE_RANGE, results_as_csv
from service.scoring.customer_input import CustomerBatch, parse_csv_batch, parse_json_batch
from service.scoring.row_answer import RowsResponse
from service.store.assignments import Assignments
from tests.service.scoring.legacy_row_answer import legacy_answer
from training.job import TrainingResult

NOT_RECORDED: Recorded = {"recorded": False}
MAYBE_RECORDED: Recorded = {"recorded": False, "recording_unknown": True}


class FakeRecords:
    """The store as score_batch uses it: stored customers, and what a write comes to."""

    def __init__(
        self,
        stored: dict[str, dict[str, Any]],
        outcome: Recorded = RECORDED,
        *,
        reachable: bool = True,
    ) -> None:
        self.stored = stored
        self.outcome = outcome
        self.reachable = reachable
        self.written: list[list[str]] = []

    def stored_features(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not self.reachable:
            raise StoreUnavailableError("the customer store is unavailable")
        return {key: self.stored[key] for key in keys if key in self.stored}

    def in_background(self, work: Any, *args: Any) -> Future[Recorded]:
        done: Future[Recorded] = Future()
        done.set_result(work(*args))
        return done

    def record(self, block: Assignments) -> Recorded:
        self.written.append(list(block.customer_keys))
        return self.outcome


def new_and_old(
    model: ActiveModel,
    batch: CustomerBatch,
    records: FakeRecords | None,
    csv_from: RenderedAs = "csv",
) -> tuple[tuple[bytes, str], tuple[bytes, str]]:
    """(JSON, CSV) as score_batch renders them now, and as the dict per customer gave. The
    CSV comes from a response prepared for CSV, or (``csv_from="json"``) for JSON."""
    store = cast(CustomerRecords | None, records)
    answer = score_batch(model, batch, store, render=orjson.dumps)
    assert answer.body is not None
    as_csv = score_batch(
        model,
        batch,
        store,
        render=lambda response: results_as_csv(response, model.segment_ids).encode(),
        rendered_as=csv_from,
    )
    return (answer.body, cast(bytes, as_csv.body)), legacy_answer(model, batch, store)


@pytest.fixture(scope="module")
def model(trained: TrainingResult) -> ActiveModel:
    return ActiveModel(version=trained.version, manifest=trained.manifest)


def stored_customer(model: ActiveModel, version: str | None = None) -> dict[str, Any]:
    values = dict(zip(FEATURES, [45_000.0, 4, 2, 3, 1], strict=True))
    return {**values, "model_version": version or model.version}


def bank_items(bank_export: Path) -> list[dict[str, Any]]:
    with bank_export.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    names = dict(
        zip(
            ["Avg_Credit_Limit", "Total_Credit_Cards", "Total_visits_bank"],
            FEATURES[:3],
            strict=True,
        )
    )
    names |= {"Total_visits_online": FEATURES[3], "Total_calls_made": FEATURES[4]}
    return [
        {"customer_key": row["Customer Key"]}
        | {name: float(row[column]) for column, name in names.items()}
        for row in rows
    ]


BAD_ITEMS: list[Any] = [
    {"avg_credit_limit": -5, "total_credit_cards": 2},
    {"customer_key": "=HYPERLINK(1)", "avg_credit_limit": "lots"},
    {"customer_key": "stored-1"},
    {"customer_key": "stored-old"},
    {"customer_key": 'unknown, "quoted"'},
    "not an object",
    {**dict.fromkeys(FEATURES, 1), "income": 1},
    {**dict.fromkeys(FEATURES, 1), "customer_key": '-plain, with "quotes"'},
    {**dict.fromkeys(FEATURES, 1), "avg_credit_limit": 900_000, "total_calls_made": 40},
]


def is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.keys() == {"customer_key"}


def mixed_body(bank_export: Path, *, references: bool = True) -> bytes:
    """The bank's customers with bad items among them (and stored customers by key alone,
    which only a batch scored with a store may hold), then 50 of them without a key."""
    customers = bank_items(bank_export)
    bad_items = [item for item in BAD_ITEMS if references or not is_reference(item)]
    for step, bad in enumerate(bad_items):
        customers.insert(step * 70, bad)
    customers += [
        {name: value for name, value in item.items() if name != "customer_key"}
        for item in bank_items(bank_export)[:50]
    ]
    return orjson.dumps({"customers": customers})


STORES = {
    "without a store": lambda model: None,
    "recorded": lambda model: FakeRecords(
        {"stored-1": stored_customer(model), "stored-old": stored_customer(model, "v0")}
    ),
    "not recorded": lambda model: FakeRecords(
        {"stored-1": stored_customer(model), "stored-old": stored_customer(model, "v0")},
        NOT_RECORDED,
    ),
    "recording unknown": lambda model: FakeRecords(
        {"stored-old": stored_customer(model, "v0")}, MAYBE_RECORDED
    ),
    "store unreachable": lambda model: FakeRecords({}, NOT_RECORDED, reachable=False),
}


@pytest.mark.parametrize("store", list(STORES))
def test_row_answer_is_the_dict_per_customer_answer_for_the_bank_export_with_bad_items(
    model: ActiveModel, bank_export: Path, store: str
) -> None:
    records = STORES[store](model)
    body = mixed_body(bank_export, references=records is not None)
    batch = parse_json_batch(body, max_size=10_000)
    (json_body, csv_text), (old_json, old_csv) = new_and_old(model, batch, records)
    assert json_body == old_json
    assert csv_text.decode() == old_csv
    results = orjson.loads(json_body)["results"]
    assert len(results) == len(orjson.loads(body)["customers"]) > 700
    assert sum("error" in result for result in results) >= 4
    assert any(result.get("atypical") for result in results)
    if store in {"not recorded", "recording unknown"}:
        assert {result.get("recorded") for result in results} == {False, None, True} - (
            {True} if store == "recording unknown" else set()
        )


def test_row_answer_is_the_dict_per_customer_answer_for_the_bank_export_as_csv(
    model: ActiveModel, bank_export: Path
) -> None:
    body = bank_export.read_bytes()
    bad_rows = b"\r\n1,2,3\r\n,,,,,,\r\n7,=1+2,abc,2,1,1,0\r\n8,k;9,1000,2,1,1,0,9\r\n"
    for content, csv_from in [(body, "json"), (body, "csv"), (body + bad_rows, "csv")]:
        batch = parse_csv_batch(content, max_size=10_000)
        records = FakeRecords({}, NOT_RECORDED)
        (json_body, csv_text), (old_json, old_csv) = new_and_old(
            model, batch, records, cast(RenderedAs, csv_from)
        )
        assert json_body == old_json
        assert csv_text.decode() == old_csv
        assert records.written  # every keyed row was to be written, and was not


def test_atypical_reasons_are_every_scored_customers_in_input_order(
    model: ActiveModel, bank_export: Path
) -> None:
    batch = parse_json_batch(mixed_body(bank_export, references=False), max_size=10_000)
    response = score_batch(model, batch, None).response
    assert isinstance(response, RowsResponse)
    old = orjson.loads(legacy_answer(model, batch, None)[0])["results"]
    expected = [reason for result in old for reason in result.get("atypical_reasons", ())]
    assert expected
    assert list(atypical_reasons(response)) == expected


def test_a_response_prepared_for_csv_cannot_be_rendered_as_json(
    model: ActiveModel, bank_export: Path
) -> None:
    batch = parse_csv_batch(bank_export.read_bytes(), max_size=1_000)
    response = score_batch(model, batch, None, rendered_as="csv").response
    with pytest.raises(TypeError):
        orjson.dumps(response)


def test_an_empty_batch_is_answered_as_before(model: ActiveModel) -> None:
    batch = parse_json_batch(b'{"customers": []}', max_size=10)
    (json_body, csv_text), (old_json, old_csv) = new_and_old(model, batch, None)
    assert json_body == old_json
    assert csv_text.decode() == old_csv


key_text = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["a,b", 'say "hi"', "=1+1", "-3", "@x", " padded ", "ключ", "x" * 64]),
)
feature_value = st.one_of(
    st.integers(0, 12),
    st.floats(0, 15),
    st.sampled_from([0, 1e-9, 250_000, 1e7, 2.5, -1, 101]),
)


@st.composite
def batch_items(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=3)))
    if kind == 1:
        return {"customer_key": draw(st.sampled_from(["stored-1", "stored-old", "nobody"]))}
    item: dict[str, Any] = {
        "avg_credit_limit": draw(st.one_of(st.integers(1, 250_000), st.floats(0.5, 300_000))),
        **{feature: draw(feature_value) for feature in FEATURES[1:]},
    }
    if draw(st.integers(0, 20)) == 0:
        del item[draw(st.sampled_from(FEATURES))]
    if draw(st.booleans()):
        item["customer_key"] = draw(st.one_of(key_text, st.integers(-(10**6), 10**6)))
    return item


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(batch_items(), max_size=25),
    store=st.sampled_from(list(STORES)),
)
def test_row_answer_is_the_dict_per_customer_answer_for_any_batch(
    model: ActiveModel, items: list[Any], store: str
) -> None:
    records = STORES[store](model)
    if records is None:
        items = [item for item in items if not is_reference(item)]
    body = json.dumps({"customers": items}).encode()
    try:
        batch = parse_json_batch(body, max_size=100)
    except Exception:  # a refused body has no answer to compare
        return
    (json_body, csv_text), (old_json, old_csv) = new_and_old(model, batch, records)
    assert json_body == old_json
    assert csv_text.decode() == old_csv


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_writes_a_float_as_repr_does_within_the_csv_answers_range(value: float) -> None:
    """What the CSV answer relies on to take orjson's text for the csv module's."""
    low, high = _SAFE_RANGE
    if value == 0 or low <= abs(value) < high:
        assert orjson.dumps(value).decode() == repr(value)


def test_a_failed_write_marks_only_the_rows_it_was_to_write(model: ActiveModel) -> None:
    plain = dict(zip(FEATURES, [30_000, 3, 2, 2, 2], strict=True))
    items = [
        {**plain, "customer_key": "new-1"},
        {"customer_key": "stored-1"},  # this model's assignment already: not written again
        plain,
        {"customer_key": "stored-old"},
    ]
    records = FakeRecords(
        {"stored-1": stored_customer(model), "stored-old": stored_customer(model, "v0")},
        MAYBE_RECORDED,
    )
    batch = parse_json_batch(orjson.dumps({"customers": items}), max_size=10)
    answer = score_batch(model, batch, cast(CustomerRecords, records), render=orjson.dumps)
    results = orjson.loads(cast(bytes, answer.body))["results"]
    assert records.written == [["new-1", "stored-old"]]
    assert [result.get("recorded") for result in results] == [False, True, None, False]
    assert [result.get("recording_unknown") for result in results] == [True, None, None, True]
    assert list(results[0])[-2:] == ["recorded", "recording_unknown"]
