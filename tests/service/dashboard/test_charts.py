"""The charts' geometry: shapes where the figures say, labels that fit."""

from __future__ import annotations

from service.dashboard.charts import (
    ProfileRow,
    profile_chart,
    profile_limit,
    psi_chart,
    transition_heatmap,
)


def test_profile_bars_run_from_the_average_to_the_segments_mean() -> None:
    rows = [ProfileRow("limit", 2.6, 1.2, 3.4), ProfileRow("calls", -0.5, -1.0, 0.2)]
    limit = profile_limit(rows)
    chart = profile_chart("c", "t", "d", rows, limit=limit)
    assert limit == 4.0  # the widest whisker end, rounded up to a whole deviation
    above, below = chart.bars
    assert (above.direction, below.direction) == ("above", "below")
    assert above.x == chart.zero and above.x + above.width > chart.zero
    assert below.x + below.width == chart.zero
    assert above.whisker_from < above.x + above.width < above.whisker_to
    assert [tick.label for tick in chart.ticks] == ["-4 sd", "average", "+4 sd"]


def test_a_psi_beyond_the_axis_is_clipped_and_says_so() -> None:
    calm = psi_chart("c", "t", "d", [("limit", 0.05, "ok", "0.05")])
    moved = psi_chart("c", "t", "d", [("limit", 2.8, "act", "2.80"), ("cards", 0.3, "act", "0.30")])
    assert calm.ticks[-1].label == "0.5" and not calm.bars[0].clipped
    assert moved.ticks[-1].label == "1.0"
    assert moved.bars[0].clipped and not moved.bars[1].clipped
    assert moved.bars[0].width > moved.bars[1].width
    assert [t.label for t in moved.thresholds] == ["watch 0.1", "act 0.25"]


def test_the_heatmap_has_a_cell_per_pair_shaded_by_its_share_of_the_row() -> None:
    names = {"a": "Branch-loyal customers", "b": "Quiet, low-engagement customers"}
    chart = transition_heatmap(
        "h",
        "t",
        "d",
        from_ids=["a"],
        to_ids=["a", "b"],
        names=names,
        counts={("a", "a"): 190, ("a", "b"): 196},
    )
    cells = {(cell.from_id, cell.to_id): cell for cell in chart.cells}
    assert {pair: cell.count for pair, cell in cells.items()} == {("a", "a"): 190, ("a", "b"): 196}
    assert cells[("a", "a")].stays and not cells[("a", "b")].stays
    assert (cells[("a", "a")].level, cells[("a", "b")].level) == (2, 3)
    assert chart.columns[1].lines == ("Quiet,", "low-engagement", "customers")
    assert chart.rows[0].lines == ("Branch-loyal", "customers")
