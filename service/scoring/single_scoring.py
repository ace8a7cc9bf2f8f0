"""Scoring one customer on the live path: parse, score, keep (for a known customer), count.

The CRM's call, beside :func:`service.scoring.batch_scoring.score_batch`; the route only reads the
request and writes the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from service import metrics
from service.customer_records import CustomerRecords, keep_answer
from service.models.active_model import ActiveModel
from service.models.shadow import Shadow
from service.scoring.customer_input import features_of, parse_customer
from service.scoring.drift_window import DriftWindow


async def score_one(
    model: ActiveModel,
    records: CustomerRecords,
    window: DriftWindow,
    body: bytes,
    *,
    shadow: Shadow | None = None,
) -> dict[str, Any]:
    """The assignment of the customer in a JSON ``body``.

    With a ``customer_key`` the answer is kept in the store first and says whether it was
    (``"recorded"``); a new prospect, without a key, is scored and forgotten.

    Raises
    ------
    InvalidInput, MalformedBody
        The body is not one valid customer.
    """
    customer = parse_customer(body)
    features = features_of([customer])
    assignment = model.assign_one(features[0].tolist(), customer.customer_key)
    if customer.customer_key is not None:
        assignment.update(await records.record_answer(keep_answer(assignment, features)))
    window.add(model.version, features, [assignment["segment_id"]], [assignment["atypical"]])
    if shadow is not None and shadow.version is not None:
        # After this answer has gone: the shadow never holds an answer back.
        asyncio.get_running_loop().call_soon(shadow.observe, [assignment["segment_id"]], features)
    metrics.record_assignments((assignment["segment_id"],))
    if assignment["atypical"]:
        metrics.record_atypical(assignment["atypical_reasons"])
    return assignment
