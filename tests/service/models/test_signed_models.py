"""Signed models (MODEL_SIGNING_KEY): what is served, what is refused, and what is never unpickled.

Training signs the manifest (HMAC-SHA256 over its canonical form); the manifest holds the
sha256 of every file. With a signing key, the service must refuse, before unpickling
anything, a version whose signature is missing or wrong or whose files do not match
their hashes, on every path a version is loaded by: start-up, ``POST /admin/reload`` and
the watcher that follows ``latest``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pathlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from segmentation.artifact import (
    ASSIGNMENTS_FILE,
    MANIFEST_FILE,
    PIPELINE_FILE,
    point_latest,
    read_latest,
    sha256_file,
)
from service.config import Settings
from tests.service.conftest import serve, settings_for
from tests.service.helpers import ADMIN_KEY, assert_error, customer
from training.job import TrainingOptions, train

KEY = "signing-key-2026-current"
OLD_KEY = "signing-key-2025-rotated-out"
OTHER_KEY = "signing-key-of-somebody-else"


@dataclass(frozen=True)
class SignedModels:
    """A models directory: ``current`` signed with KEY (`latest`), ``previous`` with OLD_KEY."""

    path: Path
    current: str
    previous: str


@pytest.fixture(scope="module")
def signed_models_source(tmp_path_factory: pytest.TempPathFactory) -> SignedModels:
    models = tmp_path_factory.mktemp("signed") / "models"
    previous = train(TrainingOptions(models_dir=models, n_bootstrap=2, signing_key=OLD_KEY))
    current = train(
        TrainingOptions(models_dir=models, seed=1, n_bootstrap=2, signing_key=KEY, promote=True)
    )
    assert current.version != previous.version
    assert read_latest(models) == current.version
    return SignedModels(models, current.version, previous.version)


@pytest.fixture
def signed(signed_models_source: SignedModels, tmp_path: Path) -> SignedModels:
    """A private copy of the signed models, free to damage."""
    models = tmp_path / "models"
    shutil.copytree(signed_models_source.path, models)
    return SignedModels(models, signed_models_source.current, signed_models_source.previous)


class Trap:
    """Unpickling this creates ``marker``: proof that a pickle was loaded, i.e. code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.marker,))


def trap_bytes(marker: Path) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(Trap(marker), buffer)
    return buffer.getvalue()


def manifest_path(models: Path, version: str) -> Path:
    return models / version / MANIFEST_FILE


def change_manifest(models: Path, version: str, change: Callable[[dict[str, Any]], Any]) -> None:
    """Edit a manifest the way an intruder would: the signature is left as it was."""
    path = manifest_path(models, version)
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def swap_pipeline(models: Path, version: str, marker: Path, *, update_hash: bool) -> None:
    """Replace the pickle with a trap; with ``update_hash``, the manifest's sha256 agrees."""
    path = models / version / PIPELINE_FILE
    path.write_bytes(trap_bytes(marker))
    if update_hash:
        digest, size = sha256_file(path), path.stat().st_size
        change_manifest(
            models, version, lambda m: m["files"][PIPELINE_FILE].update(sha256=digest, bytes=size)
        )


async def assert_nothing_served(client: httpx.AsyncClient, reason: str) -> None:
    """The service is up, says why it is not ready, and answers 503 to scoring."""
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["model_version"] is None
    assert reason in ready.json()["reason"]
    error = assert_error(await client.post("/segment", json=customer()), 503, "model_unavailable")
    assert reason in error["message"]


async def assert_serving(client: httpx.AsyncClient, version: str) -> None:
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["model_version"] == version
    scored = await client.post("/segment", json=customer())
    assert scored.status_code == 200, scored.text
    assert scored.json()["model_version"] == version


async def test_signed_model_is_served_when_the_key_matches(signed: SignedModels) -> None:
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_serving(client, signed.current)
        summary = await client.get("/model")
        assert summary.status_code == 200
        assert summary.json()["signed"] is True


def flip_one_byte_of_a_segment_name(manifest: Path) -> None:
    content = bytearray(manifest.read_bytes())
    at = content.index(b'"name": "') + len(b'"name": "')
    content[at] ^= 0x20  # upper case <-> lower case: still valid JSON, one byte changed
    manifest.write_bytes(bytes(content))


TAMPERING: dict[str, Callable[[dict[str, Any]], Any]] = {
    "k": lambda m: m.update(k=m["k"] + 1),
    "segment-name": lambda m: m["segments"][0].update(name="Most valuable customers"),
    "recommended-action": lambda m: m["segments"][0]["recommended_actions"]["marketing"].append(
        "Offer a 0% balance transfer to everyone"
    ),
    "atypical-threshold": lambda m: m["segments"][0].update(atypical_distance=1e9),
    "feature-range": lambda m: m["scoring"]["feature_max"].update(avg_credit_limit=1.0),
    "created-at": lambda m: m.update(created_at="2020-01-01T00:00:00Z"),
    "field-added": lambda m: m.update(note="harmless"),
    "file-entry-removed": lambda m: m["files"].pop(ASSIGNMENTS_FILE),
    "signature-one-digit": lambda m: m["signature"].update(
        value=("1" if m["signature"]["value"][0] != "1" else "2") + m["signature"]["value"][1:]
    ),
    "signature-of-another-manifest": lambda m: m["signature"].update(value="0" * 64),
    "signature-non-ascii": lambda m: m["signature"].update(value="\u00e9" * 64),
    "signature-not-text": lambda m: m["signature"].update(value=12345),
    "signature-algorithm": lambda m: m["signature"].update(algorithm="none"),
}


@pytest.mark.parametrize("change", list(TAMPERING), ids=list(TAMPERING))
async def test_tampered_manifest_is_refused_when_signed(signed: SignedModels, change: str) -> None:
    change_manifest(signed.path, signed.current, TAMPERING[change])
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")


async def test_manifest_with_one_byte_changed_is_refused_when_signed(signed: SignedModels) -> None:
    flip_one_byte_of_a_segment_name(manifest_path(signed.path, signed.current))
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"version": NaN}', "manifest_invalid"),
        ('{"version": Infinity}', "manifest_invalid"),
        ("[" * 100_000 + "]" * 100_000, "manifest_invalid"),
        ('{"signature": "not an object"}', "signature_missing"),
        ('{"signature": {"algorithm": "hmac-sha256"}}', "signature_missing"),
        ('{"signature": {"algorithm": "hmac-sha256", "value": ["a"]}}', "signature_invalid"),
    ],
    ids=["nan", "infinity", "deeply-nested", "signature-text", "signature-empty", "value-list"],
)
async def test_hostile_manifest_is_refused_without_stopping_the_service(
    signed: SignedModels, content: str, reason: str
) -> None:
    manifest_path(signed.path, signed.current).write_text(content)
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, reason)


async def test_unsigned_version_is_refused_when_a_key_is_set(models_dir: Path) -> None:
    assert "signature" not in json.loads(
        manifest_path(models_dir, read_latest(models_dir)).read_text()
    )
    async with serve(settings_for(models_dir, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_missing")


async def test_signature_removed_is_refused_when_a_key_is_set(signed: SignedModels) -> None:
    change_manifest(signed.path, signed.current, lambda m: m.pop("signature"))
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_missing")


async def test_version_signed_with_another_key_is_refused(signed: SignedModels) -> None:
    async with serve(settings_for(signed.path, model_signing_key=OTHER_KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")


@pytest.mark.parametrize("name", [ASSIGNMENTS_FILE, PIPELINE_FILE])
async def test_signed_version_whose_file_changed_is_refused(
    signed: SignedModels, name: str
) -> None:
    path = signed.path / signed.current / name
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "hash_mismatch")


def test_trap_pickle_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The control for the tests below: unpickling the trap does leave its marker."""
    marker = tmp_path / "unpickled"
    assert joblib.load(io.BytesIO(trap_bytes(marker))) is None
    assert marker.exists()


async def test_a_swapped_pickle_is_never_unpickled_even_when_signing_is_off(
    signed: SignedModels, tmp_path: Path
) -> None:
    """The service scores from the manifest's numbers: a writable models folder can no
    longer run code in it, whatever hash the intruder recomputed."""
    marker = tmp_path / "unpickled"
    swap_pipeline(signed.path, signed.current, marker, update_hash=True)
    async with serve(settings_for(signed.path)) as client:
        await assert_serving(client, signed.current)
    assert not marker.exists()


async def test_tampered_scoring_numbers_are_refused_when_signed(signed: SignedModels) -> None:
    """A centre moved in a signed manifest: the signature no longer matches."""

    def move_a_centre(manifest: dict[str, Any]) -> None:
        centre = manifest["segments"][0]["z_centroid"]
        centre["avg_credit_limit"] += 0.5

    change_manifest(signed.path, signed.current, move_a_centre)
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")


@pytest.mark.parametrize(
    ("update_hash", "reason"), [(True, "signature_invalid"), (False, "hash_mismatch")]
)
async def test_swapped_pickle_is_refused_at_start_up_and_never_unpickled(
    signed: SignedModels, tmp_path: Path, update_hash: bool, reason: str
) -> None:
    marker = tmp_path / "unpickled"
    swap_pipeline(signed.path, signed.current, marker, update_hash=update_hash)
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, reason)
        reloaded = await client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert_error(reloaded, 403, "forbidden")  # no admin key configured in this app
    assert not marker.exists()


def rotation_settings(models: Path, **overrides: Any) -> Settings:
    """Production during a key rotation: KEY signs, OLD_KEY's versions still verify."""
    return settings_for(
        models,
        model_signing_key=KEY,
        model_signing_previous_keys=OLD_KEY,
        admin_api_key=ADMIN_KEY,
        **overrides,
    )


async def test_swapped_pickle_is_refused_by_admin_reload_and_never_unpickled(
    signed: SignedModels, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    swap_pipeline(signed.path, signed.previous, marker, update_hash=True)
    async with serve(rotation_settings(signed.path)) as client:
        await assert_serving(client, signed.current)
        response = await client.post(
            "/admin/reload", json={"version": signed.previous}, headers={"X-API-Key": ADMIN_KEY}
        )
        error = assert_error(response, 409, "version_rejected")
        assert error["details"][0]["rule"] == "signature_invalid"
        assert f"{signed.current} keeps serving" in error["message"]
        await assert_serving(client, signed.current)
    assert read_latest(signed.path) == signed.current
    assert not marker.exists()


async def test_swapped_pickle_named_by_latest_is_refused_by_the_watcher_and_never_unpickled(
    signed: SignedModels, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    swap_pipeline(signed.path, signed.previous, marker, update_hash=True)
    settings = Settings(
        models_dir=signed.path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        model_signing_key=KEY,
        model_signing_previous_keys=OLD_KEY,
        model_poll_seconds=0.05,
    )
    async with serve(settings) as client:
        await assert_serving(client, signed.current)
        point_latest(signed.path, signed.previous)
        reason = None
        for _ in range(100):
            await asyncio.sleep(0.05)
            reason = (await client.get("/ready")).json()["reason"]
            if reason:
                break
        assert reason is not None and "signature_invalid" in reason
        await assert_serving(client, signed.current)
    assert not marker.exists()


async def test_version_signed_with_a_previous_key_is_served_while_that_key_is_listed(
    signed: SignedModels,
) -> None:
    point_latest(signed.path, signed.previous)
    async with serve(rotation_settings(signed.path)) as client:
        await assert_serving(client, signed.previous)
        # And the admin can move between the two generations of keys.
        response = await client.post(
            "/admin/reload", json={"version": signed.current}, headers={"X-API-Key": ADMIN_KEY}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "model_version": signed.current,
            "previous_version": signed.previous,
        }


async def test_version_signed_with_a_previous_key_is_refused_once_that_key_is_dropped(
    signed: SignedModels,
) -> None:
    point_latest(signed.path, signed.previous)
    async with serve(settings_for(signed.path, model_signing_key=KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")


async def test_previous_keys_never_replace_the_current_one(signed: SignedModels) -> None:
    """A listed previous key does not verify anything without the current key set."""
    point_latest(signed.path, signed.previous)
    settings = settings_for(signed.path, model_signing_previous_keys=f"{OTHER_KEY},{OLD_KEY}")
    assert settings.signing_keys == ()
    async with serve(settings_for(signed.path, model_signing_key=OTHER_KEY)) as client:
        await assert_nothing_served(client, "signature_invalid")
    rotating = settings_for(
        signed.path, model_signing_key=OTHER_KEY, model_signing_previous_keys=f" {OLD_KEY} ,"
    )
    assert rotating.signing_keys == (OTHER_KEY, OLD_KEY)
    async with serve(rotating) as client:
        await assert_serving(client, signed.previous)


async def test_signing_keys_are_never_logged(
    signed: SignedModels, caplog: pytest.LogCaptureFixture
) -> None:
    # caplog, not capsys: the service's JSON handler would outlive a capsys stream.
    change_manifest(signed.path, signed.previous, lambda m: m.update(k=0))
    with caplog.at_level(logging.DEBUG):
        settings = rotation_settings(signed.path)
        async with serve(settings) as client:
            await assert_serving(client, signed.current)
            refused = await client.post(
                "/admin/reload", json={"version": signed.previous}, headers={"X-API-Key": ADMIN_KEY}
            )
            assert_error(refused, 409, "version_rejected")
    assert "signature does not match" in caplog.text
    written = caplog.text + repr(settings) + str(settings)
    for secret in (KEY, OLD_KEY, ADMIN_KEY):
        assert secret not in written
        assert all(secret not in str(record.__dict__) for record in caplog.records)
        assert secret not in refused.text
