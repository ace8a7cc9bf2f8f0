"""Rendering a run: the terminal table, the Markdown the README embeds, and the result files."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from benchmarks.report import KEYED_CASES, CaseResult, Report, targets

logger = logging.getLogger(__name__)

NOT_MEASURED = "-"
HEADER = ("case", "req/s", "p50 ms", "p99 ms", "errors", "rows/s", "note")
_RIGHT_ALIGNED = frozenset({1, 2, 3, 4, 5})
_RATIO_NAMES = {"naive": "the naive baseline", "mlflow": "MLflow", "ceiling": "the ceiling"}


def _number(value: float | None, *, small_digits: int = 1) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:,.{small_digits}f}" if value < 100 else f"{value:,.0f}"


def _case_row(result: CaseResult) -> tuple[str, ...]:
    wrk = result.wrk
    if wrk is None:
        return (
            result.case,
            NOT_MEASURED,
            NOT_MEASURED,
            NOT_MEASURED,
            NOT_MEASURED,
            NOT_MEASURED,
            result.note,
        )
    return (
        result.case,
        _number(result.requests_per_second),
        _number(wrk.latency_p50_us / 1000, small_digits=2),
        _number(wrk.latency_p99_us / 1000, small_digits=2),
        str(wrk.errors),
        _number(result.rows_per_second) if result.is_batch else "",
        result.note,
    )


def _ratio_line(report: Report) -> str:
    parts = [
        f"{ratio:.2f}x {_RATIO_NAMES[server]}" if ratio is not None else f"n/a vs {server}"
        for server, ratio in report.ratios().items()
    ]
    keyed = [
        f"{store} {share:.2f}x"
        if (share := report.of_ceiling(name)) is not None
        else f"{store} n/a"
        for store, (name, _) in KEYED_CASES.items()
    ]
    return (
        "ours /segment requests/s: "
        + ", ".join(parts)
        + "; keyed (recorded) /segment vs the ceiling: "
        + ", ".join(keyed)
    )


def _inprocess_rows(report: Report) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if report.scoring:
        scoring = report.scoring
        rows += [
            (
                "SegmentScorer.score, 1 customer per call",
                f"{scoring.single_rows_per_second:,.0f} rows/s",
            ),
            (
                f"SegmentScorer.score, {scoring.bulk_rows:,} customers in one call",
                f"{scoring.bulk_rows_per_second:,.0f} rows/s "
                f"(best of {len(scoring.bulk_seconds)}: {min(scoring.bulk_seconds):.3f} s)",
            ),
        ]
    if report.footprint:
        footprint = report.footprint
        rows += [
            ("ours: process start to /ready 200", f"{footprint.startup_seconds:.2f} s"),
            ("ours: RSS after /ready", _megabytes(footprint.rss_after_ready_mb)),
            (
                f"ours: RSS after one {footprint.batch_rows:,}-row JSON batch "
                f"(HTTP {footprint.batch_status})",
                _megabytes(footprint.rss_after_batch_mb),
            ),
        ]
    peak = report.servers.get("ours", {}).get("peak_rss_mb")
    if peak is not None:
        rows.append(("ours: peak RSS over all its cases (VmHWM)", _megabytes(peak)))
    for server, facts in report.servers.items():
        rows.append((f"{server}: server", facts.get("summary", "")))
    return rows


def _megabytes(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.1f} MB"


def _target_rows(report: Report) -> list[tuple[str, str, str, str]]:
    verdicts = {True: "pass", False: "MISS", None: "n/a"}
    return [
        (verdicts[target.passed], target.name, target.figure, target.target)
        for target in targets(report)
    ]


def _align(rows: Sequence[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _heading(report: Report) -> str:
    settings = report.settings
    return (
        f"{report.created_at}: wrk -t{settings['threads']} -c{settings['connections']}, "
        f"{settings['duration_seconds']:g} s per case after {settings['warmup_seconds']:g} s "
        "of warm-up, one uvicorn worker per server but the pod (two); "
        f"{report.environment['machine']}"
    )


def render_text(report: Report) -> str:
    """The terminal form: the table, the ratios, the in-process figures and the targets."""
    lines = [_heading(report), ""]
    table = _align([HEADER, *(_case_row(result) for result in report.cases)], _RIGHT_ALIGNED)
    lines += [table[0], "-" * len(table[0]), *table[1:], "", _ratio_line(report), ""]
    lines += [
        "in-process and footprint",
        *("  " + line for line in _align(_inprocess_rows(report))),
    ]
    lines += ["", "targets (issues 14 and 19; a miss does not fail the run)"]
    lines += ["  " + line for line in _align(_target_rows(report))]
    return "\n".join(lines) + "\n"


def _markdown_table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], right: frozenset[int]
) -> list[str]:
    rule = ["---:" if column in right else "---" for column in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
    ]


def render_markdown(report: Report) -> str:
    """The Markdown form the README embeds."""
    lines = [f"_{_heading(report)}_", ""]
    lines += _markdown_table(HEADER, [_case_row(r) for r in report.cases], _RIGHT_ALIGNED)
    lines += ["", _ratio_line(report), ""]
    lines += _markdown_table(
        ("in-process and footprint", "figure"), _inprocess_rows(report), frozenset()
    )
    lines += [""]
    lines += _markdown_table(("met", "target", "figure", "goal"), _target_rows(report), frozenset())
    return "\n".join(lines) + "\n"


def write_results(report: Report, results_dir: Path, *, as_latest: bool) -> list[Path]:
    """Write the timestamped JSON, and when ``as_latest`` also latest.json and latest.md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = report.created_at.replace(":", "").replace("-", "")
    document = json.dumps(report.as_dict(), indent=2) + "\n"
    written = [_write(results_dir / f"bench-{stamp}.json", document)]
    if as_latest:
        written.append(_write(results_dir / "latest.json", document))
        written.append(_write(results_dir / "latest.md", render_markdown(report)))
    return written


def _write(path: Path, text: str) -> Path:
    # The .tmp name is git-ignored; readers never see half a file.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path
