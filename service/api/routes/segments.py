"""Segment catalog routes, for operations and campaigns: what each segment is, who is in it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from segmentation.features import FEATURES
from service.api.deps import RecordsDep, ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import CSV_ANSWER, CURSOR_PATTERN, errors
from service.schemas import (
    Segment,
    SegmentCatalog,
    SegmentMember,
    SegmentMembers,
    SegmentProspects,
)
from service.scoring.moves import MAX_PROSPECTS_PAGE, prospect_columns, segment_prospects
from service.spreadsheet_csv import to_csv

router = APIRouter(prefix="/segments", tags=["segments"])

MEMBER_COLUMNS = tuple(SegmentMember.model_fields)
PROSPECT_COLUMNS = (
    "customer_key",
    "segment_id",
    "effort",
    *FEATURES,
    *(f"{feature}_change" for feature in FEATURES),
)
"""A prospect as a CSV row: the changed customer's values, then the change of each."""

PageCursor = Annotated[
    str | None,
    Query(max_length=512, pattern=CURSOR_PATTERN, description="next_cursor of the previous page."),
]
AnswerFormat = Annotated[Literal["json", "csv"] | None, Query(description="json or csv.")]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]

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
    responses={**errors(404, 422, 503), **CSV_ANSWER},
)
async def read_segment_members(
    segment_id: SegmentId,
    serving: ServingDep,
    records: RecordsDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Customers per page.")] = 1000,
    cursor: PageCursor = None,
    format: AnswerFormat = None,
    accept: AcceptHeader = None,
) -> Response:
    """The customers the active model put in the segment, for a campaign, by customer key,
    a page at a time (after a switch of model, those it has rescored so far)."""
    model = serving.model
    model.segment(segment_id)
    members, next_cursor = await run_in_threadpool(
        records.members, segment_id, model_version=model.version, limit=limit, cursor=cursor
    )
    if _wants_csv(format, accept):
        return _csv_page(to_csv(members, MEMBER_COLUMNS), next_cursor)
    return JSONBytesResponse({"customers": members, "next_cursor": next_cursor})


@router.get(
    "/{segment_id}/prospects",
    response_model=SegmentProspects,
    responses={**errors(404, 422, 503), **CSV_ANSWER},
)
async def read_segment_prospects(
    segment_id: SegmentId,
    serving: ServingDep,
    records: RecordsDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PROSPECTS_PAGE, description="Customers per page.")
    ] = 100,
    max_effort: Annotated[
        float | None,
        Query(ge=0, allow_inf_nan=False, description="Only changes of at most this effort."),
    ] = None,
    cursor: PageCursor = None,
    format: AnswerFormat = None,
    accept: AcceptHeader = None,
) -> Response:
    """For a campaign: the known customers of other segments nearest to entering this one
    (from the store's latest assignments by the active model), least effort first, each
    with the smallest change that would bring them in; a page at a time."""
    model = serving.model
    prospects, next_cursor = await run_in_threadpool(
        segment_prospects,
        model,
        records,
        segment_id,
        limit=limit,
        max_effort=max_effort,
        cursor=cursor,
    )
    if _wants_csv(format, accept):
        rows = [prospect_columns(prospect) for prospect in prospects]
        return _csv_page(to_csv(rows, PROSPECT_COLUMNS), next_cursor)
    return JSONBytesResponse(
        {
            "segment_id": segment_id,
            "model_version": model.version,
            "prospects": prospects,
            "next_cursor": next_cursor,
        }
    )


def _wants_csv(format: str | None, accept: str | None) -> bool:
    return format == "csv" or (format is None and "text/csv" in (accept or ""))


def _csv_page(body: str, next_cursor: str | None) -> Response:
    headers = {"Next-Cursor": next_cursor} if next_cursor else {}
    return Response(body, media_type="text/csv", headers=headers)
