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
import numpy.typing as npt

from segmentation.scoring import ScoredBatch
from service.models.active_model import ActiveModel, rounded


def columnar_response(
    model: ActiveModel,
    size: int,
    scored: ScoredBatch,
    keys: list[str | None],
    order: npt.NDArray[np.intp],
    positions: npt.NDArray[np.intp],
    errors: dict[int, dict[str, Any]],
    references: dict[int, str],
) -> dict[str, Any]:
    """The answer for ``size`` items: scored rows ``order`` (input order), errors by index.

    ``positions`` are the scored rows' input indices; ``keys`` their customer keys.
    """
    ids = model.segment_ids
    labels = scored.labels[order]
    segment_ids = [ids[label] for label in labels.tolist()]
    atypical = scored.atypical[order]
    # One contiguous row per segment: orjson writes only contiguous arrays.
    by_segment = np.ascontiguousarray(rounded(scored.distances[order]).T)
    ordered_keys = [keys[row] for row in order.tolist()]
    columns: dict[str, Any] = {
        "index": positions[order],
        "customer_key": ordered_keys,
        "segment_id": segment_ids,
        "confidence": rounded(scored.confidence[order]),
        "distances": dict(zip(ids, by_segment, strict=True)),
        "runner_up_segment_id": [ids[label] for label in scored.runner_up_labels[order].tolist()],
        "atypical": atypical,
        "atypical_reasons": [
            scored.atypical_reasons(row) if flag else []
            for row, flag in zip(order.tolist(), atypical.tolist(), strict=True)
        ],
    }
    if any(key is not None for key in ordered_keys):
        columns["recorded"] = [True if key is not None else None for key in ordered_keys]
    counts = dict.fromkeys(ids, 0)
    counts.update(Counter(segment_ids))
    return {
        "model_version": model.version,
        "counts": counts,
        "n_errors": len(errors),
        "size": size,
        "segments": {
            card.segment_id: {
                "segment_name": card.name,
                "recommended_actions": card.recommended_actions,
            }
            for card in model.cards
        },
        "columns": columns,
        "errors": [
            {"index": index, "customer_key": references.get(index), "error": error}
            for index, error in sorted(errors.items())
        ],
    }


def mark_not_recorded(
    response: dict[str, Any], rows: list[int], where: npt.NDArray[np.intp], fields: dict[str, bool]
) -> None:
    """Say of scored ``rows`` (at ``where[row]`` in the columns) what ``fields`` say (see
    :data:`service.customer_records.RECORDED`)."""
    columns = response["columns"]
    for field, value in fields.items():
        column = columns.setdefault(field, [None] * len(columns["segment_id"]))
        for row in rows:
            column[where[row]] = value
