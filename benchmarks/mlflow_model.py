"""Save a verified pipeline as an MLflow model (run by the bench venv's Python, not the project's).

    .venv-bench/bin/python benchmarks/mlflow_model.py PIPELINE.joblib OUT_DIR EXAMPLE.json

The pipeline file holds the bytes the harness already verified against the manifest; the
example (a few real customers as ``{"columns": [...], "data": [[...]]}``) gives MLflow the
input signature it enforces on every request, as a documented deployment would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import mlflow.sklearn
import pandas as pd
import sklearn
from mlflow.models import infer_signature


def main(pipeline_path: str, out_dir: str, example_path: str) -> None:
    pipeline = joblib.load(pipeline_path)
    example = json.loads(Path(example_path).read_text())
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    mlflow.sklearn.save_model(
        pipeline,
        out_dir,
        signature=infer_signature(frame, pipeline.predict(frame)),
        # Stated rather than inferred: inference reloads the model in a subprocess, and
        # --env-manager local ignores the list anyway.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
