"""A batch's answer as a table: Arrow IPC stream or Parquet, one row per input item, in order.

The columns are the CSV answer's (:func:`~service.scoring.csv_answer.answer_columns`, a test
holds them equal), typed: segment ids and names dictionary-encoded, scores float64 (rounded
as every answer rounds them), flags bool, the atypical reasons a list of codes; a field an
item does not have (an error's segment, a scored row's error) is null. The schema's
metadata holds the model version, the counts per segment and the number of errors, as the
JSON answer's head does. Every column is built from the scorer's arrays: nothing is done
per row but the keys.

pyarrow is imported only when such an answer is asked for.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np

from service.models.active_model import ActiveModel, rounded
from service.scoring.csv_answer import error_text
from service.scoring.table_scoring import REASON_CODES, ScoredTable, segment_counts

TableFormat = Literal["arrow", "parquet"]


def table_answer(model: ActiveModel, table: ScoredTable) -> Any:
    """The answer to a scored batch as a ``pyarrow.Table``."""
    import pyarrow as arrow

    scored = table.scored
    # The narrowest indices that hold every label: a smaller answer to send.
    width = np.int8 if len(model.segment_ids) <= np.iinfo(np.int8).max else np.int32
    labels = arrow.array(scored.labels.astype(width))
    runner_up = arrow.array(scored.runner_up_labels.astype(width))
    ids, names = arrow.array(model.segment_ids), arrow.array([c.name for c in model.cards])
    scored_columns: dict[str, Any] = {
        "segment_id": arrow.DictionaryArray.from_arrays(labels, ids),
        "segment_name": arrow.DictionaryArray.from_arrays(labels, names),
        "confidence": arrow.array(rounded(scored.confidence)),
    }
    # One contiguous row per segment: Arrow takes each without copying it.
    by_segment = np.ascontiguousarray(rounded(scored.distances).T)
    for label, segment_id in enumerate(model.segment_ids):
        scored_columns[f"distance_{segment_id}"] = arrow.array(by_segment[label])
    scored_columns["runner_up_segment_id"] = arrow.DictionaryArray.from_arrays(runner_up, ids)
    scored_columns["atypical"] = arrow.array(table.atypical)
    scored_columns["atypical_reasons"] = _reasons(table)
    scored_columns["model_version"] = arrow.DictionaryArray.from_arrays(
        arrow.array(np.zeros(len(labels), dtype=np.int8)), arrow.array([model.version])
    )
    scored_columns["recorded"] = _recorded(table)
    every = {
        "index": arrow.array(np.arange(table.size, dtype=np.int64)),
        "customer_key": _text_column(_keys(table) if table.has_keys else None, table.size),
        **{name: _spread(table, column) for name, column in scored_columns.items()},
        "error": _text_column(_errors(table) if table.errors else None, table.size),
    }
    metadata = {
        "model_version": model.version,
        "counts": json.dumps(segment_counts(model, table)),
        "n_errors": str(len(table.errors)),
    }
    return arrow.table(every).replace_schema_metadata(metadata)


def render_table(answer: Any, form: TableFormat) -> memoryview:
    """The table as an Arrow IPC stream or a Parquet file, in memory Arrow allocated (a view
    of it: the answer is sent without being copied into a ``bytes`` first)."""
    import pyarrow as arrow

    if form == "arrow":
        # Measured first, then written once into a buffer of its size: a growing buffer
        # was copied as it grew, which took as long as writing the stream.
        measure = arrow.MockOutputStream()
        with arrow.ipc.new_stream(measure, answer.schema) as writer:
            writer.write_table(answer)
        stream = arrow.allocate_buffer(measure.size())
        with arrow.ipc.new_stream(arrow.FixedSizeBufferWriter(stream), answer.schema) as writer:
            writer.write_table(answer)
        return memoryview(stream)
    import pyarrow.parquet as parquet

    sink = arrow.BufferOutputStream()
    # Dictionary pages for the text columns only (the scores are all distinct), and no
    # statistics (an answer is loaded whole, never filtered by row group): half the time.
    texts = [
        field.name
        for field in answer.schema
        if not (arrow.types.is_floating(field.type) or arrow.types.is_integer(field.type))
        and field.type != arrow.bool_()
    ]
    parquet.write_table(answer, sink, use_dictionary=texts, write_statistics=False)
    return memoryview(sink.getvalue())


def _spread(table: ScoredTable, column: Any) -> Any:
    """A scored rows' column placed at their input indices, null at the items not scored."""
    if table.in_input_order:
        return column
    import pyarrow as arrow

    row_of = np.full(table.size, -1, dtype=np.int64)
    row_of[table.positions] = np.arange(len(table.positions))
    return column.take(arrow.array(row_of, mask=row_of < 0))


def _reasons(table: ScoredTable) -> Any:
    """Each scored row's atypical reason codes (empty for a typical row)."""
    import pyarrow as arrow

    per_row = np.bincount(table.reason_rows, minlength=len(table.atypical))
    offsets = np.zeros(len(per_row) + 1, dtype=np.int32)
    np.cumsum(per_row, out=offsets[1:])
    values = arrow.array(REASON_CODES).take(arrow.array(table.reason_codes.astype(np.int32)))
    return arrow.ListArray.from_arrays(arrow.array(offsets), values)


def _recorded(table: ScoredTable) -> Any:
    """Whether each scored row's assignment was kept: null for a row without a key."""
    import pyarrow as arrow

    if table.recorded is None:
        return arrow.nulls(len(table.keys), type=arrow.bool_())
    keyed = np.array([key is not None for key in table.keys], dtype=bool)
    flags = np.full(len(keyed), table.recorded["recorded"], dtype=bool)
    return arrow.array(flags, mask=~keyed)


def _text_column(values: list[str | None] | None, size: int) -> Any:
    """Text, or all null when there is none (no keys, no errors: the common batch)."""
    import pyarrow as arrow

    if values is None:
        return arrow.nulls(size, type=arrow.string())
    return arrow.array(values, type=arrow.string())


def _keys(table: ScoredTable) -> list[str | None]:
    if table.in_input_order:
        return table.keys
    keys: list[str | None] = [table.error_keys.get(index) for index in range(table.size)]
    for index, key in zip(table.positions.tolist(), table.keys, strict=True):
        keys[index] = key
    return keys


def _errors(table: ScoredTable) -> list[str | None]:
    errors: list[str | None] = [None] * table.size
    for index, error in table.errors.items():
        errors[index] = error_text(error)
    return errors
