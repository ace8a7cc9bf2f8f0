"""What the load and soak runs stand on: two model versions, request bodies, the service running.

The service runs as in production: ``python -m service --workers N`` with client keys, an
admin key and metrics on, every worker polling `latest`.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.request_bodies import (
    find_customer_data,
    keyed_bodies,
    read_customers,
    single_bodies,
    write_bodies,
)
from benchmarks.servers import (
    LIMIT_SETTINGS,
    RunningServer,
    ServerFailed,
    ServerSpec,
    free_port,
    service_command,
)
from benchmarks.service_probes import active_versions, metric_series, worker_pids
from segmentation.artifact import MANIFEST_FILE, ArtifactError, point_latest, read_latest
from training.job import TrainingOptions, train

REPO_ROOT = Path(__file__).resolve().parent.parent

# Settings a caller's shell may have set that would change what is measured.
_NOT_INHERITED = (
    *LIMIT_SETTINGS,
    "PROMETHEUS_MULTIPROC_DIR",
    "MODELS_DIR",
    "DATABASE_URL",
    "LOG_LEVEL",
    "MODEL_POLL_SECONDS",
)


@dataclass(frozen=True)
class ModelVersions:
    """The models directory and the two versions the runs switch between."""

    models_dir: Path
    first: str
    second: str | None
    """None for the soak, which serves one version only."""
    latest_before: str | None
    """What `latest` named before the run (restored afterwards), when the dir was given."""


@dataclass(frozen=True)
class Keys:
    client: str
    admin: str


def train_versions(models_dir: Path, count: int) -> ModelVersions:
    """Train the bundled export ``count`` times (seeds 0, 1...); `latest` names the first."""
    signing_key = os.environ.get("MODEL_SIGNING_KEY") or None
    trained: list[str] = []
    for seed in range(count):
        print(f"training version {seed + 1} of {count} into {models_dir} ...", flush=True)
        options = TrainingOptions(
            models_dir=models_dir, seed=seed, n_bootstrap=2, signing_key=signing_key
        )
        if trained:
            time.sleep(1.1)  # version names carry the second they were trained in
        trained.append(train(options).version)
    point_latest(models_dir, trained[0])
    second = trained[1] if count > 1 else None
    return ModelVersions(models_dir, trained[0], second, latest_before=None)


def existing_versions(models_dir: Path, *, need_second: bool) -> ModelVersions:
    """`latest` and (when needed) the newest other version of a given models directory.

    Raises
    ------
    ArtifactError
        When `latest` is missing or a second version is needed and there is none.
    """
    latest = read_latest(models_dir)
    if not need_second:
        return ModelVersions(models_dir, latest, None, latest_before=latest)
    others = sorted(
        path.name
        for path in models_dir.iterdir()
        if path.is_dir() and path.name != latest and (path / MANIFEST_FILE).is_file()
    )
    if not others:
        raise ArtifactError(
            "model_missing",
            f"{models_dir} holds only {latest}: the reload run needs two versions "
            "(train another, or leave out --models-dir)",
        )
    return ModelVersions(models_dir, latest, others[-1], latest_before=latest)


def write_single_bodies(work_dir: Path, *, keyed: bool) -> tuple[Path, Path, int]:
    """One ``POST /segment`` body per real customer, with its ``customer_key`` (a known
    customer, recorded in the store) when ``keyed``, else without (a prospect).

    Returns the bodies file, the data it came from and the number of bodies.
    """
    source = find_customer_data(REPO_ROOT)
    customers = read_customers(source)
    bodies = keyed_bodies(customers) if keyed else single_bodies(customers)
    return write_bodies(work_dir / "single.bodies", bodies), source, len(bodies)


def new_keys() -> Keys:
    return Keys(client=secrets.token_hex(16), admin=secrets.token_hex(16))


def service_spec(
    *,
    models_dir: Path,
    work_dir: Path,
    workers: int,
    keys: Keys,
    log_level: str,
    poll_seconds: float,
    database_url: str | None = None,
) -> ServerSpec:
    """``python -m service`` on a free port, in production configuration; its store is
    ``database_url``, else an SQLite file in ``work_dir``."""
    port = free_port()
    environment = {
        **{name: value for name, value in os.environ.items() if name not in _NOT_INHERITED},
        "MODELS_DIR": str(models_dir),
        "DATABASE_URL": database_url or f"sqlite:///{work_dir / 'store.db'}",
        "API_KEYS": f"load:{keys.client}",
        "ADMIN_API_KEY": keys.admin,
        "MODEL_POLL_SECONDS": f"{poll_seconds:g}",
    }
    command = service_command(Path(sys.executable), port, workers=workers, log_level=log_level)
    return ServerSpec("service", command, "/ready", port, environment, ready_timeout_seconds=120)


def wait_for_workers(server: RunningServer, workers: int, timeout: float = 120.0) -> list[int]:
    """Wait until every worker serves a model (each reports its own active version)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(server.pid)
        if workers == 1 and pids == [server.pid]:
            return pids
        served = active_versions(metric_series(server.spec.base_url))
        if len(pids) == workers and {str(pid) for pid in pids} <= set(served):
            return pids
        time.sleep(0.2)
    raise ServerFailed(f"{workers} workers did not all serve a model within {timeout:g} s")
