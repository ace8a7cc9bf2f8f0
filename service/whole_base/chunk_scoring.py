"""The one scoring function of a whole-base run, in this process and on Dask workers alike:
a chunk of rows in, its answer rows out, through the service's own batch validation and
scoring (``parse_csv_batch`` and ``score_batch``, as ``POST /segment/batch`` uses them).

The answer has one row per input row, in input order: the assignment's ``customer_key,
segment_id, confidence, atypical, model_version``, or for a refused row its ``error`` and
its ``location`` (file and line or row).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as arrow

from service.customer_records import CustomerRecords
from service.errors import ServiceError
from service.models.active_model import ActiveModel
from service.scoring.batch_scoring import score_batch
from service.scoring.customer_input import CustomerBatch, parse_csv_batch
from service.whole_base.errors import WholeBaseError
from service.whole_base.pieces import Piece
from service.whole_base.reading import RawChunk, read_chunks

OUTPUT_SCHEMA = arrow.schema(
    [
        ("customer_key", arrow.string()),
        ("segment_id", arrow.string()),
        ("confidence", arrow.float64()),
        ("atypical", arrow.bool_()),
        ("model_version", arrow.string()),
        ("error", arrow.string()),
        ("location", arrow.string()),
    ]
)
OUTPUT_COLUMNS: tuple[str, ...] = tuple(OUTPUT_SCHEMA.names)


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk's answer rows, and what it advances its file's progress by."""

    table: Any
    """A ``pyarrow.Table`` with :data:`OUTPUT_SCHEMA`."""
    consumed: int
    unrecorded: int = 0
    """Keyed rows the store could not record (with ``--store`` only)."""


def score_piece(
    model: ActiveModel,
    piece: Piece,
    *,
    chunk_size: int,
    records: CustomerRecords | None = None,
) -> Iterator[ScoredChunk]:
    """Score a piece chunk by chunk, in order; with ``records``, keyed rows are recorded."""
    for chunk in read_chunks(piece, chunk_size):
        yield score_chunk(model, chunk, records)


def score_chunk(
    model: ActiveModel, chunk: RawChunk, records: CustomerRecords | None
) -> ScoredChunk:
    """One chunk's answer rows, equal field for field to the service's answer for them."""
    batch = _validated(chunk)
    answer = score_batch(model, batch, records, layout="columns").response
    recorded = answer["columns"].get("recorded", ())
    return ScoredChunk(
        table=_answer_table(model.version, chunk, batch, answer),
        consumed=chunk.consumed,
        unrecorded=sum(1 for value in recorded if value is False),
    )


def refusal_text(error: dict[str, Any]) -> str:
    """A refused row's error as one line: each field, what is wrong with it, the rule."""
    problems = "; ".join(
        f"{item['field'] or 'row'}: {item['message']} ({item['rule']})" for item in error["details"]
    )
    return problems or str(error["message"])


def _validated(chunk: RawChunk) -> CustomerBatch:
    try:
        return parse_csv_batch(chunk.body, max_size=sys.maxsize)
    except ServiceError as error:  # the whole chunk, e.g. text that is not UTF-8
        raise WholeBaseError(f"{chunk.path} {chunk.span()}: {error.message}") from None


def _answer_table(
    version: str, chunk: RawChunk, batch: CustomerBatch, answer: dict[str, Any]
) -> Any:
    """The columnar answer spread back over the input's rows (refused rows in their place)."""
    size, columns = batch.size, answer["columns"]
    at = np.asarray(columns["index"], dtype=np.intp)
    scored = np.zeros(size, dtype=bool)
    scored[at] = True
    keys = _objects(size, at, columns["customer_key"])
    segment_ids = _objects(size, at, columns["segment_id"])
    confidence = np.zeros(size)
    confidence[at] = columns["confidence"]
    atypical = np.zeros(size, dtype=bool)
    atypical[at] = columns["atypical"]
    errors = np.full(size, None, dtype=object)
    locations = np.full(size, None, dtype=object)
    if answer["errors"]:
        where = chunk.locations()
        for item in answer["errors"]:
            index = item["index"]
            keys[index] = item["customer_key"]
            errors[index] = refusal_text(item["error"])
            # The lines are found apart from validation: should they disagree, the chunk.
            place = where[index] if index < len(where) else chunk.span()
            locations[index] = f"{chunk.path} {place}"
    return arrow.table(
        [
            arrow.array(keys, arrow.string()),
            arrow.array(segment_ids, arrow.string()),
            arrow.array(confidence, mask=~scored),
            arrow.array(atypical, mask=~scored),
            arrow.array(np.full(size, version, dtype=object), arrow.string()),
            arrow.array(errors, arrow.string()),
            arrow.array(locations, arrow.string()),
        ],
        schema=OUTPUT_SCHEMA,
    )


def _objects(size: int, at: Any, values: list[Any]) -> Any:
    column = np.full(size, None, dtype=object)
    if values:
        column[at] = np.asarray(values, dtype=object)
    return column
