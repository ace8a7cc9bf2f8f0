"""The shadow's bookkeeping between workers: following, refusing, counting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.models.shadow import SHADOW_FILE, Shadow
from service.shared_state import DirectoryState
from tests.service.conftest import NewWorker


def test_a_shadow_that_cannot_be_loaded_is_not_retried_every_second(tmp_path: Path) -> None:
    attempts: list[str] = []

    def load(version: str) -> ActiveModel:
        attempts.append(version)
        raise RuntimeError("hash_mismatch")

    (tmp_path / SHADOW_FILE).write_text(
        json.dumps({"version": "v2", "started_at": "2026-12-02T00:00:00Z", "stopped": None})
    )
    shadow = Shadow(DirectoryState(tmp_path), load)
    for _ in range(3):
        shadow.follow()
    assert attempts == ["v2"]
    assert shadow.version is None


def test_a_worker_without_a_shadow_reports_none(worker: NewWorker) -> None:
    report = Shadow(worker(), lambda version: pytest.fail("nothing to load")).report()
    assert report["version"] is None and report["customers"] == 0 and report["agreement"] is None


def test_every_worker_follows_one_shadow_and_reports_all_the_counts(
    two_versions: tuple[Path, str, str], worker: NewWorker
) -> None:
    models, first, second = two_versions
    active, snapshot = load_model(models, first, self_test_rows=10)
    shadowing, _ = load_model(models, second, self_test_rows=10)
    one, other = (Shadow(worker(), lambda version: shadowing) for _ in range(2))
    one.start(second, active=first)
    assert other.version is None  # not until it follows the shared state
    other.follow()
    assert other.version == second
    features = snapshot.features[:30]
    active_ids = active.segment_ids_of(active.scorer.score(features).labels)
    one.observe(active_ids[:10], features[:10])
    other.observe(active_ids[10:], features[10:])
    one.share()
    other.share()
    report = one.report()
    assert (report["requests"], report["customers"]) == (2, 30)
    assert sum(move["count"] for move in report["transitions"]) == 30
    assert other.report() == report
    other.stop("version v3 became the active version")
    one.follow()
    assert one.version is None
    assert one.report()["stopped"] == "version v3 became the active version"
    assert one.report()["customers"] == 30  # the counts stay with the stopped shadow
