"""Atomic publishing: a failure or interrupt mid-write leaves the previous model active, intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from segmentation.artifact import read_latest, verify_version
from segmentation.assignments_file import VersionAssignments
from training.job import TrainingResult
from training.publishing import publish_version

# Where a write can fail: the first file, the manifest (last file), repointing `latest`
# (after the version directory has been renamed into place).
FAILURE_POINTS = {
    "pipeline": "training.publishing.joblib.dump",
    "manifest": "training.publishing._write_manifest",
    "latest": "training.publishing.point_latest",
}
FAILURES: dict[str, type[BaseException]] = {
    "disk_error": OSError,
    "interrupt": KeyboardInterrupt,
}


def _state(models_dir: Path) -> tuple[list[str], str]:
    """Every entry (hidden staging or temporary files too) and the content of `latest`."""
    entries = sorted(str(path.relative_to(models_dir)) for path in models_dir.rglob("*"))
    return entries, (models_dir / "latest").read_text()


def _raise(failure: type[BaseException]) -> Callable[..., NoReturn]:
    def fail(*_: Any, **__: Any) -> NoReturn:
        raise failure("injected failure")

    return fail


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("point", FAILURE_POINTS.values(), ids=FAILURE_POINTS.keys())
def test_failed_publish_leaves_previous_version_active(
    point: str,
    failure: type[BaseException],
    models_dir: Path,
    trained: TrainingResult,
    monkeypatch: pytest.MonkeyPatch,
    quick_train: Callable[..., TrainingResult],
) -> None:
    before = _state(models_dir)
    monkeypatch.setattr(point, _raise(failure))

    with pytest.raises(failure, match="injected failure"):
        quick_train(models_dir, seed=3, k=3, k_max=3)

    assert _state(models_dir) == before
    assert read_latest(models_dir) == trained.version
    assert verify_version(models_dir, trained.version).version == trained.version


def test_publish_numbers_a_version_name_already_taken(
    tmp_path: Path, trained: TrainingResult
) -> None:
    manifest = replace(trained.manifest, version="20260101T000000Z-d20d9222")
    assignments = VersionAssignments(keys=["1"], segment_ids=["a"], features=np.ones((1, 5)))

    def publish() -> Path:
        return publish_version(
            tmp_path,
            manifest,
            pipeline={"fitted": True},
            assignments=assignments,
            report_html="<html></html>",
            signing_key=None,
        ).path

    first, second = publish(), publish()

    assert first.name == "20260101T000000Z-d20d9222"
    assert second.name == "20260101T000000Z-d20d9222-2"
    assert json.loads((second / "manifest.json").read_text())["version"] == second.name
    assert read_latest(tmp_path) == second.name
    assert sorted(path.name for path in tmp_path.iterdir()) == [first.name, second.name, "latest"]
