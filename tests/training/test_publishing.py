"""Atomic publishing: a failure or interrupt mid-write leaves the previous model active, intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from segmentation import lifecycle
from segmentation.artifact import read_latest, verify_version
from segmentation.assignments_file import VersionAssignments
from training.job import TrainingResult
from training.publishing import publish_version

# Where a write can fail: the first file, the manifest (last file), then, after the version
# directory has been renamed into place, recording the candidate or repointing `latest`.
FAILURE_POINTS = {
    "pipeline": "training.publishing.joblib.dump",
    "manifest": "training.publishing._write_manifest",
    "history": "training.publishing.lifecycle.record",
    "latest": "training.publishing.point_latest",
}
FAILURES: dict[str, type[BaseException]] = {
    "disk_error": OSError,
    "interrupt": KeyboardInterrupt,
}


def _state(models_dir: Path) -> tuple[list[str], str, str]:
    """Every entry (hidden staging or temporary files too), `latest` and the history."""
    entries = sorted(str(path.relative_to(models_dir)) for path in models_dir.rglob("*"))
    history = (models_dir / lifecycle.LIFECYCLE_FILE).read_text()
    return entries, (models_dir / "latest").read_text(), history


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
        # Promoted, so that every point is on the way; a candidate never touches `latest`.
        quick_train(models_dir, seed=3, k=3, k_max=3, promote=point.endswith("point_latest"))

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
            promote=True,
        ).path

    first, second = publish(), publish()

    assert first.name == "20260101T000000Z-d20d9222"
    assert second.name == "20260101T000000Z-d20d9222-2"
    assert json.loads((second / "manifest.json").read_text())["version"] == second.name
    assert read_latest(tmp_path) == second.name
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".lifecycle.lock",
        first.name,
        second.name,
        "latest",
        "lifecycle.json",
    ]


def test_the_first_version_is_active_and_retrains_wait_as_candidates(
    tmp_path: Path, quick_train: Callable[..., TrainingResult]
) -> None:
    models = tmp_path / "models"
    first = quick_train(models, k=3, k_max=3)
    second = quick_train(models, k=3, k_max=3, seed=1)

    assert first.promoted and not second.promoted
    assert read_latest(models) == first.version
    histories = lifecycle.read_histories(models)
    assert [t.status for t in histories[first.version]] == ["candidate", "active"]
    assert histories[first.version][-1].reason == "the first version of this models directory"
    assert [t.status for t in histories[second.version]] == ["candidate"]
    assert histories[second.version][0].by == "python -m training"

    third = quick_train(models, k=3, k_max=3, seed=2, promote=True)

    assert third.promoted and read_latest(models) == third.version
    histories = lifecycle.read_histories(models)
    active = lifecycle.active_version(models)
    assert lifecycle.status_of(third.version, histories[third.version], active) == "active"
    assert lifecycle.status_of(second.version, histories[second.version], active) == "candidate"
    assert lifecycle.status_of(first.version, histories[first.version], active) == "retired"
    assert histories[first.version][-1].reason == f"replaced by {third.version}: --promote"
