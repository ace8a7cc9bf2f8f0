"""What would move a customer: the smallest change that reaches another segment."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.api.deps import RecordsDep, ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.schemas import CustomerMoves, MoveRequest
from service.scoring.moves import customer_moves

router = APIRouter(tags=["moves"])


@router.post(
    "/segment/moves", response_model=CustomerMoves, responses=errors(400, 404, 413, 422, 503)
)
async def move_customer(request: MoveRequest, serving: ServingDep, records: RecordsDep) -> Response:
    """The customer's segment now and, for the target (or every other segment), the
    smallest change in whole numbers within the training range that moves the customer
    there, with its effort and that segment's recommended actions; an unreachable target
    (with the features that cannot change) is answered with the reason."""
    answer = await run_in_threadpool(
        customer_moves, serving.model, records, serving.snapshot, request
    )
    return JSONBytesResponse(answer)
