"""A batch's answer as columns: one list per field instead of one object per customer.

For campaign tools that load answers into tables: each segment's name and recommended
actions are given once (under ``segments``) instead of in every result, and the columns
are rendered straight from the scorer's arrays, with no object per customer. The values
are those of the row answer (``results``), field for field; ``errors`` lists the items
that were not scored, as the row answer does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from segmentation.scoring import FloatArray, ScoredBatch
from service.models.active_model import ActiveModel, rounded
from service.scoring.customer_input import CustomerBatch


def columnar_response(
    model: ActiveModel,
    batch: CustomerBatch,
    scored: ScoredBatch,
    features: FloatArray,
    keys: list[str | None],
    positions: list[int],
    errors: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """The answer to ``batch``: its scored rows (the scores of ``features``, input indices
    ``positions``, customer keys ``keys``) in input order, and the items in ``errors``.
    """
    at = np.asarray(positions, dtype=np.intp)
    order = np.argsort(at, kind="stable")
    ids = model.segment_ids
    labels = scored.labels[order]
    segment_ids = [ids[label] for label in labels.tolist()]
    atypical = scored.atypical[order]
    # One contiguous row per segment: orjson writes only contiguous arrays.
    by_segment = np.ascontiguousarray(rounded(scored.distances[order]).T)
    rows = order.tolist()
    ordered_keys = [keys[row] for row in rows]
    reasons = [
        scored.atypical_reasons(row) if flag else []
        for row, flag in zip(rows, atypical.tolist(), strict=True)
    ]
    columns: dict[str, Any] = {
        "index": at[order],
        "customer_key": ordered_keys,
        "segment_id": segment_ids,
        "confidence": rounded(scored.confidence[order]),
        "distances": dict(zip(ids, by_segment, strict=True)),
        "runner_up_segment_id": [ids[label] for label in scored.runner_up_labels[order].tolist()],
        "atypical": atypical,
        "atypical_reasons": reasons,
        "atypical_explanations": model.explanations_of(scored, features, reasons, rows),
    }
    if any(key is not None for key in ordered_keys):
        columns["recorded"] = [True if key is not None else None for key in ordered_keys]
    counts = dict.fromkeys(ids, 0)
    counts.update(Counter(segment_ids))
    return {
        "model_version": model.version,
        "counts": counts,
        "n_errors": len(errors),
        "size": batch.size,
        "segments": {
            card.segment_id: {
                "segment_name": card.name,
                "segment_description": card.description,
                "recommended_actions": card.recommended_actions,
            }
            for card in model.cards
        },
        "columns": columns,
        "errors": [
            {"index": index, "customer_key": batch.key_of_error(index), "error": error}
            for index, error in sorted(errors.items())
        ],
    }


def mark_not_recorded(
    response: dict[str, Any], indices: list[int], fields: dict[str, bool]
) -> None:
    """Say of the scored items at input ``indices`` what ``fields`` say (see
    :data:`service.customer_records.RECORDED`)."""
    columns = response["columns"]
    # The index column is sorted and unique: each item's place in every column.
    places = np.searchsorted(columns["index"], indices).tolist()
    for field, value in fields.items():
        column = columns.setdefault(field, [None] * len(columns["segment_id"]))
        for place in places:
            column[place] = value
