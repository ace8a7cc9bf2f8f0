"""Scoring a validated batch for a table answer (Arrow, Parquet): scores kept as arrays.

:func:`~service.scoring.batch_scoring.score_batch` prepares the JSON and CSV answers: each
customer's fields as text, each atypical reason in words. A table answer needs none of it,
so this keeps the scorer's arrays as they are and does per row only what a table cannot do
without: the keys. What it records, adds to the drift window and counts is what
``score_batch`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.scoring import (
    FAR_FROM_CENTROID,
    FloatArray,
    ScoredBatch,
    above_range_reason,
    below_range_reason,
)
from service.customer_records import CustomerRecords, Recorded, to_keep
from service.errors import InvalidInput, detail
from service.models.active_model import ActiveModel
from service.scoring.customer_input import CustomerBatch
from service.scoring.drift_window import DriftWindow

logger = logging.getLogger(__name__)

REASON_CODES = (
    *(below_range_reason(feature) for feature in FEATURES),
    *(above_range_reason(feature) for feature in FEATURES),
    FAR_FROM_CENTROID,
)
"""Every atypical reason code, in the order each row lists its own (as JSON's answer)."""


@dataclass(frozen=True)
class ScoredTable:
    """A scored batch: the scores of its valid rows, where they go, and the rest's errors."""

    size: int
    positions: npt.NDArray[np.intp]
    """Input index of each scored row, ascending."""
    scored: ScoredBatch
    features: FloatArray
    keys: list[str | None]
    """The key of each scored row."""
    errors: dict[int, dict[str, Any]]
    error_keys: dict[int, str | None]
    """The key each item that was not scored gave, if any."""
    has_keys: bool
    """Some item, scored or not, gave a customer key."""
    recorded: Recorded | None
    """What became of the keyed rows' records (None: no row had a key, nothing written)."""
    atypical: npt.NDArray[np.bool_]
    reason_rows: npt.NDArray[np.intp]
    """With ``reason_codes``: each atypical reason of the scored rows, row by row, each
    row's in :data:`REASON_CODES` order (that of the JSON answer's lists)."""
    reason_codes: npt.NDArray[np.intp]
    """Each reason's place in :data:`REASON_CODES`."""

    def reason_counts(self) -> dict[str, int]:
        """How many rows carry each atypical reason."""
        counts = np.bincount(self.reason_codes, minlength=len(REASON_CODES)).tolist()
        return dict(zip(REASON_CODES, counts, strict=True))

    @property
    def in_input_order(self) -> bool:
        """Every item was scored: row ``i`` of the scores is input item ``i``."""
        return len(self.positions) == self.size


def score_table(
    model: ActiveModel,
    batch: CustomerBatch,
    records: CustomerRecords | None,
    *,
    window: DriftWindow | None = None,
) -> ScoredTable:
    """Score ``batch`` and keep its keyed rows' assignments in the store, as ``score_batch``
    does.

    Raises
    ------
    InvalidInput
        The batch (a JSON one) gives customers by key alone: their stored features are
        looked up for JSON and CSV answers only.
    """
    if batch.references:
        raise InvalidInput(
            "customers given by customer_key alone are answered in JSON or CSV only: ask for "
            "one of those, or send their features",
            details=[
                detail(f"customers.{index}", "lookup_not_in_tables", "a customer_key alone")
                for index in sorted(batch.references)
            ],
        )
    features, keys = batch.features, batch.keys
    scored = model.scorer.score(features)
    reason_rows, reason_codes = _reasons(scored)
    atypical = np.zeros(len(features), dtype=bool)
    atypical[reason_rows] = True
    if window is not None:
        # The window keeps its last `size` customers only: only those need their ids.
        tail = slice(max(len(keys) - window.size, 0), None)
        tail_ids = model.segment_ids_of(scored.labels[tail])
        window.add(model.version, features[tail], tail_ids, atypical[tail])
    recorded = None
    keyed = keys.count(None) != len(keys)
    if records is not None and keyed:
        block = to_keep(model, scored, features, keys, source="batch")
        # Written before the answer is built: a table answer is quick to build, so the
        # overlap score_batch gains (and its second rendering on failure) is not worth it.
        recorded = records.record(block) if block is not None else None
    error_keys = {index: batch.key_of_error(index) for index in batch.errors}
    positions = (
        np.arange(batch.size, dtype=np.intp)
        if len(batch.positions) == batch.size
        else np.asarray(batch.positions, dtype=np.intp)
    )
    return ScoredTable(
        size=batch.size,
        positions=positions,
        scored=scored,
        features=features,
        keys=keys,
        errors=batch.errors,
        error_keys=error_keys,
        has_keys=keyed or any(key is not None for key in error_keys.values()),
        recorded=recorded,
        atypical=atypical,
        reason_rows=reason_rows,
        reason_codes=reason_codes,
    )


def _reasons(scored: ScoredBatch) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Where the scored rows' atypical flags are set, as (row, code) pairs in row order.

    One pass over the flags laid flat: numpy's reductions along a row of five are slow,
    and almost every row has no flag at all.
    """
    flags = np.concatenate(
        [scored.below_range, scored.above_range, scored.far_from_centroid[:, None]], axis=1
    )
    at = np.flatnonzero(flags)
    rows, codes = np.divmod(at, len(REASON_CODES))
    return rows, codes


def segment_counts(model: ActiveModel, table: ScoredTable) -> dict[str, int]:
    """How many of the batch's customers each segment got (every segment named)."""
    counts = np.bincount(table.scored.labels, minlength=len(model.segment_ids)).tolist()
    return dict(zip(model.segment_ids, counts, strict=True))
