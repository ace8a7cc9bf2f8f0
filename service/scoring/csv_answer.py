"""A batch's answer as CSV (``Accept: text/csv`` or ``?format=csv``), for campaign tools
that load results into a spreadsheet or a table: one row per input item, in input order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.spreadsheet_csv import to_csv

_LEADING = ("index", "customer_key", "segment_id", "segment_name", "confidence")
_TRAILING = ("runner_up_segment_id", "atypical", "atypical_reasons", "model_version")


def answer_columns(segment_ids: Sequence[str]) -> tuple[str, ...]:
    """The header: the row answer's fields, a ``distance_<segment>`` column per segment,
    ``recorded``, and ``error`` (what was wrong with an item that was not scored)."""
    distances = tuple(f"distance_{segment_id}" for segment_id in segment_ids)
    return (*_LEADING, *distances, *_TRAILING, "recorded", "error")


def results_as_csv(response: dict[str, Any], segment_ids: Sequence[str]) -> str:
    """The rows-layout ``response`` of a batch as CSV. Atypical reasons are joined with
    ``;``; empty cells are fields an item does not have (an error's segment, say)."""
    columns = answer_columns(segment_ids)
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
        "error": _error_text(error) if error else "",
    }
    for segment_id, distance in result.get("distances", {}).items():
        row[f"distance_{segment_id}"] = distance
    return row


def _error_text(error: dict[str, Any]) -> str:
    """What was wrong, field by field (a CSV cell cannot hold the details' list)."""
    named = [f"{item['field']}: {item['message']}" for item in error["details"] if item["field"]]
    return "; ".join(named) if named else str(error["message"])
