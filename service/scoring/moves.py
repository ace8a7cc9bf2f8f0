"""What would move a customer: the smallest change to another segment, for the agent on the
call, and the known customers nearest to entering a segment, for a campaign.

The arithmetic is the core's (:mod:`segmentation.moves`); here the customer comes from the
request or the store, and answers are put in the bank's words and units.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np
import orjson

from segmentation.features import COUNT_FEATURES, FEATURES, could_be_customer_key
from segmentation.moves import Move, Unreachable
from service.customer_records import CustomerRecords
from service.errors import InvalidInput, SegmentNotFound, detail
from service.models.active_model import ROUNDED_DIGITS, ActiveModel, rounded_value
from service.models.snapshot import TrainingSnapshot
from service.schemas import MoveRequest

_HALF_ROUNDING = 0.5 * 10.0**-ROUNDED_DIGITS

MAX_PROSPECTS_PAGE = 1_000
"""Prospects in one page at most: each may cost a search of a few milliseconds."""


def customer_moves(
    model: ActiveModel, records: CustomerRecords, snapshot: TrainingSnapshot, request: MoveRequest
) -> dict[str, Any]:
    """The customer's segment and the smallest change to the target, or to every other
    segment.

    Raises
    ------
    InvalidInput
        Some features but not all were sent, or neither features nor a key.
    SegmentNotFound
        The target is not a segment of the model.
    CustomerNotFound, StoreUnavailableError
        A key sent alone that neither the store nor the training snapshot knows, or that
        could not be looked up.
    """
    targets = _targets(model, request.target_segment)
    values = _customer_values(model, records, snapshot, request)
    fixed = {FEATURES.index(name) for name in request.fixed}
    now = model.scorer.score_row(values)
    card = model.cards[now.label]
    moves = [
        _move_answer(model, values, model.moves.smallest_move(values, target, fixed))
        for target in targets
        if target != now.label or request.target_segment is not None
    ]
    moves.sort(key=_cheapest_first)
    return {
        "customer_key": request.customer_key,
        "model_version": model.version,
        "segment_id": card.segment_id,
        "segment_name": card.name,
        "confidence": rounded_value(now.confidence),
        "fixed": list(request.fixed),
        "moves": moves,
    }


def segment_prospects(
    model: ActiveModel,
    records: CustomerRecords,
    segment_id: str,
    *,
    limit: int,
    max_effort: float | None,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the known customers of other segments nearest to entering
    ``segment_id`` (least effort first, then by key) and the cursor of the next page.

    Raises
    ------
    SegmentNotFound
        Not a segment of the model.
    InvalidInput
        ``cursor`` is not one this service gave out.
    StoreUnavailableError
        The store could not be asked.
    """
    model.segment(segment_id)  # refuses an unknown segment
    target = model.label_of(segment_id)
    assert target is not None
    after = decode_prospects_cursor(cursor) if cursor is not None else None
    keys, segment_ids, features = records.others_assigned_by(model.version, segment_id)
    found = model.moves.nearest_prospects(
        keys,
        features,
        target,
        limit=limit + 1,
        # Compared as answered (rounded): a prospect answered with the effort asked for
        # is kept, whichever way its rounding went.
        max_effort=math.inf if max_effort is None else max_effort + _HALF_ROUNDING,
        after=after,
    )
    if max_effort is not None:
        found = [(key, move) for key, move in found if rounded_value(move.effort) <= max_effort]
    segment_of = dict(zip(keys, segment_ids, strict=True))
    rows_of = {key: row for row, key in enumerate(keys)}
    page = [
        {
            "customer_key": key,
            "segment_id": segment_of[key],
            **_change(features[rows_of[key]], move),
        }
        for key, move in found[:limit]
    ]
    if len(found) <= limit:
        return page, None
    last_key, last_move = found[limit - 1]
    return page, encode_prospects_cursor(last_move.effort, last_key)


def encode_prospects_cursor(effort: float, customer_key: str) -> str:
    """The opaque cursor that resumes a prospects listing after this effort and key."""
    return base64.urlsafe_b64encode(orjson.dumps([effort, customer_key])).decode().rstrip("=")


def decode_prospects_cursor(cursor: str) -> tuple[float, str]:
    """The effort and key a cursor from :func:`encode_prospects_cursor` resumes after.

    Raises
    ------
    InvalidInput
        The cursor is not one this service made.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        effort, key = orjson.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not (isinstance(effort, float | int) and math.isfinite(effort) and effort >= 0):
            raise ValueError("not an effort")
        if not (isinstance(key, str) and could_be_customer_key(key)):
            raise ValueError("not a customer key")
        return float(effort), key
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        message = f"cursor={cursor!r} is not a cursor this service handed out"
        raise InvalidInput(message, details=[detail("cursor", "cursor", message)]) from None


def _targets(model: ActiveModel, target_segment: str | None) -> list[int]:
    if target_segment is None:
        return list(range(len(model.cards)))
    label = model.label_of(target_segment)
    if label is None:
        message = (
            f"target_segment={target_segment!r} is not a segment of model {model.version}; "
            f"known: {', '.join(model.segment_ids)}"
        )
        raise SegmentNotFound(message, details=[detail("target_segment", "segment", message)])
    return [label]


def _customer_values(
    model: ActiveModel, records: CustomerRecords, snapshot: TrainingSnapshot, request: MoveRequest
) -> list[float]:
    """The five features sent, or, with a key alone, the stored customer's."""
    sent = {name: getattr(request, name) for name in FEATURES}
    missing = [name for name, value in sent.items() if value is None]
    if not missing:
        return [float(sent[name]) for name in FEATURES]
    if len(missing) == len(FEATURES) and request.customer_key is not None:
        stored = records.customer(model, snapshot, request.customer_key)["features"]
        return [float(stored[name]) for name in FEATURES]
    rule = "send all five features, or a known customer's customer_key alone"
    message = f"{', '.join(missing)} missing: {rule}"
    raise InvalidInput(message, details=[detail(name, "missing", rule) for name in missing])


_NO_MOVE: dict[str, None] = dict.fromkeys(
    ("values", "changes", "effort", "confidence", "recommended_actions")
)


def _move_answer(
    model: ActiveModel, values: list[float], move: Move | Unreachable
) -> dict[str, Any]:
    card = model.cards[move.target]
    answer: dict[str, Any] = {
        "segment_id": card.segment_id,
        "segment_name": card.name,
        "reachable": isinstance(move, Move),
    }
    if isinstance(move, Unreachable):
        return {**answer, "reason": f"{card.name}: {move.reason}", **_NO_MOVE}
    return {
        **answer,
        "reason": None,
        **_change(np.asarray(values), move),
        "confidence": rounded_value(move.confidence),
        "recommended_actions": card.recommended_actions,
    }


def _cheapest_first(move: dict[str, Any]) -> tuple[bool, float]:
    return (not move["reachable"], move["effort"] if move["reachable"] else math.inf)


def _change(customer: np.ndarray[Any, Any], move: Move) -> dict[str, Any]:
    """The changed customer, the change of each feature that changes, and the effort, in the
    bank's units (counts as whole numbers)."""
    values = {
        name: _bank_units(name, value) for name, value in zip(FEATURES, move.values, strict=True)
    }
    changes = {
        name: _bank_units(name, rounded_value(new - old))
        for name, old, new in zip(FEATURES, customer.tolist(), move.values, strict=True)
        if new != old
    }
    return {"values": values, "changes": changes, "effort": rounded_value(move.effort)}


def _bank_units(name: str, value: float) -> float | int:
    return int(value) if name in COUNT_FEATURES else value


def prospect_columns(prospect: dict[str, Any]) -> dict[str, Any]:
    """A prospect flattened for CSV: the changed customer's values under the features'
    names, the change of each under ``<feature>_change`` (0 when it stays)."""
    return {
        "customer_key": prospect["customer_key"],
        "segment_id": prospect["segment_id"],
        "effort": prospect["effort"],
        **prospect["values"],
        **{f"{name}_change": prospect["changes"].get(name, 0) for name in FEATURES},
    }
