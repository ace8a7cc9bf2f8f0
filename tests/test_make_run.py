"""`make run` on a checkout with no model: trains on the bundled sample, then serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STARTUP_LIMIT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_make_run_trains_then_serves_health_and_ready(tmp_path: Path) -> None:
    port = free_port()
    models_dir = tmp_path / "models"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"MODELS_DIR={models_dir}", f"PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        health = ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert health is not None and health.status_code == 200
        assert ready is not None and ready.status_code == 200
        assert (models_dir / "latest").read_text().strip() == ready.json()["model_version"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
