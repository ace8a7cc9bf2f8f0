"""A comparison of two versions as files in the candidate's folder: JSON and an HTML page.

``comparison.json`` is :meth:`segmentation.comparison.Comparison.to_document`;
``comparison.html`` shows the verdict in words, where each segment's customers would go
(a heatmap of the transition matrix), the segments side by side and the training figures.
The model card (``report.html``) links to the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from segmentation.artifact import write_bytes_atomically
from segmentation.comparison import Comparison, SegmentSideBySide
from segmentation.features import FEATURES
from training.report_figures import transition_figure
from training.report_html import (
    bullets,
    esc,
    facts,
    feature_value,
    fmt,
    label,
    page,
    section,
    table,
)

COMPARISON_JSON: Final = "comparison.json"
COMPARISON_HTML: Final = "comparison.html"
_ABSENT: Final = '<span class="na">absent</span>'


def write_comparison(version_dir: Path, comparison: Comparison) -> None:
    """Write ``comparison.json`` and ``comparison.html`` into ``version_dir``, each atomically."""
    # Both rendered before either is written: a failure leaves neither half-done.
    document = json.dumps(comparison.to_document(), indent=2, allow_nan=False) + "\n"
    page_html = render_comparison(comparison)
    write_bytes_atomically(version_dir / COMPARISON_JSON, document.encode())
    write_bytes_atomically(version_dir / COMPARISON_HTML, page_html.encode())


def render_comparison(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page (every text escaped)."""
    verdict = comparison.verdict
    word = (
        '<span class="ok">switch</span>'
        if verdict.ok
        else '<span class="not-ok">do not switch</span>'
    )
    summary = facts(
        (
            ("Candidate", f"<code>{esc(comparison.candidate)}</code>"),
            ("Compared against", f"<code>{esc(comparison.against)}</code>"),
            ("Customers compared", fmt(comparison.n_customers, ",.0f")),
            (
                "Customers who would move",
                f"{fmt(comparison.moved, ',.0f')} ({fmt(comparison.moved_share * 100, '.1f')}%)",
            ),
            ("Adjusted Rand index", fmt(comparison.adjusted_rand_index, ".3f")),
            ("Personas gained", ", ".join(map(esc, comparison.personas_gained)) or "none"),
            ("Personas lost", ", ".join(map(esc, comparison.personas_lost)) or "none"),
            ("Verdict", word),
        )
    )
    body = "".join(
        (
            f"<header>\n<h1>Switching to {esc(comparison.candidate)}?</h1>\n{summary}</header>\n",
            section("verdict", "Verdict", bullets(verdict.reasons)),
            section("transitions", "Who would move where", transition_figure(comparison)),
            section("segments", "Segments side by side", _segments_table(comparison)),
            section("centres", "Segment centres side by side", _centres_table(comparison)),
            section("metrics", "Training figures side by side", _metrics_table(comparison)),
        )
    )
    title = f"Comparison {esc(comparison.candidate)} against {esc(comparison.against)}"
    return page(title, body)


def _segments_table(comparison: Comparison) -> str:
    head = [
        "Segment",
        "Name now",
        "Name in the candidate",
        "Persona now",
        "Persona in the candidate",
        "Customers now",
        "Customers in the candidate",
    ]
    rows = [
        [
            f"<code>{esc(side.segment_id)}</code>",
            _or_absent(side.name_against),
            _or_absent(side.name_candidate),
            _or_absent(side.persona_against),
            _or_absent(side.persona_candidate),
            fmt(side.customers_against, ",.0f"),
            fmt(side.customers_candidate, ",.0f"),
        ]
        for side in comparison.segments
    ]
    return table(head, rows)


def _or_absent(text: str | None) -> str:
    return esc(text) if text is not None else _ABSENT


def _centres_table(comparison: Comparison) -> str:
    head = ["Segment", *(esc(label(feature)) for feature in FEATURES)]
    rows = [
        [f"<code>{esc(side.segment_id)}</code>", *(_centre_cell(side, f) for f in FEATURES)]
        for side in comparison.segments
    ]
    return "<p>Each cell: the centre now &rarr; under the candidate.</p>\n" + table(head, rows)


def _centre_cell(side: SegmentSideBySide, feature: str) -> str:
    def value(centre: dict[str, float] | None) -> str:
        return feature_value(feature, centre[feature], ",.2f") if centre else _ABSENT

    return f"{value(side.centre_against)} &rarr; {value(side.centre_candidate)}"


def _metrics_table(comparison: Comparison) -> str:
    rows = [
        [esc(name), fmt(values["against"], ",.4g"), fmt(values["candidate"], ",.4g")]
        for name, values in comparison.metrics.items()
    ]
    return table(["Figure", "Now", "Candidate"], rows)
