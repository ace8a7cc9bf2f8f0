"""The service as a real process (``python -m service``), for what only a process can show:
several workers, signals, shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_count(log: Path, message: str) -> int:
    """How many times the service logged exactly ``message`` (its logs are JSON lines)."""
    return log.read_text(errors="replace").count(f'"message":"{message}"')


def wait_for_log(process: subprocess.Popen[bytes], log: Path, message: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while log_count(log, message) < count:
        assert process.poll() is None, f"the service exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {count} x {message!r}: {log.read_text()[-2000:]}"
        time.sleep(0.05)


@contextmanager
def service_process(
    models_dir: Path,
    tmp_path: Path,
    workers: int,
    *,
    database_url: str | None = None,
    environment: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``python -m service`` on a free port, its store an SQLite file in ``tmp_path`` unless
    ``database_url`` is given, with ``environment`` on top of the test's own (less the keys);
    yields (process, port, log); killed if still running after."""
    port = free_port()
    log = tmp_path / "service.log"
    unset = {"API_KEYS", "ADMIN_API_KEY", "MODEL_SIGNING_KEY", "PROMETHEUS_MULTIPROC_DIR"}
    settings = {
        **{name: value for name, value in os.environ.items() if name not in unset},
        "MODELS_DIR": str(models_dir),
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'store.db'}",
        "LOG_LEVEL": "INFO",
        **(environment or {}),
    }
    command = [sys.executable, "-m", "service", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as output:
        # A session of its own, so that the workers can be stopped with it (killing the
        # supervisor alone would leave them running, orphaned, for the rest of the suite).
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=settings,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, port, log
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a service and its workers: SIGTERM (a graceful stop), then SIGKILL to whatever
    of its process group is still there."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
