"""Drift: is the live population still the one the served model was trained on?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.api.deps import ServingDep, WindowDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.models.drift import report_drift
from service.schemas import DriftReport

router = APIRouter(tags=["model"])


@router.get("/drift", response_model=DriftReport, responses=errors(503))
async def read_drift(serving: ServingDep, window: WindowDep) -> Response:
    """The population stability index (PSI) of each feature and of the segment mix over
    the newest DRIFT_WINDOW customers scored (by every worker) against training, each with
    its band (ok below 0.1, watch to 0.25, act above; insufficient with fewer than 500
    customers), the share of atypical customers, and whether to retrain, with the reasons."""
    return JSONBytesResponse(await run_in_threadpool(report_drift, serving.model, window))
