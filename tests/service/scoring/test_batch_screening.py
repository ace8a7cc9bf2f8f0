"""Batch screening accepts exactly what the schema accepts, with the same values."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segmentation.features import FEATURES
from service.schemas import CustomerFeatures
from service.scoring.customer_input import _csv_items, parse_csv_batch, validate_items

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
    items, _ = _csv_items(columns, records, range(len(records)))
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
