"""wrk with a client key and a tally of the answers: by HTTP status and by model version."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.wrk import LoadSettings, WrkResult, run_logged, wrk_command

LUA_SCRIPT = Path(__file__).parent / "lua" / "post_tallied.lua"
_RESULT_PREFIX = "WRK_RESULT "
_TALLY_PREFIX = "WRK_TALLY "


@dataclass(frozen=True)
class TalliedRun:
    """wrk's summary, plus every answer counted by status and by the version it names."""

    wrk: WrkResult
    statuses: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not status.startswith("2"))

    @property
    def socket_errors(self) -> int:
        wrk = self.wrk
        return wrk.connect_errors + wrk.read_errors + wrk.write_errors + wrk.timeouts

    @property
    def errors(self) -> int:
        """Answers that were not 2xx plus connect, read, write and timeout errors."""
        return self.non_2xx + self.socket_errors

    def figures(self) -> dict[str, Any]:
        """The run's figures for the results file (latencies in milliseconds)."""
        wrk = self.wrk
        return {
            "requests": wrk.requests,
            "seconds": round(wrk.duration_us / 1e6, 2),
            "requests_per_second": round(wrk.requests_per_second, 1),
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "p50_ms": round(wrk.latency_p50_us / 1000, 2),
            "p90_ms": round(wrk.latency_p90_us / 1000, 2),
            "p99_ms": round(wrk.latency_p99_us / 1000, 2),
            "max_ms": round(wrk.latency_max_us / 1000, 2),
            "statuses": self.statuses,
            "versions": self.versions,
        }


def run_tallied_wrk(
    wrk: str,
    *,
    url: str,
    bodies_file: Path,
    api_key: str,
    load: LoadSettings,
    log_file: Path,
    content_type: str = "application/json",
) -> TalliedRun:
    """Drive ``url`` with POSTs of the bodies in ``bodies_file``, sending ``X-API-Key``."""
    command = wrk_command(wrk, load, LUA_SCRIPT, url, str(bodies_file), content_type, api_key)
    shown = " ".join(command[:-1]) + " <api key>"
    completed = run_logged(command, load, log_file, shown=shown)
    summary: WrkResult | None = None
    tally: dict[str, dict[str, int]] = {}
    for line in completed.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            summary = WrkResult(**json.loads(line[len(_RESULT_PREFIX) :]))
        elif line.startswith(_TALLY_PREFIX):
            tally = json.loads(line[len(_TALLY_PREFIX) :])
    if summary is None:
        raise RuntimeError(
            f"wrk exited with {completed.returncode} without a summary: "
            f"{(completed.stderr or completed.stdout).strip()[-300:]}"
        )
    return TalliedRun(summary, tally.get("statuses", {}), tally.get("versions", {}))
