"""The active model's manifest summary and training report, and every published version
with its status."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from segmentation.artifact import VERSION_NAME_MAX_LENGTH, VERSION_NAME_PATTERN
from segmentation.comparison import Thresholds
from service.api.deps import HolderDep, RecordsDep, ServingDep, SettingsDep, ShadowDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.models.lifecycle import comparison, list_versions
from service.models.training_report import training_report
from service.schemas import ComparisonReport, ModelSummary, ModelVersions

_DEFAULTS = Thresholds()
VersionName = Annotated[str, Path(max_length=VERSION_NAME_MAX_LENGTH, pattern=VERSION_NAME_PATTERN)]

REPORT_POLICY: Final = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The model card is one self-contained page (inline style, figures as data: images): it
may load nothing and run nothing, whatever its bytes say."""
HTML_ANSWER: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}}
}
"""A route's 200 is HTML (its refusals keep the JSON error shape)."""

router = APIRouter(tags=["model"])


def training_report_response(content: bytes) -> Response:
    """A model card as answered: HTML, sandboxed by its content security policy."""
    headers = {"Content-Security-Policy": REPORT_POLICY, "X-Content-Type-Options": "nosniff"}
    return Response(content, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/model", response_model=ModelSummary, responses=errors(503))
async def read_model(serving: ServingDep) -> Response:
    """Which model answers, when and on what it was trained, and how well it fits."""
    return JSONBytesResponse(serving.model.summary())


@router.get(
    "/model/report",
    responses={**HTML_ANSWER, **errors(404, 409, 503)},
)
async def read_model_report(
    serving: ServingDep, holder: HolderDep, settings: SettingsDep
) -> Response:
    """The served version's training report (its model card, HTML), verified as a reload
    verifies the version."""
    content = await run_in_threadpool(
        training_report,
        holder.models_dir,
        serving.model.version,
        signing_keys=settings.signing_keys,
    )
    return training_report_response(content)


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


@router.get(
    "/models/{version}/report",
    responses={**HTML_ANSWER, **errors(404, 409, 422)},
)
async def read_version_report(
    version: VersionName, holder: HolderDep, settings: SettingsDep
) -> Response:
    """A version's training report (its model card, HTML), verified as a reload verifies
    the version: 404 for an unknown version, 409 for one that does not verify."""
    content = await run_in_threadpool(
        training_report, holder.models_dir, version, signing_keys=settings.signing_keys
    )
    return training_report_response(content)
