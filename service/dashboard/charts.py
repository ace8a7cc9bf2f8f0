"""The geometry of the dashboard's charts: where each bar, line, cell and label goes.

Only numbers and words here; the SVG markup is in ``templates/_charts.html``, which draws
these shapes with classes (colours live in the style sheet, so that the page's content
security policy needs no inline style). Every chart carries a title and a description for
its ``role="img"``, and the page gives its figures as a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from segmentation.drift import ACT, WATCH

_ROW: Final = 30.0
_TOP: Final = 10.0
_AXIS: Final = 28.0


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str = "middle"
    """How the label sits on its mark (SVG ``text-anchor``): the outermost ones inward."""


@dataclass(frozen=True)
class ProfileRow:
    """One feature of a segment: its mean and its middle half, in standard deviations from
    the whole population's average."""

    label: str
    mean: float
    p25: float
    p75: float


@dataclass(frozen=True)
class ProfileBar:
    label: str
    y: float
    """The row's centre line."""
    x: float
    width: float
    direction: str
    """``above`` or ``below`` the population's average."""
    whisker_from: float
    whisker_to: float


@dataclass(frozen=True)
class ProfileChart:
    chart_id: str
    title: str
    description: str
    width: float
    height: float
    zero: float
    plot_top: float
    plot_bottom: float
    bars: tuple[ProfileBar, ...]
    ticks: tuple[Tick, ...]


def profile_limit(rows: Sequence[ProfileRow]) -> float:
    """The half-width of a profile chart's axis (whole standard deviations) that shows every
    row; charts of one model share it, so that bars compare across segments."""
    widest = max((max(abs(r.mean), abs(r.p25), abs(r.p75)) for r in rows), default=1.0)
    return float(max(1, math.ceil(widest)))


def profile_chart(
    chart_id: str, title: str, description: str, rows: Sequence[ProfileRow], *, limit: float
) -> ProfileChart:
    """A diverging bar per feature: the segment's mean against the population's average
    (the middle line), with a whisker over its middle half (25th to 75th percentile)."""
    width, left, right = 400.0, 150.0, 388.0
    zero = (left + right) / 2
    scale = (right - zero) / limit

    def at(z: float) -> float:
        return zero + max(-limit, min(limit, z)) * scale

    bars = []
    for index, row in enumerate(rows):
        end = at(row.mean)
        bars.append(
            ProfileBar(
                label=row.label,
                y=_TOP + _ROW * index + _ROW / 2,
                x=min(zero, end),
                width=abs(end - zero),
                direction="above" if row.mean >= 0 else "below",
                whisker_from=at(row.p25),
                whisker_to=at(row.p75),
            )
        )
    plot_bottom = _TOP + _ROW * len(rows)
    whole = int(limit)
    ticks = (
        Tick(x=at(-whole), label=f"{-whole:+d} sd", anchor="start"),
        Tick(x=zero, label="average"),
        Tick(x=at(whole), label=f"{whole:+d} sd", anchor="end"),
    )
    return ProfileChart(
        chart_id=chart_id,
        title=title,
        description=description,
        width=width,
        height=plot_bottom + _AXIS,
        zero=zero,
        plot_top=_TOP,
        plot_bottom=plot_bottom,
        bars=tuple(bars),
        ticks=ticks,
    )


@dataclass(frozen=True)
class PsiBar:
    label: str
    y: float
    width: float
    band: str
    value_x: float
    value: str
    clipped: bool
    """The PSI is beyond the axis; the bar ends at its edge and the value says how far."""


@dataclass(frozen=True)
class PsiChart:
    chart_id: str
    title: str
    description: str
    width: float
    height: float
    left: float
    plot_top: float
    plot_bottom: float
    bars: tuple[PsiBar, ...]
    thresholds: tuple[Tick, ...]
    ticks: tuple[Tick, ...]


def psi_chart(
    chart_id: str,
    title: str,
    description: str,
    rows: Sequence[tuple[str, float, str, str]],
) -> PsiChart:
    """A bar per ``(label, psi, band, written value)``, with the watch and act thresholds
    marked. The axis ends at 0.5, or at 1.0 once a PSI passes 0.5: beyond that a population
    has plainly moved, and a longer axis would squeeze the thresholds into its first few
    pixels."""
    width, left, right, top = 400.0, 150.0, 350.0, 24.0
    end = 0.5 if max((psi for _, psi, _, _ in rows), default=0.0) <= 0.5 else 1.0
    scale = (right - left) / end
    bars = []
    for index, (label, psi, band, written) in enumerate(rows):
        length = min(psi, end) * scale
        bars.append(
            PsiBar(
                label=label,
                y=top + _ROW * index + _ROW / 2,
                width=length,
                band=band,
                value_x=left + length + 4,
                value=written,
                clipped=psi > end,
            )
        )
    plot_bottom = top + _ROW * len(rows)
    return PsiChart(
        chart_id=chart_id,
        title=title,
        description=description,
        width=width,
        height=plot_bottom + _AXIS,
        left=left,
        plot_top=top,
        plot_bottom=plot_bottom,
        bars=tuple(bars),
        thresholds=(
            Tick(x=left + WATCH * scale, label=f"watch {WATCH}", anchor="end"),
            Tick(x=left + ACT * scale, label=f"act {ACT}", anchor="start"),
        ),
        ticks=(Tick(x=left, label="0"), Tick(x=right, label=f"{end:.1f}")),
    )


@dataclass(frozen=True)
class HeatCell:
    x: float
    y: float
    count: int
    level: int
    """0 (no customer) to 4 (most of the row's customers), for the shade."""
    stays: bool
    """The same segment under both versions (the diagonal)."""
    from_id: str
    to_id: str


@dataclass(frozen=True)
class HeatLabel:
    x: float
    y: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Heatmap:
    chart_id: str
    title: str
    description: str
    width: float
    height: float
    cell_width: float
    cell_height: float
    rows: tuple[HeatLabel, ...]
    columns: tuple[HeatLabel, ...]
    cells: tuple[HeatCell, ...]


def transition_heatmap(
    chart_id: str,
    title: str,
    description: str,
    *,
    from_ids: Sequence[str],
    to_ids: Sequence[str],
    names: Mapping[str, str],
    counts: Mapping[tuple[str, str], int],
) -> Heatmap:
    """Customers by segment under the version compared against (rows) and under the
    candidate (columns); each cell's shade is its share of the row."""
    left, top, cell_width, cell_height = 150.0, 58.0, 120.0, 44.0
    cells = []
    for row, old in enumerate(from_ids):
        total = sum(counts.get((old, new), 0) for new in to_ids)
        for column, new in enumerate(to_ids):
            value = counts.get((old, new), 0)
            cells.append(
                HeatCell(
                    x=left + column * cell_width,
                    y=top + row * cell_height,
                    count=value,
                    level=math.ceil(4 * value / total) if value and total else 0,
                    stays=old == new,
                    from_id=old,
                    to_id=new,
                )
            )
    return Heatmap(
        chart_id=chart_id,
        title=title,
        description=description,
        width=left + cell_width * len(to_ids) + 4,
        height=top + cell_height * len(from_ids) + 4,
        cell_width=cell_width,
        cell_height=cell_height,
        rows=tuple(
            HeatLabel(
                x=left - 8,
                y=top + row * cell_height + cell_height / 2,
                lines=_wrapped(names[segment_id], _LABEL_CHARACTERS),
            )
            for row, segment_id in enumerate(from_ids)
        ),
        columns=tuple(
            HeatLabel(
                x=left + column * cell_width + cell_width / 2,
                y=14,
                lines=_wrapped(names[segment_id], _LABEL_CHARACTERS)[:3],
            )
            for column, segment_id in enumerate(to_ids)
        ),
        cells=tuple(cells),
    )


_LABEL_CHARACTERS: Final = 16
"""Characters on one line of a heatmap label: about what a cell's width holds."""


def _wrapped(name: str, width: int) -> tuple[str, ...]:
    """A segment's name on lines of at most ``width`` characters, broken between words (a
    longer word gets a line of its own)."""
    lines: list[str] = []
    for word in name.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return tuple(lines) or (name,)
