"""A batch's answer as CSV (``Accept: text/csv`` or ``?format=csv``), for campaign tools
that load results into a spreadsheet or a table: one row per input item, in input order.

Rendered like the JSON row answer (:mod:`service.scoring.row_answer`): from the scored
rows' columns and the model's per-segment fragments, with only atypical customers and
items not scored written one at a time; the text is what the csv module writes for the
answer's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from service.scoring.answer_fragments import AnswerFragments, csv_line, csv_text_cells
from service.scoring.row_answer import RowsResponse, ScoredRows, number_texts, with_rows_between

_LEADING = ("index", "customer_key", "segment_id", "segment_name", "confidence")
_TRAILING = ("runner_up_segment_id", "atypical", "atypical_reasons", "model_version")


def answer_columns(segment_ids: Sequence[str]) -> tuple[str, ...]:
    """The header: the row answer's fields, a ``distance_<segment>`` column per segment,
    ``recorded``, and ``error`` (what was wrong with an item that was not scored)."""
    distances = tuple(f"distance_{segment_id}" for segment_id in segment_ids)
    return (*_LEADING, *distances, *_TRAILING, "recorded", "error")


def results_as_csv(response: dict[str, Any], segment_ids: Sequence[str]) -> str:
    """The rows-layout ``response`` of a batch (see
    :func:`~service.scoring.batch_scoring.score_batch`) as CSV. Atypical reasons are joined
    with ``;``; empty cells are fields an item does not have (an error's segment, say)."""
    if not isinstance(response, RowsResponse):
        raise TypeError("a CSV answer is rendered from a batch's row answer (RowsResponse)")
    columns = answer_columns(segment_ids)
    pieces = _scored_pieces(response.fragments, response.rows)
    if response.errors:
        no_distances = {column: "" for column in columns if column.startswith("distance_")}
        failed = sorted(response.errors)
        lines = [
            csv_line([row[column] for column in columns])
            for row in (
                _row(index, response.error_keys[index], response.errors[index], no_distances)
                for index in failed
            )
        ]
        pieces = with_rows_between(pieces, _WIDTH, response.rows.indices, failed, lines)
    pieces.insert(0, csv_line(columns))
    return "".join(pieces)


_SAFE_RANGE = (1e-4, 1e16)
"""Where orjson writes a float as Python's ``repr`` does (the csv module writes ``repr``):
outside it the two choose exponents differently (``1e-5`` against ``1e-05``)."""


_WIDTH = 6
"""Pieces of a scored row: index, comma, key, segment cells, numbers, the rest."""


def _scored_pieces(fragments: AnswerFragments, rows: ScoredRows) -> list[str]:
    """The scored rows' lines, in input order, in pieces (``_WIDTH`` a row)."""
    count = len(rows.indices)
    if not count:
        return []
    numbers = np.empty((count, 1 + len(fragments.segment_ids)))
    numbers[:, 0] = rows.confidence
    numbers[:, 1:] = rows.distances
    text = orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    number_cells = text[2:-2].split("],[")
    with np.errstate(invalid="ignore"):
        size = np.abs(numbers)
        written_as_repr = (numbers == 0) | ((size >= _SAFE_RANGE[0]) & (size < _SAFE_RANGE[1]))
    for row in np.flatnonzero(~written_as_repr.all(axis=1)).tolist():
        number_cells[row] = ",".join(repr(value) for value in numbers[row].tolist())
    keys = [key or "" for key in rows.keys]
    width = _WIDTH
    pieces: list[str] = [","] * (count * width)
    pieces[0::width] = number_texts(rows.indices)
    pieces[2::width] = csv_text_cells(keys)
    pieces[3::width] = fragments.csv_segments[rows.labels].tolist()
    pieces[4::width] = number_cells
    tails = np.empty((len(rows.recorded_states), len(fragments.segment_ids)), dtype=object)
    for code, state in enumerate(rows.recorded_states):
        tails[code] = fragments.csv_tails(state)
    pieces[5::width] = tails[rows.recorded, rows.runner_up_labels].tolist()
    # Atypical rows share a few runner-ups, reasons and records: each tail is written once.
    atypical_tails: dict[tuple[int, int, tuple[str, ...]], str] = {}
    for row, reasons in rows.reasons.items():
        code, label = int(rows.recorded[row]), int(rows.runner_up_labels[row])
        key = (code, label, tuple(reasons))
        if key not in atypical_tails:
            atypical_tails[key] = fragments.csv_tail(label, reasons, rows.recorded_states[code])
        pieces[row * width + 5] = atypical_tails[key]
    return pieces


def _row(
    index: int, key: str | None, error: dict[str, Any], no_distances: dict[str, str]
) -> dict[str, Any]:
    """An item that was not scored, by column."""
    return {
        **no_distances,
        "index": index,
        "customer_key": key or "",
        "segment_id": "",
        "segment_name": "",
        "confidence": "",
        "runner_up_segment_id": "",
        "atypical": "",
        "atypical_reasons": "",
        "model_version": "",
        "recorded": "",
        "error": error_text(error),
    }


def error_text(error: dict[str, Any]) -> str:
    """What was wrong, field by field (a CSV cell cannot hold the details' list)."""
    named = [f"{item['field']}: {item['message']}" for item in error["details"] if item["field"]]
    return "; ".join(named) if named else str(error["message"])
