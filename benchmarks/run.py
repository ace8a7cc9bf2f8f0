"""`make bench`: each server in turn under wrk, the in-process figures, one table (issue 7).

    .venv/bin/python -m benchmarks.run [--duration 15] [--warmup 5] [--only ours,naive]
                                       [--models-dir DIR] [--skip-inprocess]

Exits 0 whatever the figures (a missed target is reported, not failed); 2 when wrk is
unavailable or no model could be trained, 1 when a server could not start.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import inprocess
from benchmarks.measurement import REPO_ROOT, BenchmarkRun
from benchmarks.plan import SERVERS
from benchmarks.report import Report
from benchmarks.request_bodies import Customer, find_customer_data, read_customers
from benchmarks.table import render_text, write_results
from benchmarks.wrk import LoadSettings, WrkUnavailable, ensure_wrk, wrk_version
from segmentation.artifact import ArtifactError, read_latest

logger = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).parent / "results"
ISSUE_MIN_DURATION = 15.0


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--duration", type=float, default=ISSUE_MIN_DURATION, help="seconds per case"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured seconds before each case"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--only",
        action="append",
        metavar="SERVER[,SERVER]",
        help=f"run only these servers (of {', '.join(SERVERS)}); repeatable",
    )
    parser.add_argument("--models-dir", type=Path, help="use this trained models dir")
    parser.add_argument(
        "--skip-inprocess", action="store_true", help="no in-process scoring figures"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    arguments = parser.parse_args(argv)
    chosen = {
        name.strip() for item in arguments.only or [] for name in item.split(",") if name.strip()
    }
    unknown = chosen - set(SERVERS)
    if unknown:
        parser.error(f"--only {', '.join(sorted(unknown))}: the servers are {', '.join(SERVERS)}")
    arguments.servers = [server for server in SERVERS if not chosen or server in chosen]
    return arguments


def train_model(work_dir: Path) -> Path:
    """Train on the bundled export with the project's own command, into a temp models dir."""
    models_dir = work_dir / "models"
    print(f"training a model into {models_dir} ...", flush=True)
    completed = subprocess.run(
        [sys.executable, "-m", "training", "--models-dir", str(models_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"training failed ({completed.returncode}): {completed.stderr.strip()[-500:]}"
        )
    return models_dir


def describe_environment(wrk: str) -> dict[str, Any]:
    libraries = ("fastapi", "uvicorn", "pydantic", "scikit-learn", "numpy", "pandas", "orjson")
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    load = os.getloadavg()
    return {
        "machine": f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at start",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or "unknown",
        "wrk": wrk_version(wrk),
        **{name: metadata.version(name) for name in libraries},
    }


def run_inprocess(report: Report, models_dir: Path, customers: list[Customer]) -> None:
    print("in-process scoring figures ...", flush=True)
    scorer = inprocess.serving_scorer(models_dir)
    singles = [np.array([customer.features], dtype=np.float64) for customer in customers]
    report.scoring = inprocess.measure_scoring(scorer, singles)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    arguments = parse_arguments(argv)
    started = time.perf_counter()
    try:
        wrk = ensure_wrk()
    except WrkUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    load = LoadSettings(arguments.duration, arguments.threads, arguments.connections)
    report = Report(
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        settings={
            "duration_seconds": arguments.duration,
            "warmup_seconds": arguments.warmup,
            "threads": arguments.threads,
            "connections": arguments.connections,
            "wrk_timeout_seconds": load.timeout_seconds,
            "servers": arguments.servers,
        },
        environment=describe_environment(wrk),
    )
    with tempfile.TemporaryDirectory(prefix="segmentation-bench-") as temporary:
        work_dir = Path(temporary)
        try:
            models_dir = arguments.models_dir or train_model(work_dir)
            report.settings["model_version"] = read_latest(models_dir)
        except (RuntimeError, ArtifactError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        data = find_customer_data(REPO_ROOT)
        customers = read_customers(data)
        report.settings["customers"] = f"{len(customers)} real customers from {data}"
        if "ours" in arguments.servers and not arguments.skip_inprocess:
            run_inprocess(report, models_dir, customers)
        run = BenchmarkRun(
            wrk=wrk,
            load=load,
            warmup=arguments.warmup,
            work_dir=work_dir,
            models_dir=models_dir,
            customers=customers,
            report=report,
        )
        for server in arguments.servers:
            run.run_server(server)
    elapsed = time.perf_counter() - started
    report.settings["run_seconds"] = round(elapsed, 1)
    print("\n" + render_text(report))
    full_run = arguments.servers == list(SERVERS) and arguments.duration >= ISSUE_MIN_DURATION
    for path in write_results(report, arguments.results_dir, as_latest=full_run):
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    print(f"whole run: {elapsed / 60:.1f} min")
    return 1 if run.failed_servers else 0


if __name__ == "__main__":
    raise SystemExit(main())
