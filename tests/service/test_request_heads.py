"""The served process bounds a request's head: its size and the time it takes to arrive."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from service.http_protocol import MAX_HEAD_BYTES
from tests.service.processes import service_process, wait_for_log

HEADER_TIMEOUT = 1.0


def exchange(port: int, parts: list[bytes], *, pause: float = 0.0) -> tuple[bytes, float]:
    """Send ``parts`` (pausing between them) and read until the server closes; the bytes
    read and how long after connecting the connection was closed."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        try:
            for part in parts:
                connection.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while sending: what it answered is still to be read
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, time.monotonic() - started


@pytest.mark.slow
def test_heads_too_large_or_too_slow_are_refused_and_others_served(
    models_dir: Path, tmp_path: Path
) -> None:
    environment = {"HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    with service_process(models_dir, tmp_path, 1, environment=environment) as (
        process,
        port,
        log,
    ):
        wait_for_log(process, log, "Application startup complete.", 1)
        line = b"GET /health HTTP/1.1\r\nHost: x\r\n"
        huge = b"X-API-Key: " + b"k" * (16 * MAX_HEAD_BYTES) + b"\r\n\r\n"
        too_large, _ = exchange(port, [line, huge])
        trickled, took = exchange(port, [line, *(b"X-%d: 1\r\n" % n for n in range(40))], pause=0.1)
        silent, silent_took = exchange(port, [])
        # A head just under the bound, and a large body after a small head, are served.
        near = b"X-Padding: " + b"p" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n"
        served, _ = exchange(
            port, [line + near.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")]
        )
        batch = httpx.post(
            f"http://127.0.0.1:{port}/segment/batch",
            json={
                "customers": [
                    {
                        "avg_credit_limit": 1000 + n,
                        "total_credit_cards": 2,
                        "total_visits_bank": 1,
                        "total_visits_online": 3,
                        "total_calls_made": 4,
                    }
                    for n in range(5_000)
                ]
            },
            timeout=60,
        )
    assert too_large.startswith(b"HTTP/1.1 431 ")
    assert trickled.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT <= took < HEADER_TIMEOUT + 2
    assert silent.startswith(b"HTTP/1.1 408 ") and silent_took < HEADER_TIMEOUT + 2
    assert served.startswith(b"HTTP/1.1 200 ")
    assert batch.status_code == 200 and len(batch.json()["results"]) == 5_000
