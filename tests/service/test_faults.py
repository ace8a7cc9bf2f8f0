"""Faults while serving: damaged or missing model files, the database gone, reloads and SIGTERM
in the middle of a batch."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from segmentation.artifact import MANIFEST_FILE, PIPELINE_FILE, point_latest, read_latest
from segmentation.features import CUSTOMER_KEY, FEATURES
from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.helpers import ADMIN, assert_error, customer, wait_for
from tests.service.processes import log_count, service_process, wait_for_log
from tests.service.store.conftest import database_gone, fresh_postgres_database

BIG_BATCH = 10_000
MISSING_VERSION = "20990101T000000Z-00000000"


def big_batch(training: pd.DataFrame, *, keyed: bool) -> list[dict[str, Any]]:
    """BIG_BATCH real customers (the training rows over and over), with unique keys if asked."""
    rows = training.to_dict("records")
    items = []
    for index in range(BIG_BATCH):
        row = rows[index % len(rows)]
        item = {feature: row[feature] for feature in FEATURES}
        if keyed:
            item[CUSTOMER_KEY] = f"{row[CUSTOMER_KEY]}-{index}"
        items.append(item)
    return items


def expected_segments(training: pd.DataFrame) -> list[str]:
    """What the session's model assigns to each item of ``big_batch`` (training's own answer)."""
    segments = training["segment_id"].tolist()
    return [segments[index % len(segments)] for index in range(BIG_BATCH)]


# Damage done to a version's files; DAMAGE pairs each with the refusal it must bring.
def _flip_pipeline_byte(version: Path) -> None:
    data = bytearray((version / PIPELINE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version / PIPELINE_FILE).write_bytes(bytes(data))


def _garble_manifest(version: Path) -> None:
    (version / MANIFEST_FILE).write_text('{"version": ')


def _delete_pipeline(version: Path) -> None:
    (version / PIPELINE_FILE).unlink()


def _delete_version(version: Path) -> None:
    shutil.rmtree(version)


DAMAGE = [
    pytest.param(_flip_pipeline_byte, "hash_mismatch", 409, "version_rejected", id="corrupted"),
    pytest.param(_garble_manifest, "manifest_invalid", 409, "version_rejected", id="bad-manifest"),
    pytest.param(_delete_pipeline, "file_missing", 409, "version_rejected", id="pipeline-deleted"),
    pytest.param(_delete_version, "model_missing", 404, "version_not_found", id="all-deleted"),
]


async def assert_serving(client: httpx.AsyncClient, version: str) -> dict[str, Any]:
    """Scoring, batches and /ready all answer from ``version``; returns /ready's body."""
    single = await client.post("/segment", json=customer())
    batch = await client.post("/segment/batch", json={"customers": [customer()] * 2})
    ready = await client.get("/ready")
    assert single.status_code == 200 and single.json()["model_version"] == version
    assert batch.status_code == 200
    assert {r["model_version"] for r in batch.json()["results"]} == {version}
    assert ready.status_code == 200
    body: dict[str, Any] = ready.json()
    assert (body["status"], body["model_version"]) == ("ready", version)
    return body


@pytest.mark.parametrize(("damage", "rule", "status", "code"), DAMAGE)
async def test_served_version_damaged_on_disk_keeps_answering_and_refuses_its_reload(
    versions: tuple[Path, str, str],
    damage: Callable[[Path], None],
    rule: str,
    status: int,
    code: str,
) -> None:
    models, first, _ = versions
    async with serve_with_keys(models) as client:
        await assert_serving(client, first)
        damage(models / first)
        await assert_serving(client, first)
        for body in (None, {"version": first}):
            refused = await client.post("/admin/reload", json=body, headers=ADMIN)
            error = assert_error(refused, status, code)
            assert error["details"][0]["field"] == "version"
            assert error["details"][0]["rule"] == rule
            assert f"{first} keeps serving" in error["message"]
        await assert_serving(client, first)
    assert read_latest(models) == first


@asynccontextmanager
async def latest_refused(
    models: Path, named: str, serving: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """The app (keys on, watcher polling fast) once the watcher has refused the version
    `latest` was pointed at, ``named``; checks ``serving`` still answers and yields the
    client with /ready's body."""
    async with serve_with_keys(models, model_poll_seconds=0.05) as client:
        point_latest(models, named)

        async def refused() -> bool:
            return (await client.get("/ready")).json()["reason"] is not None

        await wait_for(refused)
        yield client, await assert_serving(client, serving)


@pytest.mark.parametrize(("damage", "rule", "status", "code"), DAMAGE)
async def test_latest_naming_a_damaged_version_keeps_the_old_one_serving(
    versions: tuple[Path, str, str],
    damage: Callable[[Path], None],
    rule: str,
    status: int,
    code: str,
) -> None:
    models, first, second = versions
    damage(models / second)
    async with latest_refused(models, second, first) as (client, ready):
        assert ready["reason"].startswith(f"{rule}: ")
        error = assert_error(await client.post("/admin/reload", headers=ADMIN), status, code)
        assert error["details"][0]["rule"] == rule
        assert f"{first} keeps serving" in error["message"]
        await assert_serving(client, first)
    assert read_latest(models) == second


async def test_latest_naming_a_version_that_never_existed_keeps_the_old_one_serving(
    versions: tuple[Path, str, str],
) -> None:
    models, first, _ = versions
    async with latest_refused(models, MISSING_VERSION, first) as (client, ready):
        assert ready["reason"].startswith("model_missing: ")
        for body in (None, {"version": MISSING_VERSION}):  # what `latest` names, or by name
            error = assert_error(
                await client.post("/admin/reload", json=body, headers=ADMIN),
                404,
                "version_not_found",
            )
            assert error["message"].startswith(f"version '{MISSING_VERSION}' does not exist")
            assert f"{first} keeps serving" in error["message"]
        await assert_serving(client, first)


async def test_batch_in_flight_during_a_reload_is_answered_by_the_version_it_started_with(
    versions: tuple[Path, str, str], training_assignments: pd.DataFrame
) -> None:
    models, first, second = versions
    body = json.dumps({"customers": big_batch(training_assignments, keyed=False)}).encode()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        # The route takes its model before it reads the body, so once it asks for more
        # than the first chunk the batch is in flight; the rest waits for the reload.
        yield body[:1000]
        started.set()
        await release.wait()
        yield body[1000:]

    async with serve_with_keys(models) as client:
        batch = asyncio.create_task(
            client.post(
                "/segment/batch",
                content=slow_body(),
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
        )
        await started.wait()
        reload = asyncio.create_task(
            client.post("/admin/reload", json={"version": second}, headers=ADMIN)
        )
        release.set()
        answered, reloaded = await asyncio.gather(batch, reload)
        after = await client.post("/segment/batch", json={"customers": [customer()]})
    assert reloaded.status_code == 200
    assert reloaded.json() == {"model_version": second, "previous_version": first}
    assert answered.status_code == 200, answered.text
    result = answered.json()
    assert result["model_version"] == first
    assert result["n_errors"] == 0
    assert {item["model_version"] for item in result["results"]} == {first}
    assert [item["index"] for item in result["results"]] == list(range(BIG_BATCH))
    segments = [item["segment_id"] for item in result["results"]]
    assert segments == expected_segments(training_assignments)
    assert sum(result["counts"].values()) == BIG_BATCH
    assert after.json()["model_version"] == second


async def test_database_gone_mid_run_batch_scores_with_recorded_false_and_key_only_errors(
    models_dir: Path,
) -> None:
    # Single answers during an outage are covered in store/test_store_api.py; this is the
    # batch: new customers still scored, stored customers (key only) answered per item.
    items = [customer(customer_key="new-1"), customer(), {"customer_key": "38414"}]
    with fresh_postgres_database() as database_url:
        async with serve(settings_for(models_dir, database_url=database_url)) as client:
            before = await client.post("/segment/batch", json={"customers": items})
            with database_gone(database_url):
                during = await client.post("/segment/batch", json={"customers": items})
                ready = await client.get("/ready")
            after = await client.post("/segment/batch", json={"customers": items})
    for response in (before, during, after):
        assert response.status_code == 200, response.text
    assert [r.get("recorded") for r in before.json()["results"]] == [True, None, True]
    new, anonymous, stored = during.json()["results"]
    assert new["recorded"] is False
    assert new["segment_id"] == before.json()["results"][0]["segment_id"]
    assert "recorded" not in anonymous and anonymous["segment_id"]
    assert stored["customer_key"] == "38414"
    assert stored["error"]["code"] == "store_unavailable"
    assert during.json()["n_errors"] == 1
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert [r.get("recorded") for r in after.json()["results"]] == [True, None, True]


# SIGTERM during a batch, with a real process.


def _start_request(port: int, body_length: int) -> socket.socket:
    """Send a batch's head with ``Expect: 100-continue``; return once the route reads the body.

    The server says ``100 Continue`` only when the application first asks for the body, so
    from then on the request is in flight in a worker.
    """
    connection = socket.create_connection(("127.0.0.1", port), timeout=120)
    connection.sendall(
        (
            "POST /segment/batch HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {body_length}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
    )
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        chunk = connection.recv(1)
        assert chunk, f"the server closed the connection after {interim!r}"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return connection


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_a_batch_lets_it_complete_and_exits_0(
    models_dir: Path, tmp_path: Path, training_assignments: pd.DataFrame, workers: int
) -> None:
    body = json.dumps({"customers": big_batch(training_assignments, keyed=True)}).encode()
    version = read_latest(models_dir)
    with service_process(models_dir, tmp_path, workers) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", workers)
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200
        connection = _start_request(port, len(body))
        process.send_signal(signal.SIGTERM)
        # Every worker is shutting down before the batch's body is even sent.
        wait_for_log(process, log, "Shutting down", workers)
        connection.sendall(body)
        response = http.client.HTTPResponse(connection)
        response.begin()
        answer = json.loads(response.read())
        connection.close()
        exit_status = process.wait(timeout=60)
    assert response.status == 200, answer
    assert answer["model_version"] == version
    assert answer["n_errors"] == 0
    results = answer["results"]
    assert [item["index"] for item in results] == list(range(BIG_BATCH))
    assert [item["segment_id"] for item in results] == expected_segments(training_assignments)
    # The store stays open until the batch is done: every assignment was recorded.
    assert all(item["recorded"] is True for item in results)
    assert exit_status == 0, log.read_text()[-2000:]
    assert log_count(log, "Application shutdown complete.") == workers
