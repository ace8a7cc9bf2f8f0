"""Segment catalog routes, for operations and campaigns: what each segment is, who is in it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.api.deps import RecordsDep, ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.schemas import Segment, SegmentCatalog, SegmentMember, SegmentMembers
from service.spreadsheet_csv import to_csv

router = APIRouter(prefix="/segments", tags=["segments"])

MEMBER_COLUMNS = tuple(SegmentMember.model_fields)

SegmentId = Annotated[
    str, Path(description="The segment's stable slug.", examples=["support-seeking"])
]


@router.get("", response_model=SegmentCatalog, responses=errors(503))
async def read_segments(serving: ServingDep, records: RecordsDep) -> Response:
    """Every segment's profile, size (training and live) and recommended actions."""
    model = serving.model
    live = await run_in_threadpool(records.live_counts, model.version)
    segments = [
        {**entry, "live_size": None if live is None else live.get(entry["segment_id"], 0)}
        for entry in model.catalog
    ]
    return JSONBytesResponse({"model_version": model.version, "segments": segments})


@router.get("/{segment_id}", response_model=Segment, responses=errors(404, 422, 503))
async def read_segment(segment_id: SegmentId, serving: ServingDep) -> Response:
    """One segment of the active model."""
    return JSONBytesResponse(serving.model.segment(segment_id))


@router.get(
    "/{segment_id}/customers",
    response_model=SegmentMembers,
    responses={
        **errors(404, 422, 503),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
async def read_segment_members(
    segment_id: SegmentId,
    serving: ServingDep,
    records: RecordsDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Customers per page.")] = 1000,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page.")
    ] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json or csv.")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The customers the active model put in the segment, for a campaign, by customer key,
    a page at a time (after a switch of model, those it has rescored so far)."""
    model = serving.model
    model.segment(segment_id)
    members, next_cursor = await run_in_threadpool(
        records.members, segment_id, model_version=model.version, limit=limit, cursor=cursor
    )
    if format == "csv" or (format is None and "text/csv" in (accept or "")):
        headers = {"Next-Cursor": next_cursor} if next_cursor else {}
        return Response(to_csv(members, MEMBER_COLUMNS), media_type="text/csv", headers=headers)
    return JSONBytesResponse({"customers": members, "next_cursor": next_cursor})
