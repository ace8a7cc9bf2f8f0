"""`python -m service`: serve the API with uvicorn."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from types import FrameType

import uvicorn

from service.config import settings_for_command
from service.logging_setup import uvicorn_log_config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STATE_ENV = "STATE_DIR"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default=None, help="default: LOG_LEVEL, else info")
    arguments = parser.parse_args(argv)
    if arguments.log_level:
        os.environ["LOG_LEVEL"] = arguments.log_level  # the workers read it too
    log_level = settings_for_command().log_level.lower()  # fails fast on bad settings
    metrics_dir = _share_metrics_between_workers(arguments.workers)
    state_dir = _share_state_between_workers()
    signal.signal(signal.SIGTERM, _stopped_by_sigterm)
    try:
        uvicorn.run(
            "service.main:app",
            host=arguments.host,
            port=arguments.port,
            workers=arguments.workers,
            log_level=log_level,
            log_config=uvicorn_log_config(log_level),
            access_log=False,  # the service writes its own access log, as JSON
            http="service.http_protocol:BoundedHttpToolsProtocol",
            timeout_graceful_shutdown=30,
        )
    finally:
        for made in (metrics_dir, state_dir):
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
    return 0


def _stopped_by_sigterm(signum: int, frame: FrameType | None) -> None:
    """Leave with status 0: SIGTERM is how orchestrators stop the service, not a failure.

    While it serves, uvicorn handles SIGTERM itself (stop accepting, finish the requests in
    flight, run the lifespan shutdown); then it puts back the handler it found, this one,
    and raises the signal again. Under the default handler the process would die of it
    (status 143), which supervisors report as a crash. Before uvicorn serves, this ends
    start-up the same way. With several workers uvicorn's supervisor installs its own
    handlers in this process and returns normally once its workers have finished.
    """
    raise SystemExit(0)


def _share_metrics_between_workers(workers: int) -> str | None:
    """With several workers, give prometheus_client a fresh directory for their files.

    Returns the directory when this process made it (and must remove it). One that is
    already set is used as it is: whoever set it must empty it between runs.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        os.makedirs(configured, exist_ok=True)
        return None
    if workers <= 1:
        return None
    created = tempfile.mkdtemp(prefix="segmentation-metrics-")
    os.environ[MULTIPROC_ENV] = created  # before any worker imports prometheus_client
    return created


def _share_state_between_workers() -> str | None:
    """A fresh directory where the workers share what they observed (the drift window).

    Fresh per start, so nothing observed survives a restart. Returns it when made here.
    """
    if os.environ.get(STATE_ENV):
        return None
    created = tempfile.mkdtemp(prefix="segmentation-state-")
    os.environ[STATE_ENV] = created
    return created


if __name__ == "__main__":
    raise SystemExit(main())
