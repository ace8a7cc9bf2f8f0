"""The shadow's bookkeeping between workers: following, refusing, counting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.models.active_model import ActiveModel
from service.models.shadow import SHADOW_FILE, Shadow


def test_a_shadow_that_cannot_be_loaded_is_not_retried_every_second(tmp_path: Path) -> None:
    attempts: list[str] = []

    def load(version: str) -> ActiveModel:
        attempts.append(version)
        raise RuntimeError("hash_mismatch")

    (tmp_path / SHADOW_FILE).write_text(
        json.dumps({"version": "v2", "started_at": "2026-12-02T00:00:00Z", "stopped": None})
    )
    shadow = Shadow(tmp_path, load)
    for _ in range(3):
        shadow.follow()
    assert attempts == ["v2"]
    assert shadow.version is None


def test_a_worker_without_a_shadow_reports_none(tmp_path: Path) -> None:
    report = Shadow(tmp_path, lambda version: pytest.fail("nothing to load")).report()
    assert report["version"] is None and report["customers"] == 0 and report["agreement"] is None
