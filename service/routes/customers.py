"""Existing customers: their latest assignment and its history, by customer key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.deps import RecordsDep, ServingDep
from service.responses import JSONBytesResponse
from service.routes.openapi import errors
from service.schemas import CustomerRecord

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("/{customer_key}", response_model=CustomerRecord, responses=errors(404, 422, 503))
async def read_customer(customer_key: str, serving: ServingDep, records: RecordsDep) -> Response:
    """A known customer's latest assignment, with its history newest first."""
    answer = await run_in_threadpool(
        records.customer, serving.model, serving.snapshot, customer_key
    )
    return JSONBytesResponse(answer)
