"""Shared fixtures: one model trained on the bank's real export, once per test session."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from service.logging_setup import JsonFormatter
from training.job import TrainingOptions, TrainingResult, train
from training.loading import sample_data_path

# In CI every property test and the fuzzer draw the same examples each run: a run fails
# for the code, not for the draw. Locally they explore afresh each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after each test.

    Starting the app installs a JSON handler on the ``sys.stderr`` of that moment, which
    under pytest is a capture that closes with its test: left in place, it would make every
    later test's log record fail to write (and print the failure to stderr).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in set(root.handlers) - set(handlers):
        if isinstance(handler.formatter, JsonFormatter):
            handler.close()  # stops its writer thread
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def bank_export() -> Path:
    """The bank's export as the project bundles it (byte-identical to the shared copy)."""
    return sample_data_path()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """The default training run on the bank's export; treat its directory as read-only."""
    models_dir = tmp_path_factory.mktemp("models")
    return train(TrainingOptions(models_dir=models_dir, n_bootstrap=5))


@pytest.fixture
def models_dir(trained: TrainingResult, tmp_path: Path) -> Path:
    """A private copy of the trained models directory, free to damage."""
    copy = tmp_path / "models"
    shutil.copytree(trained.path.parent, copy)
    return copy
