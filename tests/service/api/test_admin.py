"""POST /admin/reload: switch versions (and back), refuse bad ones, and the watcher's metrics."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmentation.artifact import PIPELINE_FILE, point_latest, read_latest
from tests.service.api.test_metrics import value
from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.helpers import ADMIN, assert_error, customer, wait_for


async def reload(client: httpx.AsyncClient, body: Any = None) -> httpx.Response:
    return await client.post("/admin/reload", json=body, headers=ADMIN)


async def answers_come_from(client: httpx.AsyncClient, version: str) -> None:
    """Every kind of answer names ``version`` as the model that produced it."""
    single = await client.post("/segment", json=customer())
    batch = await client.post("/segment/batch", json={"customers": [customer()] * 3})
    catalog = await client.get("/segments")
    summary = await client.get("/model")
    ready = await client.get("/ready")
    assert single.json()["model_version"] == version
    assert batch.json()["model_version"] == version
    assert {result["model_version"] for result in batch.json()["results"]} == {version}
    assert catalog.json()["model_version"] == version
    assert summary.json()["model_version"] == version
    assert ready.json()["model_version"] == version


async def test_reload_to_a_named_version_serves_it(versions: tuple[Path, str, str]) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        await answers_come_from(client, first)
        response = await reload(client, {"version": second})
        assert response.status_code == 200
        assert response.json() == {"model_version": second, "previous_version": first}
        await answers_come_from(client, second)
        text = (await client.get("/metrics")).text
    assert read_latest(models) == second
    assert value(text, "segmentation_active_model", version=second) == 1.0
    assert not value(text, "segmentation_active_model", version=first)
    assert (
        value(text, "segmentation_model_reloads_total", trigger="admin", outcome="success") or 0
    ) >= 1


async def test_rollback_to_the_first_version_by_name(versions: tuple[Path, str, str]) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        assert (await reload(client, {"version": second})).status_code == 200
        response = await reload(client, {"version": first})
        assert response.status_code == 200
        assert response.json() == {"model_version": first, "previous_version": second}
        await answers_come_from(client, first)
    assert read_latest(models) == first


async def test_reload_without_a_version_serves_what_latest_names(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        point_latest(models, second)
        response = await client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 200
        assert response.json() == {"model_version": second, "previous_version": first}
        await answers_come_from(client, second)
        assert (await reload(client, {})).json()["model_version"] == second


async def test_tampered_version_is_409_and_the_old_one_keeps_serving(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    pipeline = models / second / PIPELINE_FILE
    data = bytearray(pipeline.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pipeline.write_bytes(bytes(data))
    async with serve_with_keys(models) as client:
        before = (await client.get("/metrics")).text
        response = await reload(client, {"version": second})
        error = assert_error(response, 409, "version_rejected")
        assert second in error["message"] and first in error["message"]
        assert error["details"] == [
            {"field": "version", "rule": "hash_mismatch", "message": error["details"][0]["message"]}
        ]
        await answers_come_from(client, first)
        after = (await client.get("/metrics")).text
        ready = (await client.get("/ready")).json()
    assert read_latest(models) == first
    assert ready["status"] == "ready" and ready["model_version"] == first
    assert ready["reason"].startswith("hash_mismatch: ")
    labels = {"trigger": "admin", "outcome": "refused"}
    refused_before = value(before, "segmentation_model_reloads_total", **labels) or 0
    assert value(after, "segmentation_model_reloads_total", **labels) == refused_before + 1
    assert value(after, "segmentation_active_model", version=first) == 1.0


async def test_reload_that_cannot_write_latest_is_409_and_the_old_one_keeps_serving(
    versions: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    models, first, second = versions

    def disk_full(models_dir: Path, version: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async with serve_with_keys(models) as client:
        monkeypatch.setattr("service.models.model_holder.point_latest", disk_full)
        response = await reload(client, {"version": second})
        error = assert_error(response, 409, "version_rejected")
        assert "No space left on device" in error["message"] and first in error["message"]
        assert error["details"][0]["rule"] == "latest_unwritable"
        await answers_come_from(client, first)
        ready = (await client.get("/ready")).json()
    assert read_latest(models) == first
    assert ready["reason"] == "latest_unwritable: No space left on device"


async def test_unknown_version_is_404(versions: tuple[Path, str, str]) -> None:
    models, first, _ = versions
    async with serve_with_keys(models) as client:
        error = assert_error(
            await reload(client, {"version": "20990101T000000Z-nothere"}), 404, "version_not_found"
        )
        assert first in error["message"]
        await answers_come_from(client, first)


@pytest.mark.parametrize(
    "body",
    [{"version": "../outside"}, {"version": ""}, {"version": 42}, {"release": "x"}, [1]],
)
async def test_invalid_reload_request_is_422(versions: tuple[Path, str, str], body: Any) -> None:
    models, first, _ = versions
    async with serve_with_keys(models) as client:
        assert_error(await reload(client, body), 422, "invalid_input")
        await answers_come_from(client, first)
    assert read_latest(models) == first


async def test_answers_during_a_reload_name_the_model_that_made_them(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:

        async def score() -> str:
            answer = await client.post("/segment", json=customer())
            assert answer.status_code == 200
            return str(answer.json()["model_version"])

        results = await asyncio.gather(
            *(score() for _ in range(20)),
            reload(client, {"version": second}),
            *(score() for _ in range(20)),
        )
        assert results[20].status_code == 200
        assert set(results[:20]) | set(results[21:]) <= {first, second}
        await answers_come_from(client, second)


async def test_watcher_follows_latest_and_counts_it(versions: tuple[Path, str, str]) -> None:
    models, first, second = versions
    settings = settings_for(models).model_copy(update={"model_poll_seconds": 0.05})
    async with serve(settings) as client:
        before = (await client.get("/metrics")).text
        point_latest(models, second)

        async def switched() -> bool:
            return (await client.get("/model")).json()["model_version"] == second

        await wait_for(switched)
        await answers_come_from(client, second)
        after = (await client.get("/metrics")).text
    labels = {"trigger": "watcher", "outcome": "success"}
    assert (
        value(after, "segmentation_model_reloads_total", **labels)
        == (value(before, "segmentation_model_reloads_total", **labels) or 0) + 1
    )
    assert value(after, "segmentation_active_model", version=second) == 1.0
    assert not value(after, "segmentation_active_model", version=first)


async def test_watcher_refuses_a_tampered_version_and_counts_it(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    (models / second / PIPELINE_FILE).write_bytes(b"not a pickle")
    settings = settings_for(models).model_copy(update={"model_poll_seconds": 0.05})
    labels = {"trigger": "watcher", "outcome": "refused"}
    async with serve(settings) as client:
        before = (
            value((await client.get("/metrics")).text, "segmentation_model_reloads_total", **labels)
            or 0
        )
        point_latest(models, second)

        async def refused() -> bool:
            text = (await client.get("/metrics")).text
            return (value(text, "segmentation_model_reloads_total", **labels) or 0) > before

        await wait_for(refused)
        await answers_come_from(client, first)
