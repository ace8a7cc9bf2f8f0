"""The model card: one self-contained HTML page explaining a trained segmentation to analysts.

The page and its words are here; the figures are in :mod:`training.report_figures`, the
HTML building blocks in :mod:`training.report_html`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.manifest import (
    DataQuality,
    Lineage,
    Manifest,
    Segment,
    SelectionMetrics,
)
from training.comparison_page import COMPARISON_HTML
from training.report_figures import (
    colour,
    profile_figure,
    projection_figure,
    sizes_figure,
    sweep_figure,
)
from training.report_html import (
    NOT_AVAILABLE,
    bullets,
    esc,
    facts,
    feature_value,
    fmt,
    label,
    page,
    percent,
    section,
    table,
)

_LISTED_KEYS: Final = 50
_AGREEMENT_BANDS: Final = ((0.9, "strong"), (0.75, "good"), (0.5, "moderate"), (-math.inf, "weak"))

_METRICS: Final[tuple[tuple[str, str, str], ...]] = (
    ("inertia", "Inertia (lower = tighter)", ",.1f"),
    ("silhouette", "Silhouette (higher = better)", ".3f"),
    ("calinski_harabasz", "Calinski-Harabasz (higher = better)", ",.1f"),
    ("davies_bouldin", "Davies-Bouldin (lower = better)", ".3f"),
)


def render_report(
    manifest: Manifest,
    *,
    segment_positions: npt.NDArray[np.intp],
    standardised: npt.NDArray[np.float64],
) -> str:
    """Render the model card of a trained segmentation as one self-contained HTML page.

    Every figure is an embedded PNG and the page references no external resource, so it
    can be e-mailed or opened offline. All text taken from the manifest is HTML-escaped.

    Parameters
    ----------
    manifest
        The model's manifest (its ``files`` and ``signature`` are not shown, so the page
        can be rendered before they exist).
    segment_positions
        ``(n,)`` index of each training customer's segment in ``manifest.segments``.
    standardised
        ``(n, 5)`` the same customers after the fitted ``StandardScaler``.

    Returns
    -------
    str
        The complete HTML document.

    Raises
    ------
    ValueError
        If the arrays disagree in shape or a position names no segment.
    """
    _check_inputs(segment_positions, standardised, len(manifest.segments))
    body = "".join(
        (
            _section_header(manifest),
            _section_choosing_k(manifest.metrics, manifest.k),
            _section_segments(manifest),
            section(
                "map",
                "Customers in two dimensions",
                projection_figure(manifest.segments, segment_positions, standardised),
            ),
            _section_cross_checks(manifest.metrics),
            _section_data_quality(manifest.data_quality),
            _section_playbook(manifest),
            _section_lineage(manifest.lineage),
        )
    )
    return page(f"Model card &ndash; customer segments {esc(manifest.version)}", body)


def _check_inputs(
    positions: npt.NDArray[np.intp], standardised: npt.NDArray[np.float64], n_segments: int
) -> None:
    width = len(FEATURES)
    if standardised.ndim != 2 or standardised.shape[1] != width:
        raise ValueError(f"standardised must have shape (n, {width}), got {standardised.shape}")
    if positions.shape != (standardised.shape[0],):
        raise ValueError(
            f"segment_positions must have shape ({standardised.shape[0]},), got {positions.shape}"
        )
    if positions.size and (positions.min() < 0 or positions.max() >= n_segments):
        raise ValueError(
            f"segment_positions must lie in [0, {n_segments}) for {n_segments} segments"
        )


# --------------------------------------------------------------------------- header


def _selection_text(metrics: SelectionMetrics) -> str:
    if metrics.selection == "fixed":
        return "fixed by the operator (--k), not chosen from the data"
    low, high = metrics.k_range
    return (
        "chosen automatically: the highest silhouette score among "
        f"k = {fmt(low, '.0f')}&ndash;{fmt(high, '.0f')}"
    )


def _section_header(manifest: Manifest) -> str:
    libraries = ", ".join(f"{esc(name)} {esc(v)}" for name, v in manifest.libraries.items())
    details = facts(
        (
            ("Model version", f"<code>{esc(manifest.version)}</code>"),
            ("Trained at", esc(manifest.created_at)),
            ("Data source", fmt(manifest.data_source)),
            ("Data SHA-256", f"<code>{fmt(manifest.data_sha256)}</code>"),
            ("Customers", fmt(manifest.n_rows, ",.0f")),
            ("Features", ", ".join(esc(label(f)) for f in manifest.features)),
            ("Number of segments k", fmt(manifest.k, ".0f")),
            ("How k was chosen", _selection_text(manifest.metrics)),
            ("Silhouette score", fmt(manifest.metrics.silhouette, ".3f")),
            ("Random seed", fmt(manifest.seed, ".0f")),
            ("Libraries", libraries or NOT_AVAILABLE),
        )
    )
    intro = (
        "<p>This page describes a customer segmentation: the behaviour groups a K-means "
        "model found among the bank's credit-card customers, what sets each group apart, "
        "and the checks that say how much to trust them.</p>\n"
    )
    return (
        f"<header>\n<h1>Customer segmentation &ndash; model card</h1>\n{intro}{details}</header>\n"
    )


# --------------------------------------------------------------------------- choosing k


def _sweep_table(metrics: SelectionMetrics, chosen_k: int) -> str:
    head = ["k", *(title for _, title, _ in _METRICS)]
    rows = [
        [fmt(point.k, ".0f"), *(fmt(getattr(point, key), spec) for key, _, spec in _METRICS)]
        for point in metrics.sweep
    ]
    chosen = next((i for i, point in enumerate(metrics.sweep) if point.k == chosen_k), -1)
    return table(head, rows, chosen_row=chosen)


def _section_choosing_k(metrics: SelectionMetrics, k: int) -> str:
    knee = metrics.knee_k
    explain = (
        "<p>The model was fitted for each candidate number of segments k. <b>Inertia</b> "
        "always falls as k grows; the <b>elbow</b> (knee) is where adding segments stops "
        "paying off. The <b>silhouette</b> score (from &minus;1 to 1) says how clearly customers "
        "sit in their own segment rather than a neighbouring one. "
        f"Knee of the inertia curve: k = {fmt(knee, '.0f')}. The chosen k is highlighted "
        "in the table.</p>\n"
    )
    sweep = metrics.sweep
    plots = (
        '<div class="row">'
        + sweep_figure(sweep, "inertia", "inertia (within-segment spread)", knee, "knee")
        + sweep_figure(sweep, "silhouette", "silhouette score", k, "chosen")
        + "</div>\n"
    )
    content = explain + plots + _sweep_table(metrics, k)
    return section("choosing-k", "Choosing the number of segments", content)


# --------------------------------------------------------------------------- segments


def _distinguishing_text(segment: Segment) -> str:
    if not segment.distinguishing_features:
        return "<p>No feature stands out: this segment is close to the average customer.</p>"
    phrases = [
        f"<li>{esc(trait.direction)} {esc(label(trait.feature))} (z = {fmt(trait.z, '+.2f')})</li>"
        for trait in segment.distinguishing_features
    ]
    return "<ul>" + "".join(phrases) + "</ul>\n"


def _profile_table(segment: Segment, features: tuple[str, ...]) -> str:
    head = ["Feature", "Mean", "25th pct", "Median", "75th pct"]
    rows = []
    for feature in features:
        summary = segment.profile[feature]
        rows.append(
            [
                esc(label(feature)),
                feature_value(feature, summary.mean, ",.1f"),
                *(
                    feature_value(feature, value, ",.4g")
                    for value in (summary.p25, summary.median, summary.p75)
                ),
            ]
        )
    return table(head, rows)


def _persona_text(persona: str | None) -> str:
    return "none" if persona is None else esc(persona)


def _segment_meta(segment: Segment) -> str:
    parts = [
        f"Segment id <code>{esc(segment.segment_id)}</code>",
        f"{fmt(segment.size, ',.0f')} customers ({percent(segment.share)} of all)",
        f"persona: {_persona_text(segment.persona)}",
        f"atypical beyond distance {fmt(segment.atypical_distance, '.2f')}",
    ]
    return '<p class="meta">' + " · ".join(parts) + "</p>\n"


def _segment_card(position: int, segment: Segment, features: tuple[str, ...]) -> str:
    segment_colour = colour(position)
    actions = segment.recommended_actions
    return (
        f'<article class="segment" style="border-left-color:{segment_colour}">\n'
        f'<h3><span class="swatch" style="background:{segment_colour}"></span>'
        f"{esc(segment.name)}</h3>\n"
        + _segment_meta(segment)
        + f"<p>{esc(segment.description)}</p>\n<h4>What sets it apart</h4>\n"
        + _distinguishing_text(segment)
        + '<div class="row">'
        + profile_figure(segment, features, segment_colour)
        + f"<div>{_profile_table(segment, features)}</div></div>\n"
        + '<div class="row"><div><h4>Recommended marketing actions</h4>'
        + bullets(actions.get("marketing", []))
        + "</div><div><h4>Recommended service actions</h4>"
        + bullets(actions.get("service", []))
        + "</div></div>\n</article>\n"
    )


def _section_segments(manifest: Manifest) -> str:
    cards = "".join(
        _segment_card(position, segment, manifest.features)
        for position, segment in enumerate(manifest.segments)
    )
    intro = (
        "<p>Each card shows one segment. The <b>z-score</b> says how many standard "
        "deviations the segment's typical customer is above (+) or below (&minus;) the "
        "average customer; the table gives the same features in their own units.</p>\n"
    )
    return section("segments", "Segments", intro + sizes_figure(manifest.segments) + cards)


# ------------------------------------------------------------ cross-checks, data quality


def _agreement(ari: float | None) -> str:
    """Plain words for an ARI; the bands are a reading aid, not a statistical test."""
    if ari is None or not math.isfinite(ari):
        return ""
    words = next(word for floor, word in _AGREEMENT_BANDS if ari >= floor)
    return f" ({words} agreement)"


def _section_cross_checks(metrics: SelectionMetrics) -> str:
    checks, stability = metrics.cross_checks, metrics.stability
    ward, gmm = checks.ward_ari, checks.gaussian_mixture_ari
    mean_ari, min_ari = stability.mean_ari, stability.min_ari
    explain = (
        "<p>The <b>adjusted Rand index (ARI)</b> measures how far two groupings of the same "
        "customers agree: 1 means identical segments, 0 means no better than chance.</p>\n"
    )
    details = facts(
        (
            ("Ward hierarchical clustering vs this model", fmt(ward, ".3f") + _agreement(ward)),
            ("Gaussian mixture vs this model", fmt(gmm, ".3f") + _agreement(gmm)),
            ("Customers compared", fmt(checks.sample_size, ",.0f")),
            ("Bootstrap stability, mean ARI", fmt(mean_ari, ".3f") + _agreement(mean_ari)),
            ("Bootstrap stability, worst ARI", fmt(min_ari, ".3f") + _agreement(min_ari)),
            ("Bootstrap resamples", fmt(stability.n_resamples, ",.0f")),
        )
    )
    return section("cross-checks", "Cross-checks", explain + details)


def _key_list(quality: DataQuality) -> str:
    keys = quality.duplicate_keys
    if not keys:
        return "none"
    shown = " ".join(f"<code>{esc(key)}</code>" for key in keys[:_LISTED_KEYS])
    rest = quality.n_duplicate_keys - min(len(keys), _LISTED_KEYS)
    return shown + (f" … and {rest:,} more" if rest > 0 else "")


def _section_data_quality(quality: DataQuality) -> str:
    details = facts(
        (
            ("Rows read", fmt(quality.n_rows, ",.0f")),
            ("Customer keys appearing more than once", fmt(quality.n_duplicate_keys, ",.0f")),
            ("Rows carrying such a key", fmt(quality.n_rows_with_duplicate_key, ",.0f")),
            ("Duplicated keys", _key_list(quality)),
            (
                "Rows repeating another row's five features",
                fmt(quality.n_identical_feature_rows, ",.0f"),
            ),
        )
    )
    note = (
        "<p>A key that appears more than once may be one customer recorded twice; rows "
        "repeating another row's five features are usually different customers who "
        "behave the same way.</p>\n"
    )
    return section("data-quality", "Data quality", details + note)


# --------------------------------------------------------------------------- playbook, lineage


def _section_playbook(manifest: Manifest) -> str:
    matching = manifest.persona_matching
    names = {segment.segment_id: segment.name for segment in manifest.segments}
    rows = [
        [
            esc(names.get(fit.segment_id, "")),
            f"<code>{esc(fit.segment_id)}</code>",
            _persona_text(fit.persona),
            fmt(fit.fit, ".2f"),
        ]
        for fit in matching.fits
    ]
    content = (
        f"<p>Playbook: {fmt(matching.playbook)}</p>\n"
        "<p>Each segment is matched to the playbook persona it resembles most; the fit "
        "is the matcher's score for that pairing. A segment with no persona had no "
        "persona that fitted well enough.</p>\n" + table(["Segment", "Id", "Persona", "Fit"], rows)
    )
    return section("playbook", "Playbook mapping", content)


def _moved_text(lineage: Lineage) -> str:
    moved, compared = lineage.moved_customers, lineage.compared_customers
    text = fmt(moved, ",.0f")
    if compared > 0:
        text += f" of {fmt(compared, ',.0f')} customers in both versions ({moved / compared:.1%})"
    return text


def _section_lineage(lineage: Lineage) -> str:
    previous = lineage.previous_version
    previous_text = (
        "none &ndash; this is the first version"
        if previous is None
        else f"<code>{esc(previous)}</code>"
    )
    rows = [
        [f"<code>{esc(new)}</code>", f"<code>{esc(old)}</code>"]
        for new, old in lineage.matched.items()
    ]
    matched = table(["Segment now", "Segment in previous version"], rows) if rows else ""
    details = facts(
        (
            ("Previous version", previous_text),
            ("Customers who moved segment", _moved_text(lineage)),
        )
    )
    compared = (
        f'<p><a href="{COMPARISON_HTML}">Compared with {esc(previous)}: who would move where, '
        "and whether to switch</a></p>\n"
        if previous is not None
        else ""
    )
    return section("lineage", "Lineage", details + matched + compared)
