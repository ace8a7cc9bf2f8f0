"""REDIS_URL: one rate limit per client across every worker and replica, and a service that
keeps answering (limits counted per process, /ready degraded) while Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from service.api.middleware import shared_budget
from service.api.middleware.shared_budget import SharedBudget
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS, WEB_KEY, assert_error, customer
from tests.service.redis_server import RedisServer, redis_server


@pytest.fixture
def redis() -> AsyncIterator[RedisServer]:
    with redis_server() as server:
        yield server


@asynccontextmanager
async def replicas(
    models_dir: Path, url: str, count: int, per_minute: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` separate apps (as separate processes would be) sharing one Redis."""
    settings = settings_for(models_dir, rate_limit_per_minute=per_minute, redis_url=url, **KEYS)
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(serve(settings)) for _ in range(count)]
        for client in clients:
            client.headers["X-API-Key"] = CRM_KEY
        yield clients


async def test_budgets_in_two_processes_count_against_one_schedule(redis: RedisServer) -> None:
    first, second = SharedBudget(6, redis.url), SharedBudget(6, redis.url)
    admissions = [await budget.take("client:crm") for budget in (first, second) * 3]
    assert [admission.wait for admission in admissions] == [0.0] * 6
    # Each request moves the one schedule on by 10 s (6 a minute).
    assert [round(admission.ahead) for admission in admissions] == [10, 20, 30, 40, 50, 60]
    refused = await second.take("client:crm")
    assert 9.0 < refused.wait <= 10.0
    assert (await first.take("client:web")).wait == 0.0  # another client, its own budget
    assert first.state == second.state == "shared"
    await first.close()
    await second.close()


async def test_a_client_gets_its_limit_once_across_replicas(
    models_dir: Path, redis: RedisServer
) -> None:
    async with replicas(models_dir, redis.url, count=3, per_minute=3) as clients:
        answers = [await client.get("/segments") for client in clients]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert [answer.headers["ratelimit"] for answer in answers] == [
            '"per-client";r=2;t=20',
            '"per-client";r=1;t=40',
            '"per-client";r=0;t=60',
        ]
        for client in clients:
            limited = assert_error(await client.get("/segments"), 429, "rate_limited")
            assert "3 requests a minute" in limited["message"]
        other = await clients[0].get("/segments", headers={"X-API-Key": WEB_KEY})
        assert other.status_code == 200
        ready = (await clients[1].get("/ready")).json()
        assert (ready["status"], ready["rate_limits"]) == ("ready", "shared")


async def test_without_redis_the_limits_are_per_process_and_ready_says_so(
    models_dir: Path,
) -> None:
    async with serve(settings_for(models_dir, rate_limit_per_minute=100)) as client:
        ready = (await client.get("/ready")).json()
    assert (ready["status"], ready["rate_limits"]) == ("ready", "per process")
    async with serve(settings_for(models_dir)) as client:
        assert (await client.get("/ready")).json()["rate_limits"] is None


async def test_redis_going_away_leaves_the_service_answering_with_limits_per_process(
    models_dir: Path, redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_budget, "RETRY_SECONDS", 0.2)
    async with replicas(models_dir, redis.url, count=2, per_minute=4) as (first, second):
        assert (await first.get("/segments")).status_code == 200
        redis.stop()
        # Scoring goes on; each process now counts on its own, from a full budget.
        statuses = [(await first.post("/segment", json=customer())).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        assert (await second.get("/segments")).status_code == 200
        ready = await first.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["rate_limits"].startswith("per process: Redis is unreachable (")
        # Back: shared again (Redis restarted empty, so the client's budget is whole).
        redis.start()
        await asyncio.sleep(0.3)
        answer = await second.get("/segments")
        assert answer.status_code == 200
        assert answer.headers["ratelimit"] == '"per-client";r=3;t=15'
        ready = (await second.get("/ready")).json()
        assert (ready["status"], ready["rate_limits"]) == ("ready", "shared")
