"""A CSV split at once (no quotes, one line per row) reads as the csv module reads it: the
same rows, values, keys and per-row errors, or the same refusal."""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.features import BANK_COLUMN_NAMES, FEATURES
from service.errors import BatchTooLarge, InvalidInput, MalformedBody
from service.scoring import batch_screening, customer_input
from service.scoring.customer_input import parse_csv_batch

HEADERS = [
    list(BANK_COLUMN_NAMES),  # the bank's own header
    [*FEATURES, "customer_key"],
    list(FEATURES),
    [*FEATURES[:4], "income"],
]
cells = st.one_of(
    st.integers(0, 12).map(str),
    st.integers(1, 250_000).map(str),
    st.sampled_from(
        [
            "",
            " ",
            " 7 ",
            "2.0",
            "2.5",
            "-1",
            "-0",
            "+5",
            "1.",
            ".5",
            "01",
            "1e4",
            "1E400",
            "nan",
            "1_000",
            "٣",
            "abc",
            '"3"',
            "1,5",
            "9" * 30,
            "\t3",
            "=1+2",
            "k;1",
        ]
    ),
    st.text(alphabet="0123456789.e- ab\"';,\t\r", max_size=5),
)


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r\n", "\r"]))
    header = draw(st.sampled_from(HEADERS))
    lines = [delimiter.join(header)]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 15))
        width = len(header) + (kind == 1) - (kind == 2)
        if kind == 3:
            lines.append(draw(st.sampled_from(["", " ", delimiter * (len(header) - 1)])))
            continue
        lines.append(delimiter.join(draw(cells) for _ in range(width)))
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    return (draw(st.sampled_from(["", "\ufeff"])) + text).encode()


def read(body: bytes, max_size: int = 10) -> Any:
    try:
        batch = parse_csv_batch(body, max_size=max_size)
    except (InvalidInput, MalformedBody, BatchTooLarge) as error:
        return type(error).__name__, str(error), error.details
    return (
        batch.size,
        batch.features.tolist(),
        batch.keys,
        batch.positions,
        batch.errors,
        batch.invalid_keys,
    )


@settings(max_examples=400, deadline=None)
@given(body=csv_bodies())
def test_a_plainly_split_csv_reads_as_the_csv_module_reads_it(body: bytes) -> None:
    split = read(body)
    with patch.object(customer_input, "_plain_table", lambda *arguments: None):
        by_module = read(body)
    assert split == by_module


def test_the_bank_export_is_split_at_once_and_reads_as_the_csv_module_reads_it(
    bank_export: Any,
) -> None:
    body = bank_export.read_bytes()
    text = body.decode("utf-8-sig")
    assert customer_input._plain_table(text, ",", 1_000) is not None
    with patch.object(customer_input, "_plain_table", lambda *arguments: None):
        by_module = read(body, 1_000)
    assert read(body, 1_000) == by_module
    assert by_module[0] == 660


json_numbers = st.from_regex(
    r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


@settings(max_examples=500, deadline=None)
@given(
    texts=st.lists(
        st.one_of(json_numbers, st.text(alphabet="0123456789.eE+- \t", max_size=6)),
        min_size=1,
        max_size=5,
    )
)
def test_cells_read_at_once_are_what_float_reads(texts: list[str]) -> None:
    numbers = batch_screening._json_numbers([texts])
    if numbers is None:
        return
    for text, number in zip(texts, numbers[:, 0].tolist(), strict=True):
        expected = float(text)
        assert math.isfinite(number)
        assert number == expected


NUMBERS_ONLY = [
    # The export's row number and the features: numbers only, read in one pass.
    "Sl_No,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,Total_visits_online,"
    "Total_calls_made\n1,100000,2,1,1,0\n2,50000, 3 ,0,10,9\n",
    "\t".join(FEATURES) + "\n25000\t4\t2\t3\t1\n12000.5\t1\t0\t2\t2\n",
    # A decimal comma where semicolons separate the cells: not a number a cell.
    ";".join(FEATURES) + "\n25000,5;4;2;3;1\n",
    # A row number that is not a number (it is not read), an invalid row, an empty cell.
    "Sl_No," + ",".join(FEATURES) + "\nfirst,25000,4,2,3,1\n",
    ",".join(FEATURES) + "\n25000,4,2,3,1\n-1,4,2,3,1\n",
    ",".join(FEATURES) + "\n25000,4,2,,1\n",
]


def test_a_keyless_csv_of_numbers_reads_as_the_csv_module_reads_it() -> None:
    for text in NUMBERS_ONLY:
        body = text.encode()
        with patch.object(customer_input, "_plain_table", lambda *arguments: None):
            by_module = read(body)
        assert read(body) == by_module, text


def test_a_keyless_csv_of_valid_numbers_is_read_without_a_string_per_cell() -> None:
    body = NUMBERS_ONLY[0].encode()
    with patch.object(customer_input.PlainTable, "columns", side_effect=AssertionError):
        batch = parse_csv_batch(body, max_size=10)
    assert batch.features.tolist() == [[100000, 2, 1, 1, 0], [50000, 3, 0, 10, 9]]
    assert batch.positions == [0, 1]
    assert batch.keys == [None, None]
