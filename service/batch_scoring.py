"""Scoring a validated batch: one vectorised pass, results back in input order."""

from __future__ import annotations

from typing import Any

from service.active_model import ActiveModel
from service.customer_input import CustomerBatch
from service.errors import InvalidInput, detail


def reject_invalid_items(batch: CustomerBatch) -> None:
    """Strict mode: one invalid item refuses the whole batch, listing every item's problems."""
    if not batch.errors:
        return
    details = [
        detail(
            f"customers.{index}.{item['field']}" if item["field"] else f"customers.{index}",
            item["rule"],
            item["message"],
        )
        for index, error in sorted(batch.errors.items())
        for item in error["details"]
    ]
    raise InvalidInput(
        f"{len(batch.errors)} of {batch.size} customers are invalid (strict mode scores none)",
        details=details,
    )


def score_batch(model: ActiveModel, batch: CustomerBatch) -> dict[str, Any]:
    """The batch response: counts per segment and one result per input item, in order."""
    records = model.assign(batch.features, batch.keys)
    results: list[dict[str, Any]] = [{} for _ in range(batch.size)]
    counts = dict.fromkeys(model.segment_ids, 0)
    for index, record in zip(batch.positions, records, strict=True):
        counts[record["segment_id"]] += 1
        results[index] = {"index": index, **record}
    for index, error in batch.errors.items():
        results[index] = {"index": index, "customer_key": None, "error": error}
    return {
        "model_version": model.version,
        "counts": counts,
        "n_errors": len(batch.errors),
        "results": results,
    }
