"""The overview's panels (the active model, the segments, drift), built from the answers
of the JSON endpoints.

Every builder takes what a domain function returned for the API (the summary of
``GET /model``, the versions of ``GET /models``, the catalog and live counts of
``GET /segments``, the report of ``GET /drift``) and only words and lays it out: the page
computes no figure of its own (the live share is the live sizes' proportion, and the
chart's positions are the profile in the model's own standard deviations), so the page and
the API cannot disagree. Plain frozen classes, for the templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segmentation.features import FEATURES
from segmentation.manifest import Scaler
from service.dashboard import wording
from service.dashboard.charts import (
    ProfileChart,
    ProfileRow,
    PsiChart,
    profile_chart,
    profile_limit,
    psi_chart,
)


@dataclass(frozen=True)
class Activation:
    """The last time a version became the active one: when, by whom, why."""

    at: str
    by: str
    reason: str


@dataclass(frozen=True)
class ActivePanel:
    version: str
    created_at: str
    n_rows: str
    k: int
    silhouette: str
    signed: bool
    activation: Activation | None
    candidates: tuple[str, ...]
    shadow: str | None
    history_problem: str | None
    """Why the version history could not be read (the rest of the panel still shows)."""


def active_panel(
    summary: Mapping[str, Any], versions: Mapping[str, Any] | None, problem: str | None
) -> ActivePanel:
    """The served model (``GET /model``) and how it came to serve (``GET /models``)."""
    activation = None
    candidates: tuple[str, ...] = ()
    shadow = None
    if versions is not None:
        entries = {entry["version"]: entry for entry in versions["versions"]}
        history = entries.get(summary["model_version"], {}).get("history", [])
        last = next((step for step in reversed(history) if step["status"] == "active"), None)
        if last is not None:
            activation = Activation(
                at=wording.moment(last["at"]), by=last["by"], reason=last["reason"]
            )
        candidates = tuple(e["version"] for e in versions["versions"] if e["status"] == "candidate")
        shadow = versions["shadow"]
    return ActivePanel(
        version=summary["model_version"],
        created_at=wording.moment(summary["created_at"]),
        n_rows=wording.count(summary["n_rows"]),
        k=summary["k"],
        silhouette=f"{summary['metrics']['silhouette']:.3f}",
        signed=bool(summary["signed"]),
        activation=activation,
        candidates=candidates,
        shadow=shadow,
        history_problem=problem,
    )


@dataclass(frozen=True)
class FeatureFigures:
    """One feature of a segment, for the table beside its profile chart."""

    label: str
    median: str
    middle_half: str
    mean: str
    population: str
    difference: str


@dataclass(frozen=True)
class SegmentView:
    segment_id: str
    name: str
    description: str
    size: int
    share: str
    live_size: int | None
    """None while the store cannot be asked."""
    live_share: str | None
    chart: ProfileChart
    figures: tuple[FeatureFigures, ...]
    traits: tuple[str, ...]
    marketing: tuple[str, ...]
    service: tuple[str, ...]


def segment_views(
    catalog: Sequence[Mapping[str, Any]], live: Mapping[str, int] | None, population: Scaler
) -> tuple[SegmentView, ...]:
    """One card per segment of ``GET /segments`` (the model's catalog and the store's live
    counts). The profile chart places each feature of the segment against the training
    population, in the standard deviations the model itself measures distance in."""
    rows = {entry["segment_id"]: _profile_rows(entry["profile"], population) for entry in catalog}
    limit = profile_limit([row for segment_rows in rows.values() for row in segment_rows])
    live_total = sum(live.get(entry["segment_id"], 0) for entry in catalog) if live else 0
    views = []
    for entry in catalog:
        segment_id = entry["segment_id"]
        live_size = None if live is None else live.get(segment_id, 0)
        chart = profile_chart(
            f"profile-{segment_id}",
            f"Profile of {entry['name']} against all customers",
            _profile_description(entry["name"], rows[segment_id]),
            rows[segment_id],
            limit=limit,
        )
        views.append(
            SegmentView(
                segment_id=segment_id,
                name=entry["name"],
                description=entry["description"],
                size=entry["size"],
                share=wording.percent(entry["share"]),
                live_size=live_size,
                live_share=(
                    wording.percent(live_size / live_total)
                    if live_size is not None and live_total
                    else None
                ),
                chart=chart,
                figures=_figures(entry["profile"], population),
                traits=tuple(
                    wording.trait(trait["feature"], trait["z"], trait["direction"])
                    for trait in entry["distinguishing_features"]
                ),
                marketing=tuple(entry["recommended_actions"].get("marketing", ())),
                service=tuple(entry["recommended_actions"].get("service", ())),
            )
        )
    return tuple(views)


def _standardised(value: float, feature: str, population: Scaler) -> float:
    return (value - population.mean[feature]) / population.scale[feature]


def _profile_rows(profile: Mapping[str, Any], population: Scaler) -> list[ProfileRow]:
    return [
        ProfileRow(
            label=wording.feature_label(feature),
            mean=_standardised(profile[feature]["mean"], feature, population),
            p25=_standardised(profile[feature]["p25"], feature, population),
            p75=_standardised(profile[feature]["p75"], feature, population),
        )
        for feature in FEATURES
    ]


def _profile_description(name: str, rows: Sequence[ProfileRow]) -> str:
    said = "; ".join(
        f"{row.label} {wording.standard_deviations(row.mean)} "
        f"({'above' if row.mean >= 0 else 'below'} average)"
        for row in rows
    )
    return f"{name}, each feature's mean in standard deviations from all customers: {said}."


def _figures(profile: Mapping[str, Any], population: Scaler) -> tuple[FeatureFigures, ...]:
    figures = []
    for feature in FEATURES:
        summary = profile[feature]
        value = wording.feature_value
        figures.append(
            FeatureFigures(
                label=wording.feature_label(feature),
                median=value(feature, summary["median"]),
                middle_half=f"{value(feature, summary['p25'])} to {value(feature, summary['p75'])}",
                mean=value(feature, summary["mean"]),
                population=value(feature, population.mean[feature]),
                difference=wording.standard_deviations(
                    _standardised(summary["mean"], feature, population)
                ),
            )
        )
    return tuple(figures)


@dataclass(frozen=True)
class DriftRow:
    key: str
    """The feature's name in ``GET /drift`` (``segment_mix`` for the mix)."""
    label: str
    psi: str
    band: str
    meaning: str


@dataclass(frozen=True)
class ReasonShare:
    code: str
    words: str
    share: str


@dataclass(frozen=True)
class DriftPanel:
    customers: int
    window_size: int
    since: str | None
    rows: tuple[DriftRow, ...]
    chart: PsiChart | None
    """None while the window has too few customers for a figure."""
    atypical_share: str | None
    atypical_by_reason: tuple[ReasonShare, ...]
    retrain_recommended: bool
    reasons: tuple[str, ...]


def drift_panel(report: Mapping[str, Any]) -> DriftPanel:
    """The report of ``GET /drift``, as a panel: PSI and band per feature and for the
    segment mix, the atypical share by reason, and the recommendation with its reasons."""
    figures = [
        (feature, wording.feature_label(feature), report["features"][feature])
        for feature in report["features"]
    ]
    figures.append(("segment_mix", "segment mix", report["segment_mix"]))
    rows = tuple(
        DriftRow(
            key=key,
            label=label,
            psi=wording.psi_value(figure["psi"]),
            band=figure["band"],
            meaning=wording.BAND_MEANINGS.get(figure["band"], figure["band"]),
        )
        for key, label, figure in figures
    )
    measured = [(row, figure["psi"]) for row, (_, _, figure) in zip(rows, figures, strict=True)]
    chart = None
    if all(psi is not None for _, psi in measured):
        chart = psi_chart(
            "drift-chart",
            "Population stability index of each feature and of the segment mix",
            "; ".join(f"{row.label}: PSI {row.psi}, band {row.band}" for row in rows) + ".",
            [(row.label, float(psi), row.band, row.psi) for row, psi in measured],
        )
    by_reason = report.get("atypical_by_reason") or {}
    window = report["window"]
    share = report.get("atypical_share")
    return DriftPanel(
        customers=window["customers"],
        window_size=window["size"],
        since=wording.moment(window["since"]) if window.get("since") else None,
        rows=rows,
        chart=chart,
        atypical_share=None if share is None else wording.percent(share),
        # The reasons no customer had are left out: eleven rows of 0.0% would hide the one
        # that matters.
        atypical_by_reason=tuple(
            ReasonShare(code=code, words=wording.atypical_reason(code), share=wording.percent(s))
            for code, s in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
            if s > 0
        ),
        retrain_recommended=bool(report["retrain_recommended"]),
        reasons=tuple(report["reasons"]),
    )
