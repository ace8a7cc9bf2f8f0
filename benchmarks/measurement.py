"""Running each server in turn and measuring its cases under wrk."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks import inprocess
from benchmarks.mlflow_env import (
    BenchEnvironment,
    MlflowUnavailable,
    mlflow_server_spec,
    prepare_bench_environment,
    save_mlflow_model,
)
from benchmarks.plan import FOOTPRINT_BATCH_ROWS, JSON, Case, build_cases, check_answer, first_body
from benchmarks.postgres import PostgresUnavailable, scratch_database
from benchmarks.report import CaseResult, Report
from benchmarks.request_bodies import Customer
from benchmarks.servers import (
    BENCH_ADMIN_KEY,
    BENCH_API_KEY,
    LIMIT_SETTINGS,
    OURS_LIMITS,
    RunningServer,
    ServerFailed,
    ServerSpec,
    free_port,
    post,
    service_command,
    start_shadow,
    uvicorn_command,
)
from benchmarks.wrk import LoadSettings, run_wrk
from segmentation.artifact import read_latest, read_pipeline_bytes
from segmentation.lifecycle import published_versions

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent

POD_WORKERS = 2
"""A pod's workers on its two cores (README, deployment)."""

_UVICORN_APPS = {
    "ours": "service.main:app",
    "ours-postgres": "service.main:app",
    "ours-shadow": "service.main:app",
    "naive": "benchmarks.naive_server:app",
    "ceiling": "benchmarks.ceiling_server:app",
}


class BenchmarkRun:
    """One run: the servers in turn, their cases, and what could not be measured."""

    def __init__(
        self,
        *,
        wrk: str,
        load: LoadSettings,
        warmup: float,
        work_dir: Path,
        models_dir: Path,
        customers: list[Customer],
        report: Report,
    ) -> None:
        self.wrk = wrk
        self.load = load
        self.warmup = LoadSettings(warmup, load.threads, load.connections, load.timeout_seconds)
        self.work_dir = work_dir
        self.models_dir = models_dir
        self.customers = customers
        self.report = report
        self.cases = build_cases(customers, work_dir)
        self.failed_servers: list[str] = []
        self._shadow_version = ""
        self.server_notes: dict[str, str] = {}
        self.environment = {
            **{k: v for k, v in os.environ.items() if k not in LIMIT_SETTINGS},
            "MODELS_DIR": str(models_dir),
            # A store of our own, so the run never writes into the checkout.
            "DATABASE_URL": f"sqlite:///{work_dir / 'store.db'}",
        }

    def run_server(self, server: str) -> None:
        if server != "ours-postgres":
            self._run_server(server)
            return
        try:
            with scratch_database() as database_url:
                self._run_server(server, database_url=database_url)
        except PostgresUnavailable as error:
            self._not_run(server, str(error)[:300])

    def _run_server(self, server: str, *, database_url: str | None = None) -> None:
        spec = self._spec(server, database_url)
        if isinstance(spec, str):
            self._not_run(server, spec)
            return
        print(f"\n[{server}] starting: {' '.join(spec.command[:4])} ...", flush=True)
        running = RunningServer(spec, cwd=REPO_ROOT, log_file=self.work_dir / f"{server}.log")
        try:
            startup = running.start()
        except ServerFailed as error:
            print(f"[{server}] FAILED to start: {error}", flush=True)
            self.failed_servers.append(server)
            self._not_run(server, f"server did not start: {error}"[:300])
            return
        facts = self.report.servers.setdefault(server, {})
        facts["startup_seconds"] = round(startup, 3)
        facts["summary"] = f"ready in {startup:.2f} s" + facts.get("summary", "")
        try:
            if server == "ours":
                self._measure_footprint(running)
            if server == "ours-shadow":
                problem = start_shadow(running.spec.base_url, self._shadow_version)
                if problem:
                    self._not_run(server, problem)
                    return
            for case in self.cases[server]:
                self.report.cases.append(self._measure(case, running))
            if server == "ours":
                facts["peak_rss_mb"] = inprocess.peak_memory_mb(running)
        finally:
            running.stop()

    def _spec(self, server: str, database_url: str | None) -> ServerSpec | str:
        port = free_port()
        if server != "mlflow":
            command = (
                service_command(
                    Path(sys.executable), port, workers=POD_WORKERS, log_level="warning"
                )
                if server == "ours-pod"
                else uvicorn_command(Path(sys.executable), _UVICORN_APPS[server], port)
            )
            environment = dict(self.environment)
            if server.startswith("ours"):
                # Production configuration: client keys checked (and metrics, always on).
                environment["API_KEYS"] = f"bench:{BENCH_API_KEY}"
                environment.update(OURS_LIMITS)
            if database_url:
                environment["DATABASE_URL"] = database_url
            if server == "ours-shadow":
                environment["ADMIN_API_KEY"] = BENCH_ADMIN_KEY
                environment["MODELS_DIR"] = str(self._shadow_models())
            return ServerSpec(server, command, "/ready", port, environment)
        bench = prepare_bench_environment(REPO_ROOT, log_file=self.work_dir / "bench-venv.log")
        if isinstance(bench, MlflowUnavailable):
            self.report.environment["mlflow"] = f"unavailable: {bench.reason}"
            return f"MLflow unavailable: {bench.reason}"
        self._describe_mlflow(bench)
        try:
            model_dir = save_mlflow_model(
                bench,
                pipeline_bytes=self._verified_pipeline_bytes(),
                customers=self.customers,
                work_dir=self.work_dir,
                log_file=self.work_dir / "mlflow-save.log",
            )
        except RuntimeError as error:
            self.failed_servers.append(server)
            return str(error)[:300]
        return mlflow_server_spec(bench, model_dir=model_dir, port=port, base=self.environment)

    def _shadow_models(self) -> Path:
        """A copy of the models with a second version (seed 1, a candidate) to shadow with."""
        models = self.work_dir / "shadow-models"
        if not models.exists():
            shutil.copytree(self.models_dir, models)
            command = [sys.executable, "-m", "training", "--models-dir", str(models)]
            subprocess.run([*command, "--seed", "1", "--quiet"], check=True, cwd=REPO_ROOT)
        active = read_latest(models)
        self._shadow_version = next(v for v in published_versions(models) if v != active)
        return models

    def _describe_mlflow(self, bench: BenchEnvironment) -> None:
        main_sklearn = metadata.version("scikit-learn")
        same = "same as" if bench.sklearn_matches else "DIFFERS from"
        self.report.environment["mlflow"] = bench.mlflow_version
        if not bench.sklearn_matches:
            self.server_notes["mlflow"] = (
                f"scikit-learn {bench.sklearn_version} in {bench.venv.name}/, "
                f"{main_sklearn} in .venv"
            )
        self.report.environment["mlflow_scikit_learn"] = bench.sklearn_version
        self.report.servers.setdefault("mlflow", {})["summary"] = (
            f", MLflow {bench.mlflow_version} in {bench.venv.name}/, scikit-learn "
            f"{bench.sklearn_version} ({same} .venv's {main_sklearn})"
        )

    def _verified_pipeline_bytes(self) -> bytes:
        signing_key = os.environ.get("MODEL_SIGNING_KEY")
        keys = (signing_key,) if signing_key else ()
        return read_pipeline_bytes(self.models_dir, read_latest(self.models_dir), signing_keys=keys)

    def _measure_footprint(self, running: RunningServer) -> None:
        batch = next(c for c in self.cases["ours"] if c.is_batch and c.rows == FOOTPRINT_BATCH_ROWS)
        self.report.footprint = inprocess.measure_footprint(
            running, batch_body=first_body(batch), batch_rows=batch.rows, content_type=JSON
        )

    def _measure(self, case: Case, running: RunningServer) -> CaseResult:
        """Check one answer, warm up, then measure; the server is idle before each wrk run."""
        result = CaseResult(case.name, case.server, case.rows, case.is_batch, self.load.connections)
        result.note = self.server_notes.get(case.server, "")
        url = running.spec.base_url + case.path
        running.wait_until_idle()
        answer = post(url, first_body(case), case.content_type, accept=case.accept)
        problem = check_answer(case, *answer)
        if problem:
            result.note = f"not measured: {problem}"[:300]
            _print_progress(result)
            return result
        try:
            for load in (self.warmup, self.load):
                result.drain_seconds = round(running.wait_until_idle(), 1)
                result.wrk = run_wrk(
                    self.wrk,
                    url=url,
                    bodies_file=case.bodies_file,
                    content_type=case.content_type,
                    accept=case.accept,
                    load=load,
                    log_file=self.work_dir / "wrk.log",
                )
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            result.wrk = None
            result.note = f"wrk failed: {error}"[:300]
        _print_progress(result)
        return result

    def _not_run(self, server: str, reason: str) -> None:
        for case in self.cases[server]:
            self.report.cases.append(
                CaseResult(case.name, server, case.rows, case.is_batch, 0, note=reason)
            )


def _print_progress(result: CaseResult) -> None:
    if result.wrk is None:
        print(f"  {result.case}: {result.note}", flush=True)
        return
    wrk = result.wrk
    rows = f", {result.rows_per_second:,.0f} rows/s" if result.rows_per_second else ""
    if result.drain_seconds >= 1:
        rows += f" (server busy {result.drain_seconds:.0f} s after the warm-up)"
    print(
        f"  {result.case}: {wrk.requests_per_second:,.1f} req/s, "
        f"p50 {wrk.latency_p50_us / 1000:.2f} ms, p99 {wrk.latency_p99_us / 1000:.2f} ms, "
        f"{wrk.errors} errors{rows}",
        flush=True,
    )
