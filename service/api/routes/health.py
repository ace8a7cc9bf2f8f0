"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.api.deps import HolderDep, RateLimitsDep, RecordsDep, RescoringDep
from service.api.responses import JSONBytesResponse
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])

_ALIVE = JSONBytesResponse({"status": "ok"}).body


@router.get("/health", response_model=Health)
async def read_health() -> Response:
    """The process is alive (says nothing about the model)."""
    return Response(_ALIVE, media_type="application/json")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def read_readiness(
    holder: HolderDep, records: RecordsDep, rescoring: RescoringDep, rate_limits: RateLimitsDep
) -> Response:
    """A verified model is loaded and the service can answer (degraded: the store, or the
    Redis that shares the rate limits, is unreachable), and how far the store's rescoring
    after a switch of model has come."""
    store = await run_in_threadpool(records.status)
    progress = rescoring.progress()
    serving = holder.serving
    if serving is None:
        return JSONBytesResponse(
            {
                "status": "not_ready",
                "model_version": None,
                "reason": holder.failure,
                "store": store,
                "rate_limits": rate_limits,
            },
            status_code=503,
        )
    return JSONBytesResponse(
        {
            "status": "ready" if store == "ok" and _shared(rate_limits) else "degraded",
            "model_version": serving.model.version,
            "reason": holder.failure,
            "store": store,
            "rescoring": None if progress is None else progress.as_dict(),
            "rate_limits": rate_limits,
        }
    )


def _shared(rate_limits: str | None) -> bool:
    """Whether the limits are counted where the settings say (not per process for want of
    Redis)."""
    return rate_limits is None or not rate_limits.startswith("per process:")
