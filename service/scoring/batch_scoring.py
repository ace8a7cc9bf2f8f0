"""Scoring a validated batch: one vectorised pass, results back in input order.

Items that give only a customer key are existing customers: their stored features are
scored with the others (and the new assignment kept when the active model is newer than
the one that made the stored assignment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from segmentation.features import FEATURES
from segmentation.scoring import FloatArray
from service.customer_records import RECORDED, CustomerRecords, to_keep
from service.errors import CustomerNotFound, InvalidInput, StoreUnavailableError, detail
from service.models.active_model import ActiveModel
from service.scoring.columnar_answer import columnar_response, mark_not_recorded
from service.scoring.customer_input import CustomerBatch
from service.scoring.drift_window import DriftWindow
from service.scoring.row_answer import RowsResponse, rows_response, scored_rows


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


Layout = Literal["rows", "columns"]
"""How a batch's answer is laid out: one object per customer, or one list per field."""

RenderedAs = Literal["json", "csv"]
"""What ``render`` makes of a row answer: JSON (of the whole response) or CSV (with
:func:`~service.scoring.csv_answer.results_as_csv`)."""


@dataclass(frozen=True)
class BatchAnswer:
    """A scored batch's response, and its body when a renderer was given."""

    response: dict[str, Any]
    body: bytes | None
    features: FloatArray | None = None
    """What was scored (valid items, then stored customers), for a shadow to score too."""
    segment_ids: list[str] | None = None
    """The active model's segment for each row of ``features``."""


def score_batch(
    model: ActiveModel,
    batch: CustomerBatch,
    records: CustomerRecords | None,
    *,
    window: DriftWindow | None = None,
    render: Callable[[dict[str, Any]], bytes] | None = None,
    layout: Layout = "rows",
    rendered_as: RenderedAs = "json",
) -> BatchAnswer:
    """The batch response: counts per segment and one result per input item, in order
    (``rows``), or the same values as one list per field (``columns``, see
    :mod:`service.scoring.columnar_answer`).

    Keyed customers' assignments are written while the answer is built and rendered, as if
    the write will succeed: the rare failed write costs a second rendering instead of every
    batch waiting for the database before rendering. Without ``records`` nothing is
    written (and the batch may hold no look-ups by key). A row answer ``rendered_as`` CSV
    does not render its results as JSON too (its ``results`` cannot be rendered as JSON).
    """
    errors = dict(batch.errors)
    features, keys, positions = batch.features, list(batch.keys), list(batch.positions)
    # Stored customers whose assignment already comes from this model are not written again.
    to_record = [True] * len(positions)
    if batch.references:
        assert records is not None, "customers given by key alone need the store"
        stored, unchanged = _stored_customers(model, batch.references, records, errors)
        if stored:
            features = np.vstack([features, np.array([row for _, _, row in stored])])
            keys += [key for _, key, _ in stored]
            positions += [index for index, _, _ in stored]
            to_record += [index not in unchanged for index, _, _ in stored]
    scored = model.scorer.score(features)
    segment_ids = model.segment_ids_of(scored.labels)
    if window is not None:
        window.add(model.version, features, segment_ids, scored.atypical)
    keyed = [row for row, key in enumerate(keys) if key is not None] if records else []
    to_write = [row for row in keyed if to_record[row]]
    block = to_keep(model, scored, features, keys, source="batch", rows=to_write)
    recording = (
        records.in_background(records.record, block)
        if records is not None and block is not None
        else None
    )
    response: dict[str, Any]
    try:
        if layout == "columns":
            response = columnar_response(model, batch, scored, features, keys, positions, errors)
        else:
            rows = scored_rows(model, scored, features, keys, positions, keyed, RECORDED)
            response = rows_response(model, batch, rows, errors, as_json=rendered_as == "json")
        body = render(response) if render else None
    finally:
        # Even when building the answer fails, the write is not left running unseen.
        recorded = recording.result() if recording else RECORDED
    if recorded is not RECORDED:
        written = [positions[row] for row in to_write]
        if isinstance(response, RowsResponse):
            response = response.with_recorded(written, recorded)
        else:
            mark_not_recorded(response, written, recorded)
        body = render(response) if render else None
    return BatchAnswer(response, body, features, segment_ids)


def atypical_reasons(response: dict[str, Any]) -> Iterator[str]:
    """Every atypical reason of a batch response's scored customers, in either layout."""
    if isinstance(response, RowsResponse):
        return response.atypical_reasons()
    return (reason for reasons in response["columns"]["atypical_reasons"] for reason in reasons)


def _stored_customers(
    model: ActiveModel,
    references: dict[int, str],
    records: CustomerRecords,
    errors: dict[int, dict[str, Any]],
) -> tuple[list[tuple[int, str, list[float]]], set[int]]:
    """(index, key, stored features) of the known customers; unknown ones become errors.

    Also returns the indices whose stored assignment already comes from this model.
    """
    try:
        found = records.stored_features(list(references.values()))
    except StoreUnavailableError as error:
        for index in references:
            errors[index] = error.as_body()["error"]
        return [], set()
    stored, unchanged = [], set()
    for index, key in references.items():
        row = found.get(key)
        if row is None:
            errors[index] = CustomerNotFound(
                f"customer_key={key!r} is not in the customer store; send its features",
                details=[detail("customer_key", "not_found", "unknown customer")],
            ).as_body()["error"]
            continue
        stored.append((index, key, [float(row[feature]) for feature in FEATURES]))
        if row["model_version"] == model.version:
            unchanged.add(index)
    return stored, unchanged
