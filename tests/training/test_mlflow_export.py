"""`python -m training export-mlflow VERSION DIR`: the exported pyfunc model, loaded by MLflow
itself (in the bench environment, where MLflow lives), predicts what the service answers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.mlflow_env import BenchEnvironment, prepare_bench_environment
from segmentation.artifact import ArtifactError
from service.models.active_model import ActiveModel
from training.job import TrainingResult
from training.loading import read_customer_file
from training.mlflow_export import export_mlflow, main
from training.validation import validate_customers

ROOT = Path(__file__).resolve().parents[2]

PREDICT = """
import json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.DataFrame(json.loads(sys.argv[2]))
print(model.predict(frame).to_json(orient="records"))
"""


def test_mlflow_loads_the_export_and_predicts_what_the_service_answers(
    trained: TrainingResult, bank_export: Path, tmp_path: Path
) -> None:
    environment = prepare_bench_environment(ROOT, log_file=tmp_path / "bench-env.log")
    assert isinstance(environment, BenchEnvironment), environment
    out = tmp_path / "mlflow-model"
    export_mlflow(trained.path.parent, trained.version, out)
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    columns = ["avg_credit_limit", "total_credit_cards", "total_visits_bank",
               "total_visits_online", "total_calls_made"]  # fmt: skip
    frame = {name: table.features[:, position].tolist() for position, name in enumerate(columns)}
    predicted = subprocess.run(
        [str(environment.python), "-c", PREDICT, str(out), json.dumps(frame)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    rows = json.loads(predicted.stdout.strip().splitlines()[-1])
    answers = ActiveModel(version=trained.version, manifest=trained.manifest).assign(
        table.features, [None] * len(table.features)
    )
    assert [row["segment_id"] for row in rows] == [answer["segment_id"] for answer in answers]
    assert [row["confidence"] for row in rows] == [answer["confidence"] for answer in answers]
    assert {row["model_version"] for row in rows} == {trained.version}


def test_an_export_is_whole_or_not_at_all(
    trained: TrainingResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    assert main([trained.version, str(out), "--models-dir", str(trained.path.parent)]) == 0
    assert {path.name for path in out.iterdir()} == {
        "MLmodel", "code", "data", "input_example.json", "requirements.txt"
    }  # fmt: skip
    assert main([trained.version, str(out), "--models-dir", str(trained.path.parent)]) == 2
    assert "already exists" in capsys.readouterr().err
    tampered = tmp_path / "models"
    shutil.copytree(trained.path.parent, tampered)
    (tampered / trained.version / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactError):
        export_mlflow(tampered, trained.version, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
