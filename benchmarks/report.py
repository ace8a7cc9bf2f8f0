"""The benchmark's one table: figures per case, ratios, in-process figures and the targets."""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.inprocess import ScoringFigures, ServiceFootprint
from benchmarks.wrk import WrkResult

logger = logging.getLogger(__name__)

OURS_SINGLE = "ours /segment"
SHADOWED = "ours /segment with a shadow"
"""The single case with a second version shadowing every request (``benchmarks.plan``)."""
KEYED_CASES = {
    "SQLite": ("ours /segment keyed, SQLite", 0.4),
    "PostgreSQL": ("ours /segment keyed, PostgreSQL", 0.5),
}
"""The keyed live call on each store, with the share of the ceiling it should reach."""
CSV_BOTH_WAYS = "in and out"
"""Suffix of the CSV cases answered in CSV (``Accept: text/csv``), as a campaign tool that
sends a CSV asks; the plain CSV cases are answered in JSON."""
POD = "pod of 2 workers"
"""How the ``ours-pod`` server's cases are named: our service as a pod runs it on two cores."""


def batch_case_name(server: str, name: str) -> str:
    """A batch case's name: its server (``ours``, one worker, or the pod), the path, ``name``."""
    return f"{POD if server == 'ours-pod' else server} /segment/batch {name}"


SINGLE_CASES = {
    "naive": "naive /segment",
    "mlflow": "mlflow /invocations",
    "ceiling": "ceiling /segment",
}


@dataclass
class CaseResult:
    """One case's figures, or why it has none."""

    case: str
    server: str
    rows: int
    is_batch: bool
    connections: int
    wrk: WrkResult | None = None
    note: str = ""
    drain_seconds: float = 0.0
    """How long the server took to finish the warm-up's abandoned requests."""

    @property
    def requests_per_second(self) -> float | None:
        return self.wrk.requests_per_second if self.wrk else None

    @property
    def rows_per_second(self) -> float | None:
        rate = self.requests_per_second
        return rate * self.rows if rate is not None and self.is_batch else None

    def as_dict(self) -> dict[str, Any]:
        wrk = self.wrk
        return {
            "case": self.case,
            "server": self.server,
            "rows_per_request": self.rows,
            "connections": self.connections,
            "requests_per_second": _round(self.requests_per_second, 1),
            "p50_ms": _round(wrk.latency_p50_us / 1000 if wrk else None, 3),
            "p90_ms": _round(wrk.latency_p90_us / 1000 if wrk else None, 3),
            "p99_ms": _round(wrk.latency_p99_us / 1000 if wrk else None, 3),
            "max_ms": _round(wrk.latency_max_us / 1000 if wrk else None, 3),
            "errors": wrk.errors if wrk else None,
            "rows_per_second": _round(self.rows_per_second, 0),
            "drain_after_warmup_seconds": self.drain_seconds,
            "wrk": asdict(wrk) if wrk else None,
            "note": self.note,
        }


@dataclass
class Report:
    """Everything one run measured."""

    created_at: str
    settings: dict[str, Any]
    environment: dict[str, Any]
    cases: list[CaseResult] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoring: ScoringFigures | None = None
    footprint: ServiceFootprint | None = None

    def case(self, name: str) -> CaseResult | None:
        return next((result for result in self.cases if result.case == name), None)

    def ratios(self) -> dict[str, float | None]:
        """Requests per second of ours ``/segment`` over each other server's single case."""
        ours = self.case(OURS_SINGLE)
        ours_rate = ours.requests_per_second if ours else None
        ratios: dict[str, float | None] = {}
        for server, name in SINGLE_CASES.items():
            other = self.case(name)
            rate = other.requests_per_second if other else None
            ratios[server] = ours_rate / rate if ours_rate and rate else None
        return ratios

    def of_ceiling(self, case_name: str) -> float | None:
        """A case's requests per second over the ceiling's, in this run."""
        case, ceiling = self.case(case_name), self.case(SINGLE_CASES["ceiling"])
        rate = case.requests_per_second if case else None
        ceiling_rate = ceiling.requests_per_second if ceiling else None
        return rate / ceiling_rate if rate and ceiling_rate else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "settings": self.settings,
            "environment": self.environment,
            "cases": [result.as_dict() for result in self.cases],
            "ratios_of_ours_segment": {k: _round(v, 2) for k, v in self.ratios().items()},
            "servers": self.servers,
            "inprocess": {
                "scoring": self.scoring.as_dict() if self.scoring else None,
                "service": self.footprint.as_dict() if self.footprint else None,
            },
            "targets": [asdict(target) for target in targets(self)],
        }


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, the figure it is judged on and whether it was met."""

    name: str
    figure: str
    target: str
    passed: bool | None
    """None when the figure could not be measured."""


def _check(
    name: str, value: float | None, target: str, ok: Callable[[float], bool], shown: str
) -> Target:
    if value is None:
        return Target(name, "not measured", target, None)
    return Target(name, shown.format(value), target, ok(value))


def targets(report: Report) -> list[Target]:
    """The issues' targets (14 for the keyed call, 19 for the rest), judged on this run."""
    ratios = report.ratios()
    ours, ceiling = report.case(OURS_SINGLE), report.case(SINGLE_CASES["ceiling"])
    wrk = ours.wrk if ours else None
    ceiling_wrk = ceiling.wrk if ceiling else None
    footprint = report.footprint
    return [
        _check("/segment vs naive", ratios["naive"], ">= 10x", lambda v: v >= 10, "{:.1f}x"),
        _check("/segment vs MLflow", ratios["mlflow"], ">= 20x", lambda v: v >= 20, "{:.1f}x"),
        _check(
            "/segment vs ceiling", ratios["ceiling"], ">= 0.75x", lambda v: v >= 0.75, "{:.2f}x"
        ),
        _check(
            "/segment p99 at 16 connections vs the ceiling's",
            wrk.latency_p99_us / ceiling_wrk.latency_p99_us if wrk and ceiling_wrk else None,
            "<= 1.5x",
            lambda v: v <= 1.5,
            "{:.2f}x",
        ),
        _check("/segment errors", wrk.errors if wrk else None, "0", lambda v: v == 0, "{:.0f}"),
        *_keyed_targets(report),
        _check(
            "/segment with a shadow vs without",
            _shadowed_share(report),
            ">= 0.85x",
            lambda v: v >= 0.85,
            "{:.2f}x",
        ),
        *(
            _check(
                f"batch {name} rows/s, {'1 worker' if server == 'ours' else POD}",
                case.rows_per_second
                if (case := report.case(batch_case_name(server, name)))
                else None,
                f">= {goal:,}",
                functools.partial(operator.le, goal),
                "{:,.0f}",
            )
            for name, goal in BATCH_TARGETS.items()
            for server in ("ours-pod", "ours")
        ),
        _check(
            "in-process scoring, 1,000,000 rows/s",
            report.scoring.bulk_rows_per_second if report.scoring else None,
            ">= 21,000,000",
            lambda v: v >= 21e6,
            "{:,.0f}",
        ),
        _check(
            "RSS after /ready",
            footprint.rss_after_ready_mb if footprint else None,
            "< 150 MB",
            lambda v: v < 150,
            "{:.1f} MB",
        ),
        _check(
            "RSS after a 10,000-row batch",
            footprint.rss_after_batch_mb if footprint else None,
            "< 200 MB",
            lambda v: v < 200,
            "{:.1f} MB",
        ),
        _check(
            "process start to /ready",
            footprint.startup_seconds if footprint else None,
            "< 2 s",
            lambda v: v < 2,
            "{:.2f} s",
        ),
    ]


BATCH_TARGETS = {
    "JSON 10,000": 500_000,
    f"CSV 10,000 {CSV_BOTH_WAYS}": 700_000,
    "Arrow 100,000": 3_000_000,
}
"""Rows per second each batch case should reach (issue 19), each format both ways: on a
2-core machine, judged on the pod that uses both cores, and shown for one worker too."""


def _keyed_targets(report: Report) -> list[Target]:
    """The keyed live call (issue 14): its share of the ceiling, its p99 and its errors."""
    checks = []
    for store, (name, share) in KEYED_CASES.items():
        case = report.case(name)
        wrk = case.wrk if case else None
        checks += [
            _check(
                f"keyed /segment on {store} vs ceiling",
                report.of_ceiling(name),
                f">= {share}x",
                functools.partial(operator.le, share),
                "{:.2f}x",
            ),
            _check(
                f"keyed /segment p99 on {store}",
                wrk.latency_p99_us / 1000 if wrk else None,
                "<= 20 ms",
                lambda v: v <= 20,
                "{:.2f} ms",
            ),
            _check(
                f"keyed /segment errors on {store}",
                wrk.errors if wrk else None,
                "0",
                lambda v: v == 0,
                "{:.0f}",
            ),
        ]
    return checks


def _shadowed_share(report: Report) -> float | None:
    """``/segment`` with a second version shadowing every request, over without (issue 16)."""
    shadowed, alone = report.case(SHADOWED), report.case(OURS_SINGLE)
    rate = shadowed.requests_per_second if shadowed else None
    alone_rate = alone.requests_per_second if alone else None
    return rate / alone_rate if rate and alone_rate else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
