"""Segment catalog routes, for operations: what each segment is and what to do about it."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.deps import ServingDep
from service.responses import JSONBytesResponse
from service.routes.openapi import errors
from service.schemas import Segment, SegmentCatalog

router = APIRouter(prefix="/segments", tags=["segments"])


@router.get("", response_model=SegmentCatalog, responses=errors(503))
async def read_segments(serving: ServingDep) -> Response:
    """Every segment's profile, size and recommended actions."""
    model = serving.model
    return JSONBytesResponse({"model_version": model.version, "segments": model.catalog})


@router.get("/{segment_id}", response_model=Segment, responses=errors(404, 422, 503))
async def read_segment(segment_id: str, serving: ServingDep) -> Response:
    """One segment of the active model."""
    return JSONBytesResponse(serving.model.segment(segment_id))
