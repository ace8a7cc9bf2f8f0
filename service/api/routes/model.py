"""The active model's manifest summary."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.api.deps import ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.schemas import ModelSummary

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelSummary, responses=errors(503))
async def read_model(serving: ServingDep) -> Response:
    """Which model answers, when and on what it was trained, and how well it fits."""
    return JSONBytesResponse(serving.model.summary())
