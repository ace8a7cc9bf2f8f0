"""Starting a server as its own process, waiting until it answers, and stopping it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

UVICORN_SETTINGS: tuple[str, ...] = (
    "--workers",
    "1",
    "--no-access-log",
    "--http",
    "httptools",
    "--loop",
    "uvloop",
    "--log-level",
    "warning",
)
"""The same uvicorn settings for every server we start with uvicorn's command line."""

UVICORN_ENVIRONMENT: dict[str, str] = {
    "UVICORN_ACCESS_LOG": "false",
    "UVICORN_HTTP": "httptools",
    "UVICORN_LOOP": "uvloop",
}
"""The same settings for a uvicorn that another command starts (``mlflow models serve``)."""


LIMIT_SETTINGS: tuple[str, ...] = (
    "API_KEYS",
    "ADMIN_API_KEY",
    "RATE_LIMIT_PER_MINUTE",
    "MAX_BODY_BYTES",
    "MAX_BATCH_SIZE",
)
"""The service's access and limit settings: a caller's shell must not pass them on to a
server under measurement (each harness sets what it measures)."""


OURS_LIMITS: dict[str, str] = {"MAX_BATCH_SIZE": "100000"}
"""Our service's limits under measurement: the Arrow case sends 100,000 customers a batch,
ten times the default MAX_BATCH_SIZE (its 4 MB body is within MAX_BODY_BYTES' default)."""


class ServerFailed(RuntimeError):
    """A server exited or did not become ready in time."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server and how to tell that it is ready."""

    name: str
    command: Sequence[str]
    ready_path: str
    port: int
    environment: Mapping[str, str] = field(default_factory=dict)
    """The server's whole environment (nothing is inherited)."""
    ready_timeout_seconds: float = 60.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def uvicorn_command(python: Path, app: str, port: int) -> list[str]:
    return [
        str(python),
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *UVICORN_SETTINGS,
    ]


def service_command(python: Path, port: int, *, workers: int, log_level: str) -> list[str]:
    """The service as deployed: ``python -m service`` and its workers."""
    command = [str(python), "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--workers", str(workers), "--log-level", log_level]


def resident_memory_mb(pid: int) -> float | None:
    """VmRSS of a process in MB (10^6 bytes), or None when it cannot be read."""
    return _status_field_mb(pid, "VmRSS")


def peak_resident_memory_mb(pid: int) -> float | None:
    """VmHWM (the highest VmRSS so far) of a process in MB."""
    return _status_field_mb(pid, "VmHWM")


def _status_field_mb(pid: int, name: str) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def process_group_cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by every live process of a process group."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces; the fields after its closing ")" do not.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class RunningServer:
    """A server process started in its own session, so that stopping it stops its children."""

    def __init__(self, spec: ServerSpec, *, cwd: Path, log_file: Path) -> None:
        self.spec = spec
        self._cwd = cwd
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> float:
        """Start the process and wait for its readiness path; return seconds until ready."""
        with self._log_file.open("ab") as log:
            started = time.perf_counter()
            self._process = subprocess.Popen(
                list(self.spec.command),
                cwd=self._cwd,
                env=dict(self.spec.environment),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready(started)
        self.startup_seconds = time.perf_counter() - started
        return self.startup_seconds

    def _wait_until_ready(self, started: float) -> None:
        url = self.spec.base_url + self.spec.ready_path
        deadline = started + self.spec.ready_timeout_seconds
        while time.perf_counter() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.spec.name} exited with {self._process.returncode} before it was "
                    f"ready: {self.log_tail()}"
                )
            if _answers_ok(url):
                return
            time.sleep(0.01)
        self.stop()
        raise ServerFailed(
            f"{self.spec.name} did not answer 200 on {self.spec.ready_path} within "
            f"{self.spec.ready_timeout_seconds:g} s: {self.log_tail()}"
        )

    def wait_until_idle(
        self, *, window: float = 0.5, busy_share: float = 0.1, timeout: float = 300.0
    ) -> float:
        """Wait until the server uses under ``busy_share`` of a core; return seconds waited.

        A load generator that stops leaves requests in flight that the server still works
        through (a 10,000-row batch at 16 connections is seconds of work); the next
        measurement must not start on a server that is still busy with them.
        """
        started = time.perf_counter()
        used = process_group_cpu_seconds(self.pid)
        while time.perf_counter() - started < timeout:
            time.sleep(window)
            now = process_group_cpu_seconds(self.pid)
            if now - used < busy_share * window:
                break
            used = now
        return time.perf_counter() - started

    def log_tail(self, lines: int = 2) -> str:
        """The last lines of the server's output that name an error (else its last lines)."""
        try:
            text = self._log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in kept if "error" in line.lower()]
        return " / ".join((errors or kept)[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sent, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sent)
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored %s", self.spec.name, sent.name)
        # Children the leader left behind (mlflow's uvicorn) are still in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


BENCH_API_KEY = "bench-key"
"""The client key every request carries (servers without keys ignore the header)."""
BENCH_ADMIN_KEY = "bench-admin-key"
"""The admin key of the server that shadows (only it has one)."""


def post(
    url: str,
    body: bytes,
    content_type: str,
    *,
    timeout: float = 60.0,
    key: str = BENCH_API_KEY,
    accept: str | None = None,
) -> tuple[int, bytes]:
    """One POST; the status and body, also for 4xx and 5xx answers."""
    headers = {"Content-Type": content_type, "X-API-Key": key}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start_shadow(base_url: str, version: str) -> str | None:
    """Have the server shadow every request with ``version``; why not, if it would not."""
    body = f'{{"version": "{version}"}}'.encode()
    status, answer = post(f"{base_url}/admin/shadow", body, "application/json", key=BENCH_ADMIN_KEY)
    return None if status == 200 else f"the shadow did not start: {status} {answer[:200]!r}"
