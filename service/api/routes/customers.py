"""Existing customers: their latest assignment and its history, by customer key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from segmentation.features import SENT_CUSTOMER_KEY_PATTERN
from service.api.deps import RecordsDep, ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.schemas import CustomerRecord

router = APIRouter(prefix="/customers", tags=["customers"])

CustomerKey = Annotated[
    str,
    # Documented, not checked here: the look-up says what is wrong with a key (422).
    Path(
        description="The bank's customer key.",
        examples=["38414"],
        json_schema_extra={"pattern": SENT_CUSTOMER_KEY_PATTERN},
    ),
]


@router.get("/{customer_key}", response_model=CustomerRecord, responses=errors(404, 422, 503))
async def read_customer(
    customer_key: CustomerKey, serving: ServingDep, records: RecordsDep
) -> Response:
    """A known customer's latest assignment, with its history newest first."""
    answer = await run_in_threadpool(
        records.customer, serving.model, serving.snapshot, customer_key
    )
    return JSONBytesResponse(answer)
