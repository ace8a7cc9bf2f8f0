"""Prometheus metrics of this service (of every worker, with several)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service import metrics

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def read_metrics() -> Response:
    """Requests, latencies, assignments, atypical customers, the served version, reloads."""
    # A plain def: with several workers this reads their files, off the event loop.
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
