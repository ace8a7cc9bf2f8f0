"""The batch row answer as it was built before issue 19, one dict per customer: the
reference that the answer rendered from fragments is held to, byte for byte."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from service.customer_records import RECORDED, CustomerRecords, to_keep
from service.models.active_model import ActiveModel
from service.scoring.batch_scoring import _stored_customers
from service.scoring.customer_input import CustomerBatch
from service.spreadsheet_csv import to_csv


def legacy_answer(
    model: ActiveModel, batch: CustomerBatch, records: CustomerRecords | None
) -> tuple[bytes, str]:
    """The JSON body and the CSV text ``score_batch`` gave for ``batch`` (rows layout)."""
    errors = dict(batch.errors)
    features, keys, positions = batch.features, list(batch.keys), list(batch.positions)
    to_record = [True] * len(positions)
    if batch.references:
        assert records is not None
        stored, unchanged = _stored_customers(model, batch.references, records, errors)
        if stored:
            features = np.vstack([features, np.array([row for _, _, row in stored])])
            keys += [key for _, key, _ in stored]
            positions += [index for index, _, _ in stored]
            to_record += [index not in unchanged for index, _, _ in stored]
    scored = model.scorer.score(features)
    keyed = [row for row, key in enumerate(keys) if key is not None] if records else []
    to_write = [row for row in keyed if to_record[row]]
    block = to_keep(model, scored, features, keys, source="batch", rows=to_write)
    recorded = records.record(block) if records is not None and block is not None else RECORDED
    assignments = model.assignments_from(scored, features, keys, indices=positions)
    for row in keyed:
        assignments[row]["recorded"] = True
    if recorded is not RECORDED:
        for row in to_write:
            assignments[row].update(recorded)
    response = _response(model, batch, assignments, errors)
    body = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    return body, _results_as_csv(response, model.segment_ids)


def _response(
    model: ActiveModel,
    batch: CustomerBatch,
    assignments: list[dict[str, Any]],
    errors: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    counts = dict.fromkeys(model.segment_ids, 0)
    counts.update(Counter(assignment["segment_id"] for assignment in assignments))
    results: list[dict[str, Any]] = [{} for _ in range(batch.size)]
    for assignment in assignments:
        results[assignment["index"]] = assignment
    for index, error in errors.items():
        results[index] = {
            "index": index,
            "customer_key": batch.key_of_error(index),
            "error": error,
        }
    return {
        "model_version": model.version,
        "counts": counts,
        "n_errors": len(errors),
        "results": results,
    }


_LEADING = ("index", "customer_key", "segment_id", "segment_name", "confidence")
_TRAILING = ("runner_up_segment_id", "atypical", "atypical_reasons", "model_version")


def _results_as_csv(response: dict[str, Any], segment_ids: Sequence[str]) -> str:
    distances = tuple(f"distance_{segment_id}" for segment_id in segment_ids)
    columns = (*_LEADING, *distances, *_TRAILING, "recorded", "error")
    no_distances = {column: "" for column in columns if column.startswith("distance_")}
    return to_csv((_row(result, no_distances) for result in response["results"]), columns)


def _row(result: dict[str, Any], no_distances: dict[str, str]) -> dict[str, Any]:
    error = result.get("error")
    row: dict[str, Any] = {
        **no_distances,
        "index": result["index"],
        "customer_key": result.get("customer_key") or "",
        "segment_id": result.get("segment_id", ""),
        "segment_name": result.get("segment_name", ""),
        "confidence": result.get("confidence", ""),
        "runner_up_segment_id": result.get("runner_up_segment_id", ""),
        "atypical": result.get("atypical", ""),
        "atypical_reasons": ";".join(result.get("atypical_reasons", ())),
        "model_version": result.get("model_version", ""),
        "recorded": result.get("recorded", ""),
        "error": error_text(error) if error else "",
    }
    for segment_id, distance in result.get("distances", {}).items():
        row[f"distance_{segment_id}"] = distance
    return row


def error_text(error: dict[str, Any]) -> str:
    named = [f"{item['field']}: {item['message']}" for item in error["details"] if item["field"]]
    return "; ".join(named) if named else str(error["message"])
