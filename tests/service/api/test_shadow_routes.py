"""Shadow scoring: a second version scores live traffic; answers never change."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from segmentation.artifact import PIPELINE_FILE
from segmentation.comparison import ComparedVersion, compare
from segmentation.features import FEATURES
from tests.service.conftest import serve_with_keys
from tests.service.helpers import ADMIN, ADMIN_KEY, CRM_KEY, assert_error, customer
from tests.service.processes import log_count, service_process, wait_for_log

CUSTOMERS = [
    customer(avg_credit_limit=limit, total_visits_online=online, total_calls_made=calls)
    for limit, online, calls in [
        (5_000, 1, 9),
        (12_000, 3, 7),
        (20_000, 0, 2),
        (34_000, 1, 2),
        (50_000, 2, 4),
        (75_000, 9, 1),
        (100_000, 12, 0),
        (150_000, 15, 1),
        (9_000, 4, 10),
        (40_000, 5, 5),
    ]
]


async def answers(client: httpx.AsyncClient) -> list[bytes]:
    """The bodies of one call per customer and of one batch of all of them."""
    bodies = [(await client.post("/segment", json=item)).content for item in CUSTOMERS]
    batch = await client.post("/segment/batch", json={"customers": CUSTOMERS})
    return [*bodies, batch.content]


async def start(client: httpx.AsyncClient, version: str) -> httpx.Response:
    return await client.post("/admin/shadow", json={"version": version}, headers=ADMIN)


async def report(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/admin/shadow", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_answers_are_byte_for_byte_those_without_a_shadow(
    versions: tuple[Path, str, str],
) -> None:
    models, _, second = versions
    async with serve_with_keys(models) as client:
        without = await answers(client)
        assert (await start(client, second)).status_code == 200
        with_shadow = await answers(client)
        assert (await report(client))["customers"] == 2 * len(CUSTOMERS)
    assert with_shadow == without


async def test_agreement_and_transitions_equal_an_offline_comparison(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        started = await start(client, second)
        assert started.status_code == 200, started.text
        await answers(client)
        shadowed = await report(client)
        listed = (await client.get("/models")).json()
    features = np.array([[item[feature] for feature in FEATURES] for item in CUSTOMERS] * 2)
    offline = compare(
        ComparedVersion.load(models, second), ComparedVersion.load(models, first), features
    ).to_document()
    assert shadowed["version"] == second and shadowed["stopped"] is None
    assert shadowed["requests"] == len(CUSTOMERS) + 1
    assert shadowed["customers"] == offline["n_customers"] == 2 * len(CUSTOMERS)
    assert shadowed["agreement"] == pytest.approx(1 - offline["moved_share"])
    assert sorted(map(json.dumps, shadowed["transitions"])) == sorted(
        map(json.dumps, offline["transitions"])
    )
    assert listed["shadow"] == second


async def test_a_promotion_stops_the_shadow_and_says_so(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    async with serve_with_keys(models) as client:
        assert (await start(client, second)).status_code == 200
        await answers(client)
        promoted = await client.post(
            "/admin/promote", json={"version": second, "reason": "shadow agreed"}, headers=ADMIN
        )
        assert promoted.status_code == 200
        after = await report(client)
        await answers(client)
        later = await report(client)
        listed = (await client.get("/models")).json()
    assert after["stopped"] == f"version {second} became the active version"
    assert after["customers"] == 2 * len(CUSTOMERS)  # the counts stay
    assert later["customers"] == after["customers"]  # nothing counted once stopped
    assert listed["shadow"] is None


async def test_stopping_keeps_the_counts(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    async with serve_with_keys(models) as client:
        assert (await start(client, second)).status_code == 200
        await answers(client)
        stopped = await client.delete("/admin/shadow", headers=ADMIN)
    assert stopped.status_code == 200
    assert stopped.json()["stopped"] == "stopped by admin (DELETE /admin/shadow)"
    assert stopped.json()["customers"] == 2 * len(CUSTOMERS)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"version": "20200101T000000Z-00000000"}, 404, "version_not_found"),
        ({"version": "../etc"}, 422, "invalid_input"),
        ({"version": "{first}"}, 409, "version_conflict"),
        ({"version": "{second}", "extra": 1}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
    ],
)
async def test_bad_shadow_requests_are_refused_and_nothing_shadows(
    versions: tuple[Path, str, str], body: dict[str, Any], status: int, code: str
) -> None:
    models, first, second = versions
    text = json.dumps(body).replace("{first}", first).replace("{second}", second)
    async with serve_with_keys(models) as client:
        response = await client.post(
            "/admin/shadow", content=text, headers={**ADMIN, "Content-Type": "application/json"}
        )
        assert_error(response, status, code)
        assert (await report(client))["version"] is None
        assert (await client.post("/segment", json=customer())).status_code == 200


async def test_a_tampered_version_cannot_shadow(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    (models / second / PIPELINE_FILE).write_bytes(b"not the pipeline that was hashed")
    async with serve_with_keys(models) as client:
        error = assert_error(await start(client, second), 409, "version_rejected")
        assert (await report(client))["version"] is None
    assert "hash_mismatch" in json.dumps(error)


async def test_a_client_key_cannot_start_a_shadow(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    async with serve_with_keys(models) as client:
        response = await client.post(
            "/admin/shadow", json={"version": second}, headers={"X-API-Key": CRM_KEY}
        )
        assert_error(response, 403, "forbidden")


@pytest.mark.slow
def test_the_shadow_report_adds_up_every_worker(
    versions: tuple[Path, str, str], tmp_path: Path
) -> None:
    models, first, second = versions
    environment = {"ADMIN_API_KEY": ADMIN_KEY, "STATE_DIR": str(tmp_path / "state")}
    with service_process(models, tmp_path, 2, environment=environment) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", 2)

        async def run() -> dict[str, Any]:
            limits = httpx.Limits(max_connections=8)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
                assert (await start(client, second)).status_code == 200
                await asyncio.sleep(2.5)  # every worker takes the shadow up within a second
                sent = await asyncio.gather(
                    *(client.post("/segment", json=item) for item in CUSTOMERS * 20)
                )
                assert all(answer.status_code == 200 for answer in sent)
                await asyncio.sleep(2.5)  # and shares its counts once a second
                return await report(client)

        shadowed = asyncio.run(run())
        tallies = list((tmp_path / "state").glob("shadow-tally-*.piece"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert log_count(log, f"shadow scoring with {second}") == 2  # each worker shadowed
    assert len(tallies) == 2
    assert shadowed["customers"] == shadowed["requests"] == 20 * len(CUSTOMERS)
    features = np.array([[item[f] for f in FEATURES] for item in CUSTOMERS * 20])
    offline = compare(
        ComparedVersion.load(models, second), ComparedVersion.load(models, first), features
    ).to_document()
    assert shadowed["agreement"] == pytest.approx(1 - offline["moved_share"])
