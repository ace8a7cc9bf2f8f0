"""MLflow for the comparison: its own venv (``.venv-bench/``), the saved model and the server.

MLflow stays out of the project's ``.venv``: its pins could move pandas, numpy or
scikit-learn under the project. The bench venv gets the ``bench`` extra's requirements from
pyproject.toml, uvicorn with the same speed-ups as ours, and the main venv's scikit-learn
version when pip can resolve it (a mismatch is reported, not hidden).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import sklearn

from benchmarks.request_bodies import Customer
from benchmarks.servers import UVICORN_ENVIRONMENT, ServerSpec
from segmentation.features import FEATURES

logger = logging.getLogger(__name__)

BENCH_VENV = ".venv-bench"
_STAMP = ".installed"
_SAVE_SCRIPT = Path(__file__).parent / "mlflow_model.py"
_PIP_OPTIONS = ("--quiet", "--disable-pip-version-check", "--retries", "2", "--timeout", "30")


@dataclass(frozen=True)
class BenchEnvironment:
    """A working bench venv with MLflow."""

    venv: Path
    mlflow_version: str
    sklearn_version: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def sklearn_matches(self) -> bool:
        return self.sklearn_version == str(sklearn.__version__)


@dataclass(frozen=True)
class MlflowUnavailable:
    """Why MLflow could not be set up; the table shows the reason instead of figures."""

    reason: str


def bench_requirements(repo_root: Path) -> list[str]:
    """The ``bench`` optional dependencies declared in pyproject.toml."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    requirements: list[str] = project.get("optional-dependencies", {}).get("bench", [])
    return requirements


def prepare_bench_environment(
    repo_root: Path, *, log_file: Path
) -> BenchEnvironment | MlflowUnavailable:
    """Create or refresh ``.venv-bench/`` and report what it holds, or why it cannot."""
    venv = repo_root / BENCH_VENV
    wanted = [*bench_requirements(repo_root), "uvicorn[standard]"]
    if not any(requirement.startswith("mlflow") for requirement in wanted):
        return MlflowUnavailable("pyproject.toml has no mlflow in its bench extra")
    stamp = venv / _STAMP
    pinned = [*wanted, f"scikit-learn=={sklearn.__version__}"]
    if not stamp.is_file() or json.loads(stamp.read_text()) not in (pinned, wanted):
        failure = _install(venv, pinned, wanted, log_file=log_file)
        if failure:
            return MlflowUnavailable(failure)
    return _inspect(venv, log_file=log_file)


def _install(venv: Path, pinned: list[str], wanted: list[str], *, log_file: Path) -> str | None:
    print(f"setting up {venv.name}/ for MLflow (first run, or the bench extra changed) ...")
    python = venv / "bin" / "python"
    if not python.exists():
        error = _run([sys.executable, "-m", "venv", str(venv)], log_file=log_file)
        if error:
            return f"could not create {venv.name}: {error}"
    for requirements in (pinned, wanted):
        error = _run(
            [str(python), "-m", "pip", "install", *_PIP_OPTIONS, *requirements], log_file=log_file
        )
        if not error:
            (venv / _STAMP).write_text(json.dumps(requirements))
            return None
        logger.warning("pip install %s failed: %s", " ".join(requirements), error)
    return f"MLflow could not be installed: {error}"


def _inspect(venv: Path, *, log_file: Path) -> BenchEnvironment | MlflowUnavailable:
    completed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import mlflow, sklearn; print(mlflow.__version__, sklearn.__version__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        _append(log_file, completed.stderr)
        return MlflowUnavailable(
            f"MLflow does not import in {venv.name}: {_tail(completed.stderr)}"
        )
    mlflow_version, sklearn_version = completed.stdout.split()
    return BenchEnvironment(
        venv=venv, mlflow_version=mlflow_version, sklearn_version=sklearn_version
    )


def save_mlflow_model(
    environment: BenchEnvironment,
    *,
    pipeline_bytes: bytes,
    customers: list[Customer],
    work_dir: Path,
    log_file: Path,
) -> Path:
    """Save the verified pipeline with ``mlflow.sklearn.save_model``; return the model dir."""
    pipeline_file = work_dir / "verified_pipeline.joblib"
    pipeline_file.write_bytes(pipeline_bytes)
    example_file = work_dir / "mlflow_example.json"
    example = {"columns": list(FEATURES), "data": [list(c.features) for c in customers[:20]]}
    example_file.write_bytes(orjson.dumps(example))
    model_dir = work_dir / "mlflow_model"
    error = _run(
        [
            str(environment.python),
            str(_SAVE_SCRIPT),
            str(pipeline_file),
            str(model_dir),
            str(example_file),
        ],
        log_file=log_file,
    )
    if error:
        raise RuntimeError(f"mlflow.sklearn.save_model failed: {error}")
    return model_dir


def mlflow_server_spec(
    environment: BenchEnvironment, *, model_dir: Path, port: int, base: Mapping[str, str]
) -> ServerSpec:
    """``mlflow models serve`` with one worker, on the same uvicorn settings as ours."""
    bin_dir = environment.venv / "bin"
    return ServerSpec(
        name="mlflow",
        command=[
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        ready_path="/ping",
        port=port,
        # mlflow runs `uvicorn` from PATH: it must be the bench venv's.
        environment={
            **base,
            "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": (model_dir.parent / "mlruns").as_uri(),
            **UVICORN_ENVIRONMENT,
        },
    )


def _run(command: list[str], *, log_file: Path) -> str | None:
    """Run a command, log its output; return a short error, or None on success."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        return str(error)
    _append(log_file, f"$ {' '.join(command)}\n{completed.stdout}{completed.stderr}\n")
    if completed.returncode != 0:
        return f"exit {completed.returncode}: {_tail(completed.stderr or completed.stdout)}"
    return None


def _append(log_file: Path, text: str) -> None:
    with log_file.open("a") as log:
        log.write(text)


def _tail(text: str, lines: int = 3) -> str:
    """The end of a command's output; pip's own ERROR lines when it printed some."""
    kept = text.strip().splitlines()
    errors = [line for line in kept if line.startswith("ERROR:")]
    return " / ".join((errors or kept)[-lines:])[-400:]
