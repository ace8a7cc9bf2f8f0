"""The active model's manifest summary, and every published version with its status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from segmentation.artifact import VERSION_NAME_MAX_LENGTH, VERSION_NAME_PATTERN
from segmentation.comparison import Thresholds
from service.api.deps import HolderDep, RecordsDep, ServingDep, SettingsDep, ShadowDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.models.lifecycle import comparison, list_versions
from service.schemas import ComparisonReport, ModelSummary, ModelVersions

_DEFAULTS = Thresholds()
VersionName = Annotated[str, Path(max_length=VERSION_NAME_MAX_LENGTH, pattern=VERSION_NAME_PATTERN)]

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelSummary, responses=errors(503))
async def read_model(serving: ServingDep) -> Response:
    """Which model answers, when and on what it was trained, and how well it fits."""
    return JSONBytesResponse(serving.model.summary())


@router.get("/models", response_model=ModelVersions, responses=errors(503))
async def read_versions(holder: HolderDep, shadow: ShadowDep) -> Response:
    """Every published version, newest first: its status (candidate, active, retired,
    rejected), key figures and the history of its status (when, by whom, why); and the
    version shadowing live traffic, if any."""
    versions = await run_in_threadpool(list_versions, holder.models_dir, shadow.version)
    return JSONBytesResponse(versions)


@router.get(
    "/models/{version}/comparison",
    response_model=ComparisonReport,
    responses=errors(404, 409, 422, 503),
)
async def compare_versions(
    version: VersionName,
    holder: HolderDep,
    records: RecordsDep,
    settings: SettingsDep,
    against: Annotated[
        str | None,
        Query(
            max_length=VERSION_NAME_MAX_LENGTH,
            pattern=VERSION_NAME_PATTERN,
            description="Default: the active version.",
        ),
    ] = None,
    max_moved_share: Annotated[float, Query(ge=0, le=1)] = _DEFAULTS.max_moved_share,
    min_adjusted_rand_index: Annotated[
        float, Query(ge=-1, le=1)
    ] = _DEFAULTS.min_adjusted_rand_index,
    allow_lost_personas: bool = _DEFAULTS.allow_lost_personas,
) -> Response:
    """A version against the active one on the same customers (its training customers and
    every customer the store knows): the transition matrix, the share who would move, the
    adjusted Rand index, segments and training figures side by side, and a verdict against
    the thresholds given."""
    thresholds = Thresholds(
        max_moved_share=max_moved_share,
        min_adjusted_rand_index=min_adjusted_rand_index,
        allow_lost_personas=allow_lost_personas,
    )
    report = await run_in_threadpool(
        comparison,
        holder.models_dir,
        version,
        against=against,
        thresholds=thresholds,
        records=records,
        signing_keys=settings.signing_keys,
    )
    return JSONBytesResponse(report)
