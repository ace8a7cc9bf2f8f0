"""The load generator: wrk (installed from Debian's packages when missing) and its summary."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

LUA_SCRIPT = Path(__file__).parent / "lua" / "post_bodies.lua"
_RESULT_PREFIX = "WRK_RESULT "


class WrkUnavailable(RuntimeError):
    """wrk is not installed and could not be installed."""


@dataclass(frozen=True)
class LoadSettings:
    """How hard and how long wrk drives a server."""

    duration_seconds: float
    threads: int = 2
    connections: int = 16
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class WrkResult:
    """wrk's own summary of one run (latencies in microseconds)."""

    requests: int
    duration_us: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    timeouts: int
    latency_mean_us: float
    latency_max_us: int
    latency_p50_us: int
    latency_p90_us: int
    latency_p99_us: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        """Error answers (wrk counts status >= 400) plus connect, read, write and timeout errors."""
        sockets = self.connect_errors + self.read_errors + self.write_errors + self.timeouts
        return self.status_errors + sockets


def ensure_wrk() -> str:
    """The path to wrk, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    logger.info("wrk is missing: installing it with apt-get")
    print("wrk is not installed: apt-get update && apt-get install -y wrk ...", flush=True)
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        try:
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise WrkUnavailable(f"wrk is not installed and {command[0]} failed: {error}") from None
        if completed.returncode != 0:
            tail = completed.stderr.strip().splitlines()[-3:]
            raise WrkUnavailable(
                f"wrk is not installed and `{' '.join(command)}` exited with "
                f"{completed.returncode}: {' / '.join(tail)} (install wrk by hand and rerun)"
            )
    found = shutil.which("wrk")
    if not found:
        raise WrkUnavailable("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    completed = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (completed.stdout + completed.stderr).strip().splitlines()[0]


def wrk_command(
    wrk: str, load: LoadSettings, script: Path, url: str, *script_arguments: str
) -> list[str]:
    """wrk's command line for ``load`` with a Lua ``script`` and the arguments it reads."""
    return [
        wrk,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{load.duration_seconds:g}s",
        f"--timeout={load.timeout_seconds:g}s",
        "-s",
        str(script),
        url,
        "--",
        *script_arguments,
    ]


def run_logged(
    command: list[str], load: LoadSettings, log_file: Path, *, shown: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run wrk to its end (never longer than the load allows) and append what it printed
    to ``log_file``, under ``shown`` (the command line, unless it holds a secret)."""
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=load.duration_seconds + load.timeout_seconds + 60,
    )
    with log_file.open("a") as log:
        log.write(f"$ {shown or ' '.join(command)}\n{completed.stdout}{completed.stderr}\n")
    return completed


def run_wrk(
    wrk: str,
    *,
    url: str,
    bodies_file: Path,
    content_type: str,
    load: LoadSettings,
    log_file: Path,
    accept: str | None = None,
) -> WrkResult:
    """Drive ``url`` with POSTs of the bodies in ``bodies_file`` (with an ``Accept`` header
    when given) and return wrk's summary."""
    asked = (accept,) if accept else ()
    command = wrk_command(wrk, load, LUA_SCRIPT, url, str(bodies_file), content_type, *asked)
    completed = run_logged(command, load, log_file)
    for line in completed.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            return WrkResult(**json.loads(line[len(_RESULT_PREFIX) :]))
    raise RuntimeError(
        f"wrk exited with {completed.returncode} without a summary: "
        f"{(completed.stderr or completed.stdout).strip()[-300:]}"
    )
