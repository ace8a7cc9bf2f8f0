"""Fixtures of the dashboard's tests: the bank's model with a four-segment candidate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from segmentation.artifact import point_latest
from training.job import TrainingOptions, TrainingResult, train


@pytest.fixture(scope="session")
def with_candidate(
    trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    """The session's model (active) and a retrain with four segments waiting as a
    candidate: unlike a retrain with another seed, it moves customers between segments.
    Returns (models, active, candidate); treat it as read-only."""
    models = tmp_path_factory.mktemp("with-candidate") / "models"
    shutil.copytree(trained.path.parent, models)
    candidate = train(TrainingOptions(models_dir=models, k=4, n_bootstrap=2))
    point_latest(models, trained.version)
    assert not candidate.promoted
    return models, trained.version, candidate.version


@pytest.fixture
def candidate_models(
    with_candidate: tuple[Path, str, str], tmp_path: Path
) -> tuple[Path, str, str]:
    """A private copy of ``with_candidate``, free to damage."""
    source, active, candidate = with_candidate
    models = tmp_path / "models"
    shutil.copytree(source, models)
    return models, active, candidate
