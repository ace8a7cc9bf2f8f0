"""The model card's figures, each an embedded PNG inside a ``<figure>`` element.

Figures are plain :class:`matplotlib.figure.Figure` objects, never registered with
pyplot, so nothing keeps them alive once saved and nothing here needs a display.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from segmentation.comparison import Comparison
from segmentation.features import FEATURES
from segmentation.manifest import Segment, SweepPoint
from training.report_html import NOT_AVAILABLE, esc, is_money, label

SCATTER_SAMPLE_SIZE: Final = 5_000
"""Customers drawn (seeded) for the 2-D map, so the page stays small and fast for any n."""

_SCATTER_SEED: Final = 0
_DPI: Final = 100
_PLOT_LABEL_CHARS: Final = 40
_PALETTE: Final[tuple[str, ...]] = tuple(to_hex(colormaps["tab10"](i)) for i in range(10))


def colour(position: int) -> str:
    """The colour of the segment at ``position`` (largest first), the same in every figure."""
    return _PALETTE[position % len(_PALETTE)]


def sweep_figure(
    points: Sequence[SweepPoint], metric: str, ylabel: str, marked_k: int | None, mark: str
) -> str:
    """One metric of the k sweep against k, with ``marked_k`` circled and named ``mark``."""
    ks = [float(point.k) for point in points]
    values = [float(getattr(point, metric)) for point in points]
    figure, axes = _new_figure(5.0, 3.2)
    axes.plot(ks, values, marker="o", color="#44546a")
    if marked_k is not None and float(marked_k) in ks:
        x = float(marked_k)
        y = values[ks.index(x)]
        axes.axvline(x, color="#d62728", linestyle="--", linewidth=1)
        axes.plot([x], [y], marker="o", markersize=11, color="#d62728", fillstyle="none")
        axes.annotate(f"{mark} k = {x:g}", (x, y), xytext=(8, 8), textcoords="offset points")
    axes.margins(y=0.15)
    axes.set_xticks(ks)
    axes.set_xlabel("number of segments k")
    axes.set_ylabel(ylabel)
    return _embed(figure, f"{ylabel} for each number of segments")


def sizes_figure(segments: Sequence[Segment]) -> str:
    """Customers per segment, as horizontal bars with counts and shares."""
    figure, axes = _new_figure(7.5, 0.55 * len(segments) + 1.0)
    rows = list(range(len(segments)))[::-1]
    sizes = [float(segment.size) for segment in segments]
    axes.barh(rows, sizes, color=[colour(i) for i in range(len(segments))])
    axes.set_yticks(rows, [_plot_text(segment.name) for segment in segments])
    for row, segment in zip(rows, segments, strict=True):
        note = f" {segment.size:,} ({segment.share:.1%})"
        axes.text(segment.size, row, note, va="center", fontsize=9)
    axes.set_xlabel("customers")
    axes.set_xlim(0, max(sizes, default=0) * 1.25 or 1)
    axes.grid(axis="y", visible=False)
    return _embed(figure, "Number of customers in each segment")


def profile_figure(segment: Segment, features: Sequence[str], bar_colour: str) -> str:
    """How far the segment's centre lies from the average customer, feature by feature."""
    values = [segment.z_centroid[feature] for feature in features]
    figure, axes = _new_figure(5.2, 2.6)
    rows = list(range(len(features)))[::-1]
    axes.barh(rows, values, color=bar_colour)
    axes.set_yticks(rows, [_plot_text(label(feature)) for feature in features])
    axes.axvline(0, color="#333", linewidth=0.8)
    limit = max(1.0, *(abs(v) for v in values)) * 1.15
    axes.set_xlim(-limit, limit)
    axes.set_xlabel("← below average    z-score (standard deviations)    above average →")
    axes.grid(axis="y", visible=False)
    return _embed(
        figure,
        f"Profile of {segment.name}: how far each feature is from the average",
        "Bars show how many standard deviations the segment's centre lies from the "
        "average customer (0 = average).",
    )


def projection_figure(
    segments: Sequence[Segment],
    positions: npt.NDArray[np.intp],
    standardised: npt.NDArray[np.float64],
) -> str:
    """Customers on the two principal components, coloured by segment (a seeded sample)."""
    rows = _sample_rows(len(standardised))
    sample = standardised[rows]
    if len(sample) < 3 or not np.all(np.isfinite(sample)) or np.ptp(sample, axis=0).max() == 0:
        return f"<p>{NOT_AVAILABLE}</p>\n"
    pca = PCA(n_components=2, random_state=_SCATTER_SEED)
    points = pca.fit_transform(sample)
    ratio = pca.explained_variance_ratio_
    figure, axes = _new_figure(7.5, 5.5)
    for i, segment in enumerate(segments):
        chosen = positions[rows] == i
        axes.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=9,
            alpha=0.6,
            color=colour(i),
            label=_plot_text(segment.name),
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
    caption = _projection_caption(len(rows), len(standardised), pca)
    return _embed(figure, "Customers projected onto two principal components", caption)


def transition_figure(comparison: Comparison) -> str:
    """The transition matrix as a heatmap: rows the version compared against, columns the
    candidate, each cell its count and its share of the row."""
    rows = [side.segment_id for side in comparison.segments if side.name_against is not None]
    columns = [side.segment_id for side in comparison.segments if side.name_candidate is not None]
    counts = np.zeros((len(rows), len(columns)))
    for flow in comparison.transitions:
        counts[rows.index(flow.from_segment), columns.index(flow.to_segment)] = flow.count
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    figure, axes = _new_figure(1.6 * len(columns) + 3.0, 0.8 * len(rows) + 1.6)
    axes.grid(False)
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for row in range(len(rows)):
        for column in range(len(columns)):
            colour = "white" if shares[row, column] > 0.6 else "#1d232b"
            text = f"{counts[row, column]:,.0f}\n{shares[row, column]:.1%}"
            axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=9)
    axes.set_xticks(range(len(columns)), [_plot_text(c) for c in columns], rotation=20)
    axes.set_yticks(range(len(rows)), [_plot_text(r) for r in rows])
    axes.set_xlabel(f"segment under the candidate {comparison.candidate}")
    axes.set_ylabel(f"segment now ({comparison.against})")
    return _embed(
        figure,
        "Where the customers of each segment would go under the candidate",
        "Each row is a segment now; each cell the customers it would send to a segment of "
        "the candidate, with their share of the row. A customer moves when the two segment "
        "ids differ.",
    )


def _sample_rows(n: int) -> npt.NDArray[np.intp]:
    if n <= SCATTER_SAMPLE_SIZE:
        return np.arange(n, dtype=np.intp)
    rng = np.random.default_rng(_SCATTER_SEED)
    return np.sort(rng.choice(n, size=SCATTER_SAMPLE_SIZE, replace=False)).astype(np.intp)


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
        f"Moving right means {esc(_loading_words(components[0]))}; moving up means "
        f"{esc(_loading_words(components[1]))}."
    )


def _loading_words(component: npt.NDArray[np.float64]) -> str:
    order = np.argsort(-np.abs(component))[:2]
    words = [
        f"{'higher' if component[i] > 0 else 'lower'} {label(FEATURES[i])}"
        if is_money(FEATURES[i])
        else f"{'more' if component[i] > 0 else 'fewer'} {label(FEATURES[i])}"
        for i in order
    ]
    return " and ".join(words)


def _plot_text(text: str) -> str:
    """Data text made safe for matplotlib: shortened, and ``$`` kept from starting mathtext."""
    if len(text) > _PLOT_LABEL_CHARS:
        text = text[: _PLOT_LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=_DPI)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(alpha=0.3)
    axes.set_axisbelow(True)
    return figure, axes


def _embed(figure: Figure, alt: str, caption: str = "") -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI; the figure is cleared."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    figure.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    img = f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'
    figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{img}{figcaption}</figure>\n"
