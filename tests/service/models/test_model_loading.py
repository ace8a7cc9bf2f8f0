"""What the service does with a missing, damaged, incompatible or self-contradicting model."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmentation.artifact import (
    ASSIGNMENTS_FILE,
    MANIFEST_FILE,
    PIPELINE_FILE,
    read_latest,
    sha256_file,
)
from service.models.model_loading import load_model
from tests.service.conftest import serve, settings_for

CUSTOMER = {
    "avg_credit_limit": 50000,
    "total_credit_cards": 3,
    "total_visits_bank": 0,
    "total_visits_online": 10,
    "total_calls_made": 9,
}


def version_dir(models_dir: Path) -> Path:
    return models_dir / read_latest(models_dir)


def rewrite_manifest(models_dir: Path, change: Any) -> None:
    path = version_dir(models_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def rehash(models_dir: Path, name: str) -> None:
    digest = sha256_file(version_dir(models_dir) / name)
    rewrite_manifest(models_dir, lambda m: m["files"][name].update(sha256=digest))


async def assert_refused(models_dir: Path, reason: str, **settings: Any) -> None:
    async with serve(settings_for(models_dir, **settings)) as client:
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert reason in ready.json()["reason"]
        scored = await client.post("/segment", json=CUSTOMER)
        assert scored.status_code == 503
        assert scored.json()["error"]["code"] == "model_unavailable"
        assert reason in scored.json()["error"]["message"]
        assert (await client.get("/segments")).status_code == 503


async def test_start_up_objects_are_kept_out_of_full_collections(models_dir: Path) -> None:
    gc.unfreeze()
    async with serve(settings_for(models_dir)) as client:
        assert (await client.get("/ready")).status_code == 200
        # Everything start-up built (libraries, model) is frozen: a batch's collections
        # no longer walk it.
        assert gc.get_freeze_count() > 100_000
        assert gc.get_threshold()[0] >= 10_000


def test_a_loaded_model_holds_no_reference_cycle(models_dir: Path) -> None:
    """Start-up freezes the first model with the libraries; that is only free of cost if a
    replaced model is freed by reference counting, without the garbage collector."""
    model, snapshot = load_model(models_dir, None, signing_keys=(), self_test_rows=10)
    model.assign(snapshot.features[:3], snapshot.keys[:3])
    objects = [model, snapshot, model.scorer]
    gone = [weakref.ref(item) for item in objects]
    gc.disable()
    try:
        del model, snapshot, objects
        assert all(reference() is None for reference in gone)
    finally:
        gc.enable()


async def test_tampered_pipeline_byte_is_refused(models_dir: Path) -> None:
    path = version_dir(models_dir) / PIPELINE_FILE
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    await assert_refused(models_dir, "hash_mismatch")


async def test_missing_models_dir_is_refused_without_crashing(tmp_path: Path) -> None:
    await assert_refused(tmp_path / "empty", "model_missing")


async def test_latest_naming_missing_version_is_refused(models_dir: Path) -> None:
    (models_dir / "latest").write_text("20000101T000000Z-00000000\n")
    await assert_refused(models_dir, "model_missing")


async def test_latest_escaping_models_dir_is_refused(models_dir: Path) -> None:
    (models_dir / "latest").write_text("../../etc\n")
    await assert_refused(models_dir, "invalid_version_name")


async def test_deleted_pipeline_is_refused(models_dir: Path) -> None:
    (version_dir(models_dir) / PIPELINE_FILE).unlink()
    await assert_refused(models_dir, "file_missing")


async def test_a_model_trained_with_another_scikit_learn_is_served_as_trained(
    models_dir: Path,
) -> None:
    """The service scores from the manifest's numbers: no pickle, so no library to match."""
    rewrite_manifest(models_dir, lambda m: m["libraries"].update({"scikit-learn": "0.24.2"}))
    async with serve(settings_for(models_dir)) as client:
        assert (await client.get("/ready")).status_code == 200
        assert (await client.post("/segment", json=CUSTOMER)).status_code == 200


async def test_a_manifest_whose_numbers_cannot_score_is_refused(models_dir: Path) -> None:
    rewrite_manifest(models_dir, lambda m: m["scaler"]["mean"].pop("total_calls_made"))
    await assert_refused(models_dir, "manifest_invalid")


async def test_moved_centres_fail_the_self_test(models_dir: Path) -> None:
    """Numbers changed on disk (unsigned: nothing else notices) score the training
    customers differently from training, so the version is not served."""

    def swap_centres(manifest: dict[str, Any]) -> None:
        first, second = manifest["segments"][:2]
        first["z_centroid"], second["z_centroid"] = second["z_centroid"], first["z_centroid"]

    rewrite_manifest(models_dir, swap_centres)
    await assert_refused(models_dir, "self_test_failed")


async def test_other_features_are_refused(models_dir: Path) -> None:
    rewrite_manifest(models_dir, lambda m: m.update(features=["income", *m["features"][1:]]))
    await assert_refused(models_dir, "features_mismatch")


async def test_snapshot_that_disagrees_with_pipeline_fails_self_test(models_dir: Path) -> None:
    path = version_dir(models_dir) / ASSIGNMENTS_FILE
    lines = path.read_text().splitlines()
    first = lines[1].split(",")
    first[1] = "digital-affluent" if first[1] != "digital-affluent" else "branch-loyal"
    lines[1] = ",".join(first)
    path.write_text("\n".join(lines) + "\n")
    rehash(models_dir, ASSIGNMENTS_FILE)
    await assert_refused(models_dir, "self_test_failed")


@pytest.mark.parametrize("content", ["not json", "[]"])
async def test_unreadable_manifest_is_refused(models_dir: Path, content: str) -> None:
    (version_dir(models_dir) / MANIFEST_FILE).write_text(content)
    await assert_refused(models_dir, "manifest_invalid")


async def test_ready_names_the_reason_as_text(tmp_path: Path) -> None:
    async with serve(settings_for(tmp_path)) as client:
        body = (await client.get("/ready")).json()
    assert body["status"] == "not_ready"
    assert body["model_version"] is None
    assert isinstance(body["reason"], str)


async def test_client_sees_no_stack_trace_on_refusal(tmp_path: Path) -> None:
    async with serve(settings_for(tmp_path)) as client:
        response: httpx.Response = await client.post("/segment", json=CUSTOMER)
    assert "Traceback" not in response.text
