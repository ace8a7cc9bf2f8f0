"""The MLflow pyfunc loader that ``python -m training export-mlflow`` ships with a model.

It is copied into the exported model's ``code/`` folder and imported by MLflow, in an
environment that has numpy and pandas but not this project: it depends on nothing else.
It scores as the service does, from the version's own numbers (``data/model.json``): the
scaler's mean and scale, the centroids in standardised units, nearest centre wins, exact
ties to the lower label.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = (
    "avg_credit_limit",
    "total_credit_cards",
    "total_visits_bank",
    "total_visits_online",
    "total_calls_made",
)


class SegmentModel:
    """What ``mlflow.pyfunc.load_model(...).predict`` calls."""

    def __init__(self, numbers: dict[str, Any]) -> None:
        self.version = str(numbers["version"])
        self.segment_ids = list(numbers["segment_ids"])
        self.mean = np.asarray(numbers["mean"], dtype=np.float64)
        self.scale = np.asarray(numbers["scale"], dtype=np.float64)
        self.centroids = np.asarray(numbers["centroids"], dtype=np.float64)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """A frame of customers (the five features, bank or snake_case names) -> a frame of
        ``segment_id`` and ``confidence``, one row per customer, in order."""
        import pandas as pd

        frame = pd.DataFrame(model_input)
        frame.columns = [_snake(str(name)) for name in frame.columns]
        values = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        z = (values - self.mean) / self.scale
        squared = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        labels = squared.argmin(axis=1)  # the first of equals: the lower label
        ordered = np.sqrt(np.sort(squared, axis=1))
        runner = ordered[:, 1]
        confidence = np.where(runner > 0, 1.0 - ordered[:, 0] / np.where(runner > 0, runner, 1), 0)
        return pd.DataFrame(
            {
                "segment_id": [self.segment_ids[label] for label in labels.tolist()],
                "confidence": confidence.round(6),
                "model_version": self.version,
            }
        )


def _snake(name: str) -> str:
    cleaned = name.replace("\ufeff", "").strip().lower()
    return "_".join(cleaned.replace("-", " ").split())


def _load_pyfunc(data_path: str) -> SegmentModel:
    """MLflow's entry point for a ``loader_module`` model: ``data_path`` is ``data/``."""
    return SegmentModel(json.loads((Path(data_path) / "model.json").read_text()))
