"""The dashboard's pages: ask the domain what the JSON endpoints answer, then render.

Each page calls the very functions the API's routes call (the model's catalog and the
store's live counts for ``GET /segments``, ``report_drift`` for ``GET /drift``,
``list_versions`` for ``GET /models``, ``comparison`` for
``GET /models/{version}/comparison``, the shadow's report for ``GET /admin/shadow``), and
the live figures a page refreshes are the same panels rendered again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from segmentation.artifact import ArtifactError, check_version_name, read_manifest
from segmentation.comparison import Thresholds
from service.customer_records import CustomerRecords
from service.dashboard.rendering import render
from service.dashboard.version_views import (
    ComparisonView,
    ShadowView,
    VersionRow,
    comparison_view,
    shadow_view,
    version_rows,
)
from service.dashboard.views import (
    ActivePanel,
    DriftPanel,
    SegmentView,
    active_panel,
    drift_panel,
    segment_views,
)
from service.errors import LifecycleUnavailable, ServiceError
from service.models.active_model import ActiveModel
from service.models.drift import report_drift
from service.models.lifecycle import comparison, list_versions
from service.models.shadow import Shadow
from service.scoring.drift_window import DriftWindow

logger = logging.getLogger(__name__)

LIVE_SECONDS: Final = 15
"""How often an open page asks for its live figures (the workers share theirs every second)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking (the signed-in client), whether the dashboard needs a session, and
    the dashboard's address (under whatever path a proxy serves the service)."""

    client: str | None
    sessions: bool
    base: str


@dataclass(frozen=True)
class Overview:
    model_version: str
    active: ActivePanel
    segments: tuple[SegmentView, ...]
    drift: DriftPanel
    as_of: str


def overview(
    model: ActiveModel,
    records: CustomerRecords,
    window: DriftWindow,
    *,
    models_dir: Path,
    shadow_version: str | None,
) -> Overview:
    """Everything ``GET /dashboard`` shows, from the answers of the JSON endpoints."""
    try:
        versions: dict[str, Any] | None = list_versions(models_dir, shadow_version)
        problem = None
    except LifecycleUnavailable as error:  # the model and its segments still show
        versions, problem = None, error.message
    return Overview(
        model_version=model.version,
        active=active_panel(model.summary(), versions, problem),
        segments=segment_views(
            model.catalog, records.live_counts(model.version), model.manifest.scaler
        ),
        drift=drift_panel(report_drift(model, window)),
        as_of=_now(),
    )


def overview_page(
    model: ActiveModel,
    records: CustomerRecords,
    window: DriftWindow,
    *,
    models_dir: Path,
    shadow_version: str | None,
    viewer: Viewer,
) -> str:
    """``GET /dashboard``: the page."""
    view = overview(model, records, window, models_dir=models_dir, shadow_version=shadow_version)
    return render("overview.html", view=view, viewer=viewer, live_seconds=LIVE_SECONDS)


def overview_live(
    model: ActiveModel,
    records: CustomerRecords,
    window: DriftWindow,
    *,
    models_dir: Path,
    shadow_version: str | None,
    viewer: Viewer,
) -> dict[str, Any]:
    """The overview's live figures: its panels rendered again, for the page's script."""
    view = overview(model, records, window, models_dir=models_dir, shadow_version=shadow_version)
    fragments = {
        "active": render("_active_panel.html", active=view.active, viewer=viewer),
        "drift": render("_drift_panel.html", drift=view.drift, viewer=viewer),
    }
    for segment in view.segments:
        fragments[f"live-{segment.segment_id}"] = render("_segment_live.html", segment=segment)
    return {"model_version": view.model_version, "as_of": view.as_of, "fragments": fragments}


@dataclass(frozen=True)
class CandidateSection:
    version: str
    comparison: ComparisonView | None
    problem: str | None
    """Why the comparison could not be made (a version that does not verify, say)."""
    shadow: ShadowView | None
    """The live tally, while (or since) this candidate shadows the active version."""


@dataclass(frozen=True)
class ModelsOverview:
    model_version: str
    versions: tuple[VersionRow, ...]
    candidates: tuple[CandidateSection, ...]
    as_of: str


def models_overview(
    model: ActiveModel,
    records: CustomerRecords,
    shadow: Shadow,
    *,
    models_dir: Path,
    signing_keys: tuple[str, ...],
) -> ModelsOverview:
    """Everything ``GET /dashboard/models`` shows: the versions and, for each candidate, its
    comparison with the active version (the API's default thresholds) and its shadow."""
    versions = list_versions(models_dir, shadow.version)
    tally = shadow.report()
    sections = []
    for entry in versions["versions"]:
        if entry["status"] != "candidate":
            continue
        version = entry["version"]
        try:
            report = comparison(
                models_dir,
                version,
                against=None,
                thresholds=Thresholds(),
                records=records,
                signing_keys=signing_keys,
            )
        except ServiceError as error:
            logger.warning("dashboard: %s cannot be compared: %s", version, error.message)
            sections.append(CandidateSection(version, None, error.message, None))
            continue
        names = {
            side["segment_id"]: side["name_against"] or side["name_candidate"]
            for side in report["segments"]
        }
        shadowed = shadow_view(tally, names) if tally.get("version") == version else None
        sections.append(CandidateSection(version, comparison_view(report), None, shadowed))
    return ModelsOverview(
        model_version=model.version,
        versions=version_rows(versions),
        candidates=tuple(sections),
        as_of=_now(),
    )


def models_page(
    model: ActiveModel,
    records: CustomerRecords,
    shadow: Shadow,
    *,
    models_dir: Path,
    signing_keys: tuple[str, ...],
    viewer: Viewer,
) -> str:
    """``GET /dashboard/models``: the page."""
    view = models_overview(model, records, shadow, models_dir=models_dir, signing_keys=signing_keys)
    return render("models.html", view=view, viewer=viewer, live_seconds=LIVE_SECONDS)


def shadow_live(
    model: ActiveModel, shadow: Shadow, *, models_dir: Path, viewer: Viewer
) -> dict[str, Any]:
    """The models page's live figure: the shadow's tally, rendered again."""
    tally = shadow.report()
    fragments = {}
    view = shadow_view(tally, _segment_names(model, models_dir, tally.get("version")))
    if view is not None:
        fragments[f"shadow-{view.version}"] = render("_shadow_panel.html", shadow=view)
    return {"model_version": model.version, "as_of": _now(), "fragments": fragments}


def _segment_names(model: ActiveModel, models_dir: Path, other: str | None) -> dict[str, str]:
    """Segment names by id, of the active version and of ``other`` (a shadow, say)."""
    names = {card.segment_id: card.name for card in model.cards}
    if other is None:
        return names
    try:
        manifest = read_manifest(models_dir / check_version_name(other))
    except ArtifactError:  # the tally still shows, by segment id
        return names
    return {**{segment.segment_id: segment.name for segment in manifest.segments}, **names}


def sign_in_page(*, base: str, problem: str | None, plain_http: bool) -> str:
    viewer = Viewer(client=None, sessions=True, base=base)
    return render("sign_in.html", viewer=viewer, problem=problem, plain_http=plain_http)


def notice_page(title: str, message: str, viewer: Viewer) -> str:
    """A page that only says something (no model served yet, say)."""
    return render("notice.html", title=title, message=message, viewer=viewer)


def _now() -> str:
    return f"{datetime.now(UTC):%H:%M:%S} UTC"
