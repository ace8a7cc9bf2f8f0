"""The model card: one self-contained HTML page explaining a trained segmentation to analysts."""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeGuard

import numpy as np
import numpy.typing as npt
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from segmentation.features import FEATURE_LABELS, FEATURES

SCATTER_SAMPLE_SIZE: Final = 5_000
"""Customers drawn (seeded) for the 2-D map, so the page stays small and fast for any n."""

_SCATTER_SEED: Final = 0
_DPI: Final = 100
_CURRENCY: Final = ""  # the export does not say which currency; amounts stay plain
_MONEY_FEATURES: Final = frozenset({"avg_credit_limit"})
_LISTED_KEYS: Final = 50
_QUARTILES: Final = ("p25", "median", "p75")
_AGREEMENT_BANDS: Final = ((0.9, "strong"), (0.75, "good"), (0.5, "moderate"), (-math.inf, "weak"))
_PLOT_LABEL_CHARS: Final = 40
_NOT_AVAILABLE: Final = '<span class="na">not available</span>'
_PALETTE: Final[tuple[str, ...]] = tuple(to_hex(colormaps["tab10"](i)) for i in range(10))

_METRICS: Final[tuple[tuple[str, str, str], ...]] = (
    ("inertia", "Inertia (lower = tighter)", ",.1f"),
    ("silhouette", "Silhouette (higher = better)", ".3f"),
    ("calinski_harabasz", "Calinski-Harabasz (higher = better)", ",.1f"),
    ("davies_bouldin", "Davies-Bouldin (lower = better)", ".3f"),
)

_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d232b;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
section,header{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1rem 1.5rem;
margin-bottom:1.25rem}
h1{margin:.2rem 0 .8rem}h2{margin-top:.2rem;border-bottom:1px solid #dde1e6;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #dde1e6;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#eef1f4}
tr.chosen td{background:#fff6d9;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}
img{max-width:100%;height:auto}figure{margin:.5rem 0}figcaption{font-size:.85rem;color:#555}
.row{display:flex;flex-wrap:wrap;gap:1rem}.row>*{flex:1 1 420px}
article.segment{border:1px solid #dde1e6;border-left:8px solid;border-radius:6px;
padding:.5rem 1rem;margin:1rem 0}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em}
.meta{color:#555}.na{color:#8a8f98;font-style:italic}code{overflow-wrap:anywhere}
"""


def render_report(
    manifest: Mapping[str, Any],
    *,
    features: npt.NDArray[np.float64],
    segment_positions: npt.NDArray[np.intp],
    standardised: npt.NDArray[np.float64],
) -> str:
    """Render the model card of a trained segmentation as one self-contained HTML page.

    Every figure is an embedded PNG and the page references no external resource, so it
    can be e-mailed or opened offline. All text taken from the manifest is HTML-escaped.

    Parameters
    ----------
    manifest
        The model's manifest as written to ``manifest.json``. Only ``version``,
        ``created_at``, ``n_rows``, ``k``, ``features``, ``metrics.sweep`` and ``segments``
        (with ``segment_id``, ``name``, ``size``, ``share``, ``profile``, ``z_centroid``
        and ``recommended_actions``) are required; anything else missing is shown as
        "not available".
    features
        ``(n, 5)`` training customers in original units, columns in
        :data:`segmentation.features.FEATURES` order.
    segment_positions
        ``(n,)`` index of each customer's segment in ``manifest["segments"]``.
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
    segments: Sequence[Mapping[str, Any]] = manifest["segments"]
    _check_inputs(features, segment_positions, standardised, len(segments))
    body = "".join(
        (
            _section_header(manifest),
            _section_choosing_k(manifest),
            _section_segments(manifest, features, segment_positions),
            _section_projection(segments, segment_positions, standardised),
            _section_cross_checks(manifest),
            _section_data_quality(manifest),
            _section_playbook(manifest),
            _section_lineage(manifest),
        )
    )
    title = f"Model card &ndash; customer segments {_esc(manifest['version'])}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- checks


def _check_inputs(
    features: npt.NDArray[np.float64],
    positions: npt.NDArray[np.intp],
    standardised: npt.NDArray[np.float64],
    n_segments: int,
) -> None:
    width = len(FEATURES)
    if features.ndim != 2 or features.shape[1] != width:
        raise ValueError(f"features must have shape (n, {width}), got {features.shape}")
    if standardised.shape != features.shape:
        raise ValueError(
            f"standardised has shape {standardised.shape}, features has {features.shape}"
        )
    if positions.shape != (features.shape[0],):
        raise ValueError(
            f"segment_positions must have shape ({features.shape[0]},), got {positions.shape}"
        )
    if positions.size and (positions.min() < 0 or positions.max() >= n_segments):
        raise ValueError(
            f"segment_positions must lie in [0, {n_segments}) for {n_segments} segments"
        )


# --------------------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _get(mapping: object, *path: str) -> Any:
    """``mapping[path[0]][path[1]]...``, or ``None`` when any step is missing."""
    value: Any = mapping
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _is_number(value: object) -> TypeGuard[float]:
    """A finite real number (``bool`` excluded); ints and numpy scalars count."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _fmt(value: object, spec: str = ",.2f") -> str:
    """A number formatted with ``spec``, other values escaped, ``None`` as "not available"."""
    if value is None:
        return _NOT_AVAILABLE
    if _is_number(value):
        return _esc(format(float(value), spec))
    if isinstance(value, float):
        return _NOT_AVAILABLE
    return _esc(value)


def _percent(value: object) -> str:
    return _fmt(float(value) * 100, ".1f") + "%" if _is_number(value) else _fmt(value)


def _feature_value(feature: str, value: object, spec: str) -> str:
    if feature in _MONEY_FEATURES and _is_number(value):
        return _esc(f"{_CURRENCY}{float(value):,.0f}")
    return _fmt(value, spec)


def _label(feature: object) -> str:
    return FEATURE_LABELS.get(str(feature), str(feature))


def _plot_text(text: object) -> str:
    """Data text made safe for matplotlib: shortened, and ``$`` kept from starting mathtext."""
    plain = str(text)
    if len(plain) > _PLOT_LABEL_CHARS:
        plain = plain[: _PLOT_LABEL_CHARS - 1] + "…"
    return plain.replace("$", r"\$")


def _colour(position: int) -> str:
    return _PALETTE[position % len(_PALETTE)]


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; labels are ours, values must already be escaped."""
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<dl class="facts">{items}</dl>\n'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; cells must already be escaped."""
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>\n"


def _bullets(items: object) -> str:
    if not isinstance(items, list | tuple):
        return f"<p>{_NOT_AVAILABLE}</p>"
    if not items:
        return "<p>none</p>"
    return "<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in items) + "</ul>\n"


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}">\n<h2>{title}</h2>\n{content}</section>\n'


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=_DPI)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _embed(figure: Figure, alt: str, caption: str = "") -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI.

    ``Figure`` objects are not registered with pyplot, so once saved nothing keeps them
    alive; clearing the figure releases its artists straight away.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    figure.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    img = f'<img alt="{_esc(alt)}" src="data:image/png;base64,{encoded}">'
    figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{img}{figcaption}</figure>\n"


def _sweep_points(sweep: object, metric: str) -> tuple[list[float], list[float]]:
    ks: list[float] = []
    values: list[float] = []
    for row in sweep if isinstance(sweep, list) else []:
        k, value = _get(row, "k"), _get(row, metric)
        if _is_number(k) and _is_number(value):
            ks.append(float(k))
            values.append(float(value))
    return ks, values


def _figure_sweep(
    sweep: object, metric: str, ylabel: str, marked_k: object, mark_label: str
) -> str:
    ks, values = _sweep_points(sweep, metric)
    if not ks:
        return f"<p>{ylabel}: {_NOT_AVAILABLE}</p>"
    figure, axes = _new_figure(5.0, 3.2)
    axes.plot(ks, values, marker="o", color="#44546a")
    if _is_number(marked_k) and float(marked_k) in ks:
        mark = float(marked_k)
        y = values[ks.index(mark)]
        axes.axvline(mark, color="#d62728", linestyle="--", linewidth=1)
        axes.plot([mark], [y], marker="o", markersize=11, color="#d62728", fillstyle="none")
        axes.annotate(
            f"{mark_label} k = {mark:g}", (mark, y), xytext=(8, 8), textcoords="offset points"
        )
    axes.margins(y=0.15)
    axes.set_xticks(ks)
    axes.set_xlabel("number of segments k")
    axes.set_ylabel(ylabel)
    return _embed(figure, f"{ylabel} for each number of segments")


def _figure_sizes(segments: Sequence[Mapping[str, Any]]) -> str:
    sizes = [float(s["size"]) if _is_number(s.get("size")) else 0.0 for s in segments]
    if not segments:
        return f"<p>Segment sizes: {_NOT_AVAILABLE}</p>"
    figure, axes = _new_figure(7.5, 0.55 * len(segments) + 1.0)
    rows = list(range(len(segments)))[::-1]
    axes.barh(rows, sizes, color=[_colour(i) for i in range(len(segments))])
    axes.set_yticks(rows, [_plot_text(s.get("name", "")) for s in segments])
    for row, segment, size in zip(rows, segments, sizes, strict=True):
        share = segment.get("share")
        note = f" {size:,.0f} ({float(share):.1%})" if _is_number(share) else f" {size:,.0f}"
        axes.text(size, row, note, va="center", fontsize=9)
    axes.set_xlabel("customers")
    axes.set_xlim(0, max(sizes, default=0) * 1.25 or 1)
    axes.grid(axis="y", visible=False)
    return _embed(figure, "Number of customers in each segment")


def _figure_profile(segment: Mapping[str, Any], feature_names: Sequence[str], colour: str) -> str:
    z = _get(segment, "z_centroid")
    values = [float(z[f]) if _is_number(_get(z, f)) else 0.0 for f in feature_names]
    figure, axes = _new_figure(5.2, 2.6)
    rows = list(range(len(feature_names)))[::-1]
    axes.barh(rows, values, color=colour)
    axes.set_yticks(rows, [_plot_text(_label(f)) for f in feature_names])
    axes.axvline(0, color="#333", linewidth=0.8)
    limit = max(1.0, *(abs(v) for v in values)) * 1.15
    axes.set_xlim(-limit, limit)
    axes.set_xlabel("← below average    z-score (standard deviations)    above average →")
    axes.grid(axis="y", visible=False)
    return _embed(
        figure,
        f"Profile of {segment.get('name', '')}: how far each feature is from the average",
        "Bars show how many standard deviations the segment's centre lies from the "
        "average customer (0 = average).",
    )


# --------------------------------------------------------------------------- header


def _selection_text(manifest: Mapping[str, Any]) -> str:
    selection = _get(manifest, "metrics", "selection")
    k_range = _get(manifest, "metrics", "k_range")
    if selection == "silhouette":
        span = (
            f" among k = {_fmt(k_range[0], '.0f')}&ndash;{_fmt(k_range[1], '.0f')}"
            if isinstance(k_range, list | tuple) and len(k_range) == 2
            else ""
        )
        return f"chosen automatically: the highest silhouette score{span}"
    if selection == "fixed":
        return "fixed by the operator (--k), not chosen from the data"
    return _fmt(selection)


def _chosen_silhouette(manifest: Mapping[str, Any]) -> object:
    chosen = _get(manifest, "metrics", "silhouette")
    if chosen is not None:
        return chosen
    for row in _get(manifest, "metrics", "sweep") or []:
        if _get(row, "k") == manifest["k"]:
            return _get(row, "silhouette")
    return None


def _libraries_text(libraries: object) -> str:
    if not isinstance(libraries, Mapping) or not libraries:
        return _NOT_AVAILABLE
    return ", ".join(f"{_esc(name)} {_esc(version)}" for name, version in libraries.items())


def _section_header(manifest: Mapping[str, Any]) -> str:
    features = manifest["features"]
    facts = _facts(
        (
            ("Model version", f"<code>{_esc(manifest['version'])}</code>"),
            ("Trained at", _esc(manifest["created_at"])),
            ("Data source", _fmt(manifest.get("data_source"))),
            ("Data SHA-256", f"<code>{_fmt(manifest.get('data_sha256'))}</code>"),
            ("Customers", _fmt(manifest["n_rows"], ",.0f")),
            ("Features", ", ".join(_esc(_label(f)) for f in features)),
            ("Number of segments k", _fmt(manifest["k"], ".0f")),
            ("How k was chosen", _selection_text(manifest)),
            ("Silhouette score", _fmt(_chosen_silhouette(manifest), ".3f")),
            ("Random seed", _fmt(manifest.get("seed"), ".0f")),
            ("Libraries", _libraries_text(manifest.get("libraries"))),
        )
    )
    intro = (
        "<p>This page describes a customer segmentation: the behaviour groups a K-means "
        "model found among the bank's credit-card customers, what sets each group apart, "
        "and the checks that say how much to trust them.</p>\n"
    )
    return f"<header>\n<h1>Customer segmentation &ndash; model card</h1>\n{intro}{facts}</header>\n"


# --------------------------------------------------------------------------- choosing k


def _sweep_table(sweep: object, chosen_k: object) -> str:
    rows = sweep if isinstance(sweep, list) else []
    head = ["k", *(title for _, title, _ in _METRICS)]
    body = "".join(
        ('<tr class="chosen">' if _get(row, "k") == chosen_k else "<tr>")
        + f"<td>{_fmt(_get(row, 'k'), '.0f')}</td>"
        + "".join(f"<td>{_fmt(_get(row, key), spec)}</td>" for key, _, spec in _METRICS)
        + "</tr>"
        for row in rows
    )
    header = "".join(f"<th>{cell}</th>" for cell in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>\n"


def _section_choosing_k(manifest: Mapping[str, Any]) -> str:
    sweep = manifest["metrics"]["sweep"]
    knee = _get(manifest, "metrics", "knee_k")
    explain = (
        "<p>The model was fitted for each candidate number of segments k. <b>Inertia</b> "
        "always falls as k grows; the <b>elbow</b> (knee) is where adding segments stops "
        "paying off. The <b>silhouette</b> score (from &minus;1 to 1) says how clearly customers "
        "sit in their own segment rather than a neighbouring one. "
        f"Knee of the inertia curve: k = {_fmt(knee, '.0f')}. The chosen k is highlighted "
        "in the table.</p>\n"
    )
    plots = (
        '<div class="row">'
        + _figure_sweep(sweep, "inertia", "inertia (within-segment spread)", knee, "knee")
        + _figure_sweep(sweep, "silhouette", "silhouette score", manifest["k"], "chosen")
        + "</div>\n"
    )
    table = _sweep_table(sweep, manifest["k"])
    return _section("choosing-k", "Choosing the number of segments", explain + plots + table)


# --------------------------------------------------------------------------- segments


def _distinguishing_text(segment: Mapping[str, Any]) -> str:
    items = segment.get("distinguishing_features")
    if not isinstance(items, list):
        return f"<p>{_NOT_AVAILABLE}</p>"
    if not items:
        return "<p>No feature stands out: this segment is close to the average customer.</p>"
    phrases = []
    for item in items:
        direction = _esc(_get(item, "direction") or "")
        z = _get(item, "z")
        z_text = f" (z = {_fmt(z, '+.2f')})" if z is not None else ""
        phrases.append(f"<li>{direction} {_esc(_label(_get(item, 'feature')))}{z_text}</li>")
    return "<ul>" + "".join(phrases) + "</ul>\n"


def _data_profile(
    features: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]
) -> dict[str, dict[str, float]]:
    """Mean and quartiles per feature computed from the customers, when the manifest has none."""
    rows = features[mask]
    if not len(rows):
        return {}
    quartiles = np.percentile(rows, [25, 50, 75], axis=0)
    means = rows.mean(axis=0)
    return {
        feature: {
            "mean": float(means[i]),
            "p25": float(quartiles[0, i]),
            "median": float(quartiles[1, i]),
            "p75": float(quartiles[2, i]),
        }
        for i, feature in enumerate(FEATURES)
    }


def _profile_table(profile: object, feature_names: Sequence[str]) -> str:
    if not isinstance(profile, Mapping) or not profile:
        return f"<p>Profile: {_NOT_AVAILABLE}</p>"
    head = ["Feature", "Mean", "25th pct", "Median", "75th pct"]
    rows = [
        [
            _esc(_label(feature)),
            _feature_value(feature, _get(profile, feature, "mean"), ",.1f"),
            *(_feature_value(feature, _get(profile, feature, q), ",.4g") for q in _QUARTILES),
        ]
        for feature in feature_names
    ]
    return _table(head, rows)


def _persona_text(holder: object) -> str:
    """The persona a segment got: escaped, "none" when it got none, or not available."""
    if not isinstance(holder, Mapping) or "persona" not in holder:
        return _NOT_AVAILABLE
    persona = holder["persona"]
    return "none" if persona is None else _esc(persona)


def _segment_meta(segment: Mapping[str, Any]) -> str:
    size = _fmt(segment.get("size"), ",.0f")
    share = _percent(segment.get("share"))
    atypical = segment.get("atypical_distance")
    parts = [
        f"Segment id <code>{_esc(segment.get('segment_id', ''))}</code>",
        f"{size} customers ({share} of all)",
        f"persona: {_persona_text(segment)}",
        f"atypical beyond distance {_fmt(atypical, '.2f')}",
    ]
    return '<p class="meta">' + " · ".join(parts) + "</p>\n"


def _segment_card(
    position: int,
    segment: Mapping[str, Any],
    feature_names: Sequence[str],
    fallback_profile: dict[str, dict[str, float]],
) -> str:
    colour = _colour(position)
    profile = segment.get("profile") or fallback_profile
    actions = segment.get("recommended_actions")
    description = segment.get("description")
    return (
        f'<article class="segment" style="border-left-color:{colour}">\n'
        f'<h3><span class="swatch" style="background:{colour}"></span>'
        f"{_esc(segment.get('name', ''))}</h3>\n"
        + _segment_meta(segment)
        + f"<p>{_esc(description) if description is not None else 'Description: ' + _NOT_AVAILABLE}"
        + "</p>\n<h4>What sets it apart</h4>\n"
        + _distinguishing_text(segment)
        + '<div class="row">'
        + _figure_profile(segment, feature_names, colour)
        + f"<div>{_profile_table(profile, feature_names)}</div></div>\n"
        + '<div class="row"><div><h4>Recommended marketing actions</h4>'
        + _bullets(_get(actions, "marketing"))
        + "</div><div><h4>Recommended service actions</h4>"
        + _bullets(_get(actions, "service"))
        + "</div></div>\n</article>\n"
    )


def _section_segments(
    manifest: Mapping[str, Any],
    features: npt.NDArray[np.float64],
    positions: npt.NDArray[np.intp],
) -> str:
    segments: Sequence[Mapping[str, Any]] = manifest["segments"]
    feature_names = [str(f) for f in manifest["features"]]
    cards = "".join(
        _segment_card(
            i,
            segment,
            feature_names,
            {} if segment.get("profile") else _data_profile(features, positions == i),
        )
        for i, segment in enumerate(segments)
    )
    intro = (
        "<p>Each card shows one segment. The <b>z-score</b> says how many standard "
        "deviations the segment's typical customer is above (+) or below (&minus;) the "
        "average customer; the table gives the same features in their own units.</p>\n"
    )
    return _section("segments", "Segments", intro + _figure_sizes(segments) + cards)


# --------------------------------------------------------------------------- projection


def _sample_rows(n: int) -> npt.NDArray[np.intp]:
    if n <= SCATTER_SAMPLE_SIZE:
        return np.arange(n, dtype=np.intp)
    rng = np.random.default_rng(_SCATTER_SEED)
    return np.sort(rng.choice(n, size=SCATTER_SAMPLE_SIZE, replace=False)).astype(np.intp)


def _loading_words(component: npt.NDArray[np.float64]) -> str:
    order = np.argsort(-np.abs(component))[:2]
    words = [
        f"{'more' if component[i] > 0 else 'fewer'} {_label(FEATURES[i])}"
        if FEATURES[i] not in _MONEY_FEATURES
        else f"{'higher' if component[i] > 0 else 'lower'} {_label(FEATURES[i])}"
        for i in order
    ]
    return " and ".join(words)


def _figure_projection(
    segments: Sequence[Mapping[str, Any]],
    points: npt.NDArray[np.float64],
    point_positions: npt.NDArray[np.intp],
    ratio: npt.NDArray[np.float64],
) -> Figure:
    figure, axes = _new_figure(7.5, 5.5)
    for i, segment in enumerate(segments):
        chosen = point_positions == i
        axes.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=9,
            alpha=0.6,
            color=_colour(i),
            label=_plot_text(segment.get("name", "")),
            linewidths=0,
        )
    axes.set_xlabel(f"component 1 ({ratio[0]:.0%} of variance)")
    axes.set_ylabel(f"component 2 ({ratio[1]:.0%} of variance)")
    axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncols=min(len(segments), 3),
        frameon=False,
        markerscale=2.5,
    )
    return figure


def _projection_caption(n_shown: int, n_total: int, pca: Any) -> str:
    shown = (
        f"all {n_total:,} customers"
        if n_shown == n_total
        else f"{n_shown:,} of {n_total:,} customers, drawn at random"
    )
    components = pca.components_
    return (
        f"Each dot is a customer ({shown}). The two axes are the directions along which "
        "customers differ most (principal components of the standardised features); "
        f"together they show {pca.explained_variance_ratio_.sum():.0%} of the variation. "
        f"Moving right means {_esc(_loading_words(components[0]))}; moving up means "
        f"{_esc(_loading_words(components[1]))}."
    )


def _section_projection(
    segments: Sequence[Mapping[str, Any]],
    positions: npt.NDArray[np.intp],
    standardised: npt.NDArray[np.float64],
) -> str:
    title = "Customers in two dimensions"
    rows = _sample_rows(len(standardised))
    sample = standardised[rows]
    if len(sample) < 3 or not np.all(np.isfinite(sample)) or np.ptp(sample, axis=0).max() == 0:
        return _section("map", title, f"<p>{_NOT_AVAILABLE}</p>\n")
    pca = PCA(n_components=2, random_state=_SCATTER_SEED)
    points = pca.fit_transform(sample)
    figure = _figure_projection(segments, points, positions[rows], pca.explained_variance_ratio_)
    caption = _projection_caption(len(rows), len(standardised), pca)
    image = _embed(figure, "Customers projected onto two principal components", caption)
    return _section("map", title, image)


# ------------------------------------------------------------ cross-checks, data quality


def _agreement(ari: object) -> str:
    """Plain words for an ARI; the bands are a reading aid, not a statistical test."""
    if not _is_number(ari):
        return ""
    words = next(word for floor, word in _AGREEMENT_BANDS if float(ari) >= floor)
    return f" ({words} agreement)"


def _section_cross_checks(manifest: Mapping[str, Any]) -> str:
    checks = _get(manifest, "metrics", "cross_checks")
    stability = _get(manifest, "metrics", "stability")
    ward, gmm = _get(checks, "ward_ari"), _get(checks, "gaussian_mixture_ari")
    mean_ari, min_ari = _get(stability, "mean_ari"), _get(stability, "min_ari")
    explain = (
        "<p>The <b>adjusted Rand index (ARI)</b> measures how far two groupings of the same "
        "customers agree: 1 means identical segments, 0 means no better than chance.</p>\n"
    )
    facts = _facts(
        (
            ("Ward hierarchical clustering vs this model", _fmt(ward, ".3f") + _agreement(ward)),
            ("Gaussian mixture vs this model", _fmt(gmm, ".3f") + _agreement(gmm)),
            ("Customers compared", _fmt(_get(checks, "sample_size"), ",.0f")),
            ("Bootstrap stability, mean ARI", _fmt(mean_ari, ".3f") + _agreement(mean_ari)),
            ("Bootstrap stability, worst ARI", _fmt(min_ari, ".3f") + _agreement(min_ari)),
            ("Bootstrap resamples", _fmt(_get(stability, "n_resamples"), ",.0f")),
        )
    )
    return _section("cross-checks", "Cross-checks", explain + facts)


def _key_list(keys: object, count: object) -> str:
    if not isinstance(keys, list):
        return _NOT_AVAILABLE
    if not keys:
        return "none"
    shown = " ".join(f"<code>{_esc(key)}</code>" for key in keys[:_LISTED_KEYS])
    total = int(float(count)) if _is_number(count) else len(keys)
    rest = total - min(len(keys), _LISTED_KEYS)
    return shown + (f" … and {rest:,} more" if rest > 0 else "")


def _section_data_quality(manifest: Mapping[str, Any]) -> str:
    quality = manifest.get("data_quality")
    n_keys = _get(quality, "n_duplicate_keys")
    facts = _facts(
        (
            ("Rows read", _fmt(_get(quality, "n_rows"), ",.0f")),
            ("Customer keys appearing more than once", _fmt(n_keys, ",.0f")),
            ("Rows carrying such a key", _fmt(_get(quality, "n_rows_with_duplicate_key"), ",.0f")),
            ("Duplicated keys", _key_list(_get(quality, "duplicate_keys"), n_keys)),
            (
                "Rows repeating another row's five features",
                _fmt(_get(quality, "n_identical_feature_rows"), ",.0f"),
            ),
        )
    )
    note = (
        "<p>A key that appears more than once may be one customer recorded twice; rows "
        "repeating another row's five features are usually different customers who "
        "behave the same way.</p>\n"
    )
    return _section("data-quality", "Data quality", facts + note)


# --------------------------------------------------------------------------- playbook, lineage


def _persona_rows(manifest: Mapping[str, Any]) -> list[list[str]]:
    segments: Sequence[Mapping[str, Any]] = manifest["segments"]
    names = {str(s.get("segment_id")): s.get("name", "") for s in segments}
    fits = _get(manifest, "persona_matching", "fits")
    if not isinstance(fits, list):
        fits = [
            {"segment_id": s.get("segment_id"), "fit": s.get("persona_fit")}
            | ({"persona": s["persona"]} if "persona" in s else {})
            for s in segments
        ]
    return [
        [
            _esc(names.get(str(_get(fit, "segment_id")), "")),
            f"<code>{_fmt(_get(fit, 'segment_id'))}</code>",
            _persona_text(fit),
            _fmt(_get(fit, "fit"), ".2f"),
        ]
        for fit in fits
    ]


def _section_playbook(manifest: Mapping[str, Any]) -> str:
    matching = manifest.get("persona_matching")
    unmatched = _get(matching, "unmatched_personas")
    unused = (
        ", ".join(_esc(p) for p in unmatched) or "none"
        if isinstance(unmatched, list)
        else _NOT_AVAILABLE
    )
    content = (
        f"<p>Playbook: {_fmt(_get(matching, 'playbook'))}</p>\n"
        "<p>Each segment is matched to the playbook persona it resembles most; the fit "
        "is the matcher's score for that pairing. A segment with no persona had no "
        "persona that fitted well enough.</p>\n"
        + _table(["Segment", "Id", "Persona", "Fit"], _persona_rows(manifest))
        + f"<p>Personas not used by any segment: {unused}</p>\n"
    )
    return _section("playbook", "Playbook mapping", content)


def _moved_text(lineage: object) -> str:
    moved, compared = _get(lineage, "moved_customers"), _get(lineage, "compared_customers")
    if not _is_number(moved):
        return _NOT_AVAILABLE
    text = _fmt(moved, ",.0f")
    if _is_number(compared) and float(compared) > 0:
        share = float(moved) / float(compared)
        text += f" of {_fmt(compared, ',.0f')} customers in both versions ({share:.1%})"
    return text


def _section_lineage(manifest: Mapping[str, Any]) -> str:
    lineage = manifest.get("lineage")
    previous = _get(lineage, "previous_version")
    if previous is None:
        previous_text = (
            "none &ndash; this is the first version"
            if isinstance(lineage, Mapping)
            else _NOT_AVAILABLE
        )
    else:
        previous_text = f"<code>{_esc(previous)}</code>"
    matched = _get(lineage, "matched")
    rows = (
        [[f"<code>{_esc(new)}</code>", f"<code>{_esc(old)}</code>"] for new, old in matched.items()]
        if isinstance(matched, Mapping)
        else []
    )
    table = _table(["Segment now", "Segment in previous version"], rows) if rows else ""
    facts = _facts(
        (
            ("Previous version", previous_text),
            ("Customers who moved segment", _moved_text(lineage)),
        )
    )
    return _section("lineage", "Lineage", facts + table)
