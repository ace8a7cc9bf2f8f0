"""Existing customers: their latest assignment, looked up by customer key."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.customer_lookup import training_assignment
from service.deps import ServingDep
from service.responses import JSONBytesResponse
from service.routes.openapi import errors
from service.schemas import CustomerRecord

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("/{customer_key}", response_model=CustomerRecord, responses=errors(404, 422, 503))
async def read_customer(customer_key: str, serving: ServingDep) -> Response:
    """A known customer's latest assignment."""
    return JSONBytesResponse(training_assignment(serving.model, serving.snapshot, customer_key))
