"""Load and soak figures for the service in production configuration (issue 9).

    .venv/bin/python -m benchmarks.load [--duration 30] [--connections 16] [--workers 2]
                                        [--reload-every 1] [--models-dir DIR]
    .venv/bin/python -m benchmarks.load --soak [--soak-seconds 600] [--sample-every 10]
    add --keyed [--database postgresql] for the CRM's call: known customers, recorded


Trains two model versions into a temp dir (or takes the `latest` and newest other version
of --models-dir, restoring `latest` afterwards), starts ``python -m service --workers 2``
with client keys, an admin key and metrics on, and drives ``POST /segment`` with wrk at a
fixed concurrency for a fixed time: once steady, once while the served version is switched
back and forth (admin reloads and repointing `latest` on disk, alternately). Prints the
requests served, errors and p50/p99 latency of each run and the ratio of the p99s, and
writes ``benchmarks/results/load.json``. With --soak: one long run instead, sampling each
worker's memory and the throughput, and ``soak.json`` (``-keyed-<database>`` added with --keyed).

Exits 0 whatever the figures (a missed target is reported, not failed); 1 when the service
could not start; 2 when wrk is unavailable or there are no two model versions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.load_setup import (
    REPO_ROOT,
    Keys,
    ModelVersions,
    existing_versions,
    new_keys,
    service_spec,
    train_versions,
    wait_for_workers,
    write_single_bodies,
)
from benchmarks.postgres import PostgresUnavailable, scratch_database
from benchmarks.servers import RunningServer, ServerFailed
from benchmarks.service_probes import (
    SeriesKey,
    active_versions,
    metric_series,
    total,
    worker_pids,
)
from benchmarks.soak import SoakPlan, measure_soak
from benchmarks.tallied_wrk import TalliedRun, run_tallied_wrk
from benchmarks.version_flipper import VersionFlipper
from benchmarks.wrk import LoadSettings, WrkUnavailable, ensure_wrk, wrk_version
from segmentation.artifact import ArtifactError, point_latest, read_latest

RESULTS_DIR = Path(__file__).parent / "results"
MAX_P99_RATIO = 2.0
RELOAD_OUTCOMES = ("success", "refused", "not_found", "error")


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (concurrency)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--workers", type=int, default=2, help="python -m service --workers")
    parser.add_argument(
        "--reload-every", type=float, default=1.0, help="seconds between version switches"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=0.5,
        help="the workers' MODEL_POLL_SECONDS (below --reload-every, so pollers see every switch)",
    )
    parser.add_argument("--models-dir", type=Path, help="use `latest` and the newest other version")
    parser.add_argument("--log-level", default="info", help="the service's LOG_LEVEL")
    parser.add_argument(
        "--keyed",
        action="store_true",
        help="send each customer's key, as a CRM does: every answer is recorded in the store",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the store: an SQLite file, or a scratch database on BENCH_POSTGRES_URL's server",
    )
    parser.add_argument("--soak", action="store_true", help="one long run: memory and throughput")
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--sample-every", type=float, default=10.0, help="soak sampling, seconds")
    parser.add_argument(
        "--soak-baseline", type=float, default=60.0, help="memory growth is measured from here"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        wrk = ensure_wrk()
    except WrkUnavailable as error:
        print(f"cannot run: {error}")
        return 2
    with tempfile.TemporaryDirectory(prefix="segmentation-load-") as temporary:
        work_dir = Path(temporary)
        try:
            count = 1 if arguments.soak else 2
            versions = (
                existing_versions(arguments.models_dir, need_second=count == 2)
                if arguments.models_dir
                else train_versions(work_dir / "models", count)
            )
        except (ArtifactError, OSError, ValueError) as error:
            print(f"cannot run: no two model versions: {error}")
            return 2
        try:
            with contextlib.ExitStack() as stack:
                database_url = None
                if arguments.database == "postgresql":
                    database_url = stack.enter_context(scratch_database("segmentation_load"))
                return _run(arguments, wrk, work_dir, versions, database_url)
        except PostgresUnavailable as error:
            print(f"cannot run: {error}")
            return 2
        finally:
            if versions.latest_before is not None:
                point_latest(versions.models_dir, versions.latest_before)


def _run(
    arguments: argparse.Namespace,
    wrk: str,
    work_dir: Path,
    versions: ModelVersions,
    database_url: str | None,
) -> int:
    bodies_file, source, count = write_single_bodies(work_dir, keyed=arguments.keyed)
    keys = new_keys()
    spec = service_spec(
        models_dir=versions.models_dir,
        work_dir=work_dir,
        workers=arguments.workers,
        keys=keys,
        log_level=arguments.log_level,
        poll_seconds=arguments.poll_seconds,
        database_url=database_url,
    )
    print(
        f"\nservice: python -m service --workers {arguments.workers} on {spec.base_url}, "
        f"API_KEYS and ADMIN_API_KEY set, metrics on, LOG_LEVEL={arguments.log_level.upper()}, "
        f"MODEL_POLL_SECONDS={arguments.poll_seconds:g}, store on {arguments.database}\n"
        f"bodies: the {count} real customers of {source}, {_bodies(arguments)}\n"
        f"load: wrk -t{arguments.threads} -c{arguments.connections} on POST /segment",
        flush=True,
    )
    server = RunningServer(spec, cwd=REPO_ROOT, log_file=work_dir / "service.log")
    try:
        server.start()
        pids = wait_for_workers(server, arguments.workers)
    except ServerFailed as error:
        print(f"the service did not start: {error}")
        server.stop()
        return 1
    print(f"ready: workers {pids}", flush=True)
    try:
        warmup = _load_settings(arguments, arguments.warmup)
        _drive(wrk, server, bodies_file, keys, warmup, work_dir)
        if arguments.soak:
            document = measure_soak(
                SoakPlan(
                    server=server,
                    wrk=wrk,
                    bodies_file=bodies_file,
                    api_key=keys.client,
                    load=_load_settings(arguments, arguments.soak_seconds),
                    sample_every=arguments.sample_every,
                    baseline_seconds=min(arguments.soak_baseline, arguments.soak_seconds / 2),
                    work_dir=work_dir,
                )
            )
        else:
            document = measure_load(arguments, wrk, server, bodies_file, keys, versions, work_dir)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"the run failed: {error} (the service's log: {server.log_tail(3)})")
        return 1
    finally:
        server.stop()
    document = {**_preamble(arguments, wrk, source, versions), **document}
    variant = f"-keyed-{arguments.database}" if arguments.keyed else ""
    name = f"{'soak' if arguments.soak else 'load'}{variant}.json"
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    path = arguments.results_dir / name
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    _print_targets(document["targets"])
    print(f"\nwritten: {path}")
    return 0


def _bodies(arguments: argparse.Namespace) -> str:
    if arguments.keyed:
        return "each WITH its customer_key: every answer is recorded in the store"
    return "WITHOUT customer_key: prospects, nothing is written to the store"


def _load_settings(arguments: argparse.Namespace, seconds: float) -> LoadSettings:
    return LoadSettings(seconds, threads=arguments.threads, connections=arguments.connections)


def _drive(
    wrk: str,
    server: RunningServer,
    bodies_file: Path,
    keys: Keys,
    load: LoadSettings,
    work_dir: Path,
    *,
    settle: bool = True,
) -> TalliedRun:
    if settle:
        server.wait_until_idle()  # requests left in flight by the last run are done
    return run_tallied_wrk(
        wrk,
        url=server.spec.base_url + "/segment",
        bodies_file=bodies_file,
        api_key=keys.client,
        load=load,
        log_file=work_dir / "wrk.log",
    )


def measure_load(
    arguments: argparse.Namespace,
    wrk: str,
    server: RunningServer,
    bodies_file: Path,
    keys: Keys,
    versions: ModelVersions,
    work_dir: Path,
) -> dict[str, Any]:
    """The steady run, then the run with reloads; their figures and the targets."""
    load = _load_settings(arguments, arguments.duration)
    base = server.spec.base_url
    steady = _drive(wrk, server, bodies_file, keys, load, work_dir)
    _print_run("steady", steady, header=True)
    pids_before = worker_pids(server.pid)
    server.wait_until_idle()
    before = metric_series(base)
    assert versions.second is not None, "the reload run needs two versions"
    flipper = VersionFlipper(
        base_url=base,
        admin_key=keys.admin,
        models_dir=versions.models_dir,
        versions=(versions.first, versions.second),
        every=arguments.reload_every,
    )
    with flipper:
        reloads = _drive(wrk, server, bodies_file, keys, load, work_dir, settle=False)
    _print_run("reloads", reloads)
    converged = _seconds_until_converged(server, read_latest(versions.models_dir))
    after = metric_series(base)
    ratio = reloads.wrk.latency_p99_us / max(steady.wrk.latency_p99_us, 1)
    switches = flipper.summary()
    reload_counts = _reload_counts(before, after)
    seen = set(reloads.versions)
    both = {versions.first, versions.second} <= seen
    _print_reload_facts(ratio, reloads, switches, reload_counts, converged)
    return {
        "runs": {"steady": steady.figures(), "reloads": reloads.figures()},
        "p99_ratio": round(ratio, 2),
        "switches": switches,
        "reloads_counted_by_metrics": reload_counts,
        "workers_follow_latest_seconds": converged,
        "workers": {"before": pids_before, "after": worker_pids(server.pid)},
        "targets": {
            "zero errors, steady": steady.errors == 0,
            "zero errors, with reloads": reloads.errors == 0,
            f"p99 with reloads <= {MAX_P99_RATIO:g} x steady p99": ratio <= MAX_P99_RATIO,
            "answers came from both versions": both,
            "every switch succeeded": switches["failed"] == 0,
            "every worker follows latest afterwards": converged is not None,
            "no worker restarted": pids_before == worker_pids(server.pid),
        },
    }


def _reload_counts(
    before: dict[SeriesKey, float], after: dict[SeriesKey, float]
) -> dict[str, dict[str, int]]:
    """Reload attempts during the run, by trigger and outcome, as the service counted them."""
    name = "segmentation_model_reloads_total"
    return {
        trigger: {
            outcome: int(
                total(after, name, trigger=trigger, outcome=outcome)
                - total(before, name, trigger=trigger, outcome=outcome)
            )
            for outcome in RELOAD_OUTCOMES
        }
        for trigger in ("admin", "watcher")
    }


def _seconds_until_converged(
    server: RunningServer, version: str, timeout: float = 30.0
) -> float | None:
    """Seconds until every worker reports serving ``version``; None if they do not in time."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pids = {str(pid) for pid in worker_pids(server.pid)}
        served = active_versions(metric_series(server.spec.base_url))
        workers = {pid: v for pid, v in served.items() if pid in pids} or served
        if workers and set(workers.values()) == {version}:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def _print_run(name: str, run: TalliedRun, *, header: bool = False) -> None:
    figures = run.figures()
    if header:
        print(
            f"\n{'run':<10}{'requests':>10}{'req/s':>10}{'errors':>8}"
            f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        )
    print(
        f"{name:<10}{figures['requests']:>10}{figures['requests_per_second']:>10.1f}"
        f"{figures['errors']:>8}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
        f"{figures['max_ms']:>9.2f}",
        flush=True,
    )


def _print_reload_facts(
    ratio: float,
    reloads: TalliedRun,
    switches: dict[str, Any],
    counts: dict[str, dict[str, int]],
    converged: float | None,
) -> None:
    print(f"\np99 with reloads / steady p99: {ratio:.2f} (target <= {MAX_P99_RATIO:g})")
    answered = ", ".join(f"{version}: {n}" for version, n in sorted(reloads.versions.items()))
    print(f"answers by model_version during the reloads: {answered}")
    print(
        f"switches: {switches['flips']} ({switches['admin_reloads']} admin reloads, "
        f"{switches['latest_repoints']} repoints of latest), {switches['failed']} failed; "
        f"admin reload answered in {switches['admin_reload_ms_median']} ms median, "
        f"{switches['admin_reload_ms_max']} ms max"
    )
    for trigger, outcomes in counts.items():
        shown = ", ".join(f"{outcome} {n}" for outcome, n in outcomes.items())
        print(f"reloads counted by /metrics, {trigger}: {shown}")
    followed = f"within {converged} s" if converged is not None else "NOT within 30 s"
    print(f"every worker served the final `latest` {followed} of the last switch")


def _print_targets(targets: dict[str, bool]) -> None:
    print("\ntargets:")
    for name, met in targets.items():
        print(f"  {'pass' if met else 'MISS'}  {name}")


def _preamble(
    arguments: argparse.Namespace, wrk: str, source: Path, versions: ModelVersions
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "wrk": wrk_version(wrk),
        },
        "settings": {
            "workers": arguments.workers,
            "connections": arguments.connections,
            "threads": arguments.threads,
            "seconds": arguments.soak_seconds if arguments.soak else arguments.duration,
            "warmup_seconds": arguments.warmup,
            "reload_every_seconds": None if arguments.soak else arguments.reload_every,
            "log_level": arguments.log_level.upper(),
            "model_poll_seconds": arguments.poll_seconds,
            "route": "POST /segment",
            "bodies": f"the real customers of {source.name}, {_bodies(arguments)}",
            "store": arguments.database,
            "production_configuration": "API_KEYS and ADMIN_API_KEY set, metrics on",
            "versions": [v for v in (versions.first, versions.second) if v],
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
