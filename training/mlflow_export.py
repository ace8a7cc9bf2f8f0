"""`python -m training export-mlflow VERSION DIR`: a published version as an MLflow model.

For teams that standardise on an MLflow registry. The model is a ``python_function``
(pyfunc) model with a loader module (``training/mlflow_model``, copied into ``code/``) and
the version's scoring numbers (``data/model.json``), its input signature and an input
example (the first training customers). It needs no MLflow here: the folder is written in
MLflow's format (``MLmodel`` is YAML; JSON is YAML) and MLflow loads it elsewhere; its
predictions equal the service's. The version is verified first, as the service verifies it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segmentation.artifact import ArtifactError, verify_version
from segmentation.features import FEATURES
from training import mlflow_model

# The loader stands alone in MLflow's environment, with its own copy of the feature list.
assert mlflow_model.FEATURES == FEATURES, "the MLflow loader's features must be the model's"

LOADER = "segment_model"
"""The loader module's name inside the exported model's ``code/`` folder."""


def export_mlflow(
    models_dir: Path, version: str, out_dir: Path, *, signing_keys: tuple[str, ...] = ()
) -> Path:
    """Write ``version`` as an MLflow pyfunc model in ``out_dir`` (which must not exist),
    whole or not at all.

    Raises
    ------
    ArtifactError
        The version does not verify.
    FileExistsError
        ``out_dir`` exists.
    """
    verified = verify_version(models_dir, version, signing_keys=signing_keys)
    if out_dir.exists():
        raise FileExistsError(0, "already exists; choose a new folder", str(out_dir))
    manifest = verified.manifest
    segments = manifest.segments_by_label()
    numbers = {
        "version": version,
        "segment_ids": [segment.segment_id for segment in segments],
        "mean": [manifest.scaler.mean[name] for name in FEATURES],
        "scale": [manifest.scaler.scale[name] for name in FEATURES],
        "centroids": [[segment.z_centroid[name] for name in FEATURES] for segment in segments],
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        (staging / "code").mkdir()
        shutil.copyfile(Path(mlflow_model.__file__), staging / "code" / f"{LOADER}.py")
        (staging / "data").mkdir()
        (staging / "data" / "model.json").write_text(json.dumps(numbers, indent=1))
        example = _input_example(verified.path / "assignments.csv")
        (staging / "input_example.json").write_text(json.dumps(example))
        (staging / "MLmodel").write_text(json.dumps(_mlmodel(version), indent=1))
        (staging / "requirements.txt").write_text("numpy\npandas\n")
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _mlmodel(version: str) -> dict[str, Any]:
    columns = [{"type": "double", "name": name, "required": True} for name in FEATURES]
    outputs = [
        {"type": "string", "name": "segment_id", "required": True},
        {"type": "double", "name": "confidence", "required": True},
        {"type": "string", "name": "model_version", "required": True},
    ]
    return {
        "artifact_path": "model",
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {"segmentation_version": version},
        "flavors": {
            "python_function": {
                "loader_module": LOADER,
                "code": "code",
                "data": "data",
                "env": {"virtualenv": "requirements.txt"},
                "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
            }
        },
        "signature": {"inputs": json.dumps(columns), "outputs": json.dumps(outputs)},
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        },
    }


def _input_example(assignments: Path) -> dict[str, Any]:
    import csv

    with assignments.open(newline="", encoding="utf-8") as stream:
        rows = [row for _, row in zip(range(3), csv.DictReader(stream), strict=False)]
    return {
        "columns": list(FEATURES),
        "data": [[float(row[name]) for name in FEATURES] for row in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training export-mlflow", description=__doc__)
    parser.add_argument("version", help="a version under --models-dir")
    parser.add_argument("out", type=Path, help="the new folder to write the MLflow model in")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    arguments = parser.parse_args(argv)
    keys = tuple(
        key
        for key in (
            os.environ.get("MODEL_SIGNING_KEY"),
            *os.environ.get("MODEL_SIGNING_PREVIOUS_KEYS", "").split(","),
        )
        if key and key.strip()
    )
    try:
        export_mlflow(arguments.models_dir, arguments.version, arguments.out, signing_keys=keys)
    except ArtifactError as error:
        sys.stderr.write(f"error: {error.code}: {error.message}\n")
        return 2
    except OSError as error:
        sys.stderr.write(f"error: {error.filename}: {error.strerror}\n")
        return 2
    sys.stdout.write(f"{arguments.version} written as an MLflow model in {arguments.out}\n")
    return 0
