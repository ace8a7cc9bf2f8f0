"""Batch screening accepts exactly what the schema accepts, with the same values."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segmentation.features import FEATURES
from service.errors import BatchTooLarge, InvalidInput, MalformedBody
from service.schemas import CustomerFeatures
from service.scoring import customer_input
from service.scoring.customer_input import (
    _csv_items,
    parse_csv_batch,
    parse_json_batch,
    validate_items,
)

edge_numbers = st.one_of(
    st.integers(-5, 12_000),
    st.sampled_from(
        [
            0,
            0.0,
            1,
            2.0,
            2.5,
            -0.0,
            100,
            101,
            10_000,
            10_001,
            10_000_000,
            10_000_001,
            2**53 + 1,
            10**400,
            1e308,
            float("inf"),
            float("nan"),
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
odd_values = st.one_of(st.booleans(), st.none(), st.text(max_size=4), st.just([1]))
feature_values = st.one_of(edge_numbers, edge_numbers, edge_numbers, odd_values)
keys = st.one_of(
    st.none(),
    st.text(max_size=70),
    st.sampled_from(["87073", " 87073", "a\x00b", "", "x" * 64, "x" * 65, "ключ"]),
    st.integers(-(10**70), 10**70),
    st.booleans(),
)


@st.composite
def items(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
    item: dict[str, Any] = {}
    for feature in FEATURES:
        if draw(st.integers(0, 25)):
            item[feature] = draw(feature_values)
    if draw(st.booleans()):
        item["customer_key"] = draw(keys)
    if draw(st.integers(0, 20)) == 0:
        item["income"] = 1
    return item


def reference(item: Any) -> tuple[list[float], str | None] | None:
    """What the schema alone makes of an item (None: invalid or a key-only reference)."""
    if isinstance(item, dict) and item.keys() == {"customer_key"}:
        return None
    try:
        customer = CustomerFeatures.model_validate(item)
    except ValidationError:
        return None
    return [float(getattr(customer, f)) for f in FEATURES], customer.customer_key


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(items(), max_size=12))
def test_screened_batch_equals_item_by_item_validation(batch: list[Any]) -> None:
    result = validate_items(batch)
    expected = {i: ref for i, item in enumerate(batch) if (ref := reference(item)) is not None}
    assert result.positions == sorted(expected)
    for row, index in enumerate(result.positions):
        values, key = expected[index]
        assert result.features[row].tolist() == values
        assert result.keys[row] == key
    assert set(result.errors) | set(result.references) | set(result.positions) == set(
        range(len(batch))
    )


def test_screening_keeps_input_order_when_some_items_need_a_closer_look() -> None:
    plain = {f: 1 for f in FEATURES} | {"avg_credit_limit": 1000}
    batch = [plain, {**plain, "customer_key": " padded "}, plain | {"total_calls_made": 2.0}]
    result = validate_items(batch)
    assert result.positions == [0, 1, 2]
    assert result.keys == [None, "padded", None]
    assert np.array_equal(result.features[:, -1], [1.0, 1.0, 2.0])


# CSV: columns screened at once must agree with reading and validating each row alone.

CSV_COLUMNS = ["sl_no", "customer_key", *FEATURES]
csv_cells = st.one_of(
    st.integers(-5, 12_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            *("", " 7 ", "2.0", "2.5", "-1", "+5", "1_000", "٣", "1e400", "1e4", "nan", "inf"),
            *("0x10", "1,000", "9" * 5000, "10000000", "10000001", "\t3\n", "abc"),
        ]
    ),
    st.text(max_size=4),
)
csv_keys = st.one_of(
    st.sampled_from(["", " ", "87073", " 87073 ", "x" * 64, "x" * 65, "a\x00b", "ключ"]),
    st.text(max_size=8),
)


@st.composite
def csv_rows(draw: st.DrawFn) -> list[str]:
    row = [draw(st.integers(1, 999).map(str)), draw(csv_keys)]
    row += [draw(csv_cells) for _ in FEATURES]
    cut = draw(st.integers(0, 12))
    if cut == 0:
        return row[: draw(st.integers(1, len(row) - 1))]
    if cut == 1:
        return [*row, draw(csv_cells)]
    return row


def csv_reference(body: bytes) -> tuple[dict[int, tuple[list[float], str | None]], int]:
    """Each data row read and validated on its own: (valid rows by index, number of rows)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    columns = next(reader)
    records = [row for row in reader if any(cell.strip() for cell in row)]
    items, _, _ = _csv_items(columns, records, range(len(records)))
    expected = {index: ref for index, item in enumerate(items) if (ref := reference(item))}
    return expected, len(records)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(csv_rows(), max_size=12))
def test_screened_csv_equals_row_by_row_validation(rows: list[list[str]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    body = text.getvalue().encode()
    result = parse_csv_batch(body, max_size=100)
    expected, size = csv_reference(body)
    assert result.size == size
    assert result.positions == sorted(expected)
    for row, index in enumerate(result.positions):
        values, key = expected[index]
        assert result.features[row].tolist() == values
        assert result.keys[row] == key
    assert set(result.errors) | set(result.positions) == set(range(size))


@st.composite
def plain_items(draw: st.DrawFn) -> Any:
    """Mostly customers the typed JSON path decodes, now and then one it must pass on."""
    if draw(st.integers(0, 80)) == 0:
        return draw(items())
    credit = st.one_of(st.integers(1, 200_000), st.floats(0.01, 200_000))
    count = st.one_of(st.integers(0, 10), st.integers(0, 10).map(float))
    item: dict[str, Any] = {
        feature: draw(edge_numbers if draw(st.integers(0, 200)) == 0 else plain)
        for feature, plain in zip(FEATURES, [credit, *[count] * 4], strict=True)
    }
    if draw(st.booleans()):
        item["customer_key"] = draw(
            keys if draw(st.integers(0, 40)) == 0 else st.text("abc 1", min_size=1, max_size=8)
        )
    return item


def parsed_or_refused(body: bytes) -> Any:
    """What parsing a JSON batch gives: its fields, or the error's type and message."""
    try:
        batch = parse_json_batch(body, max_size=50)
    except (InvalidInput, MalformedBody, BatchTooLarge) as error:
        return type(error).__name__, str(error)
    return (
        batch.size,
        batch.features.tolist(),
        batch.keys,
        batch.positions,
        batch.errors,
        batch.references,
    )


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(plain_items(), max_size=60), repeat=st.integers(0, 6))
def test_the_typed_json_path_gives_what_item_by_item_parsing_gives(
    batch: list[Any], repeat: int
) -> None:
    body = json.dumps({"customers": batch}).encode()
    if repeat == 0 and batch and isinstance(batch[0], dict) and batch[0]:
        name = next(iter(batch[0]))  # the same field twice in one object
        body = body.replace(b"[{", b'[{"%s": 1, ' % name.encode("unicode_escape"), 1)
    fast = parsed_or_refused(body)
    with patch.object(customer_input, "decode_plain_batch", lambda body: None):
        slow = parsed_or_refused(body)
    assert fast == slow


def test_keys_with_control_or_invisible_characters_are_refused_in_batches() -> None:
    """Screening lets through only what the schema accepts: a C1 control, a bidirectional
    override or a zero-width space in a key fails that item, in JSON as in CSV."""
    hostile = ["x\x85y", "a\u202eb", "zero\u200bwidth", "a\u2028b"]
    plain = dict(zip(FEATURES, [1000, 2, 1, 1, 0], strict=True))
    items = [{**plain, "customer_key": key} for key in hostile] + [plain]
    batch = parse_json_batch(json.dumps({"customers": items}).encode(), max_size=10)
    assert batch.positions == [len(hostile)]
    assert sorted(batch.errors) == list(range(len(hostile)))
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["customer_key", *FEATURES])
    writer.writerows([[key, *plain.values()] for key in [*hostile, "ok"]])
    from_csv = parse_csv_batch(text.getvalue().encode(), max_size=10)
    assert from_csv.positions == [len(hostile)]
    assert from_csv.keys == ["ok"]
