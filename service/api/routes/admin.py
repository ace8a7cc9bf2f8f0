"""Operations on the running service, behind ``ADMIN_API_KEY``: which model version serves."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service import metrics
from service.api.deps import HolderDep, ShadowDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.errors import ServiceError, VersionNotFound
from service.models import lifecycle
from service.request_context import CLIENT_NAME
from service.schemas import (
    LifecycleRequest,
    RejectResult,
    ReloadRequest,
    ReloadResult,
    ShadowReport,
    ShadowRequest,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/reload", response_model=ReloadResult, responses=errors(400, 401, 403, 404, 409, 413, 422, 429)
)
async def reload_model(
    holder: HolderDep, request: Annotated[ReloadRequest | None, Body()] = None
) -> Response:
    """Verify a version (default: what `latest` names), point `latest` at it and serve it.

    A version that fails verification, or a `latest` that cannot be written (a read-only
    or full volume), gets 409 and the current model keeps serving; an unknown version gets
    404, an invalid version name 422. Requests in flight finish on
    the model they started with. A load that outlasts REQUEST_TIMEOUT_SECONDS answers
    504 but still completes (or fails) in its thread.
    """
    version = request.version if request is not None else None
    try:
        activated, previous = await run_in_threadpool(
            lifecycle.reload, holder, version, by=_caller()
        )
    except ServiceError as refusal:
        outcome = "not_found" if isinstance(refusal, VersionNotFound) else "refused"
        metrics.record_reload("admin", outcome)
        logger.warning("admin reload of %s refused: %s", version or "latest", refusal.message)
        raise
    except Exception:
        metrics.record_reload("admin", "error")
        raise
    metrics.record_reload("admin", "success")
    logger.info("admin reload: serving %s (was %s)", activated, previous)
    return JSONBytesResponse({"model_version": activated, "previous_version": previous})


@router.post(
    "/promote",
    response_model=ReloadResult,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
async def promote_model(holder: HolderDep, request: LifecycleRequest) -> Response:
    """Make a candidate (or, to roll back, a retired version) the active version.

    The version is verified as a reload verifies it, the promotion goes into the version
    history with the reason and the calling client, `latest` is repointed and every
    worker follows. 409 for the active version, a rejected one or one that fails
    verification (the current model keeps serving); 404 for an unknown one.
    """
    activated, previous = await run_in_threadpool(
        lifecycle.promote, holder, request.version, reason=request.reason, by=_caller()
    )
    metrics.record_reload("admin", "success")
    logger.info("promoted %s (was %s): %s", activated, previous, request.reason)
    return JSONBytesResponse({"model_version": activated, "previous_version": previous})


@router.post(
    "/reject",
    response_model=RejectResult,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
async def reject_model(holder: HolderDep, request: LifecycleRequest) -> Response:
    """Mark a candidate rejected, with the reason: it can no longer be promoted (409 if not
    a candidate, 404 if unknown)."""
    status = await run_in_threadpool(
        lifecycle.reject, holder.models_dir, request.version, reason=request.reason, by=_caller()
    )
    logger.info("rejected %s: %s", request.version, request.reason)
    return JSONBytesResponse({"model_version": request.version, "status": status})


def _caller() -> str:
    return CLIENT_NAME.get() or "admin"


@router.post(
    "/shadow", response_model=ShadowReport, responses=errors(400, 401, 403, 404, 409, 413, 422, 429)
)
async def start_shadow(holder: HolderDep, shadow: ShadowDep, request: ShadowRequest) -> Response:
    """Score every live request with this version too, on every worker; answers still come
    from the active version alone. The version is verified exactly as a reload verifies it
    (409 if it does not verify or is the active version, 404 if unknown). A shadow running
    before is replaced. A shadow ends with a promotion; on one machine it ends with a
    restart too, while with REDIS_URL it is kept in Redis and survives a rolling restart."""
    active = holder.current().model.version
    report = await run_in_threadpool(shadow.start, request.version, active=active)
    logger.info("shadow scoring with %s started", request.version)
    return JSONBytesResponse(report)


@router.get("/shadow", response_model=ShadowReport, responses=errors(401, 403, 429))
async def read_shadow(shadow: ShadowDep) -> Response:
    """Over the live traffic of every worker since the shadow started: requests and
    customers seen, the share the shadow assigned like the active version (agreement), and
    the transitions (active segment -> shadow segment); ``stopped`` says why it ended."""
    return JSONBytesResponse(await run_in_threadpool(shadow.report))


@router.delete("/shadow", response_model=ShadowReport, responses=errors(401, 403, 429))
async def stop_shadow(shadow: ShadowDep) -> Response:
    """Stop the shadow on every worker; its counts stay in the report."""
    await run_in_threadpool(shadow.stop, f"stopped by {_caller()} (DELETE /admin/shadow)")
    return JSONBytesResponse(await run_in_threadpool(shadow.report))
