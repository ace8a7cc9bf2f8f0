"""RATE_LIMIT_PER_MINUTE: per client, 429 with Retry-After, one client never blocks another."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.api.app import create_app
from service.api.middleware.rate_limit import RequestBudget
from service.dashboard.sessions import SESSION_COOKIE
from tests.service.conftest import serve, settings_for
from tests.service.dashboard.sign_in import signed_in
from tests.service.helpers import CRM_KEY, KEYS, WEB_KEY, assert_error, serve_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_admits_a_minute_of_requests_then_asks_to_wait() -> None:
    clock = FakeClock()
    budget = RequestBudget(60, clock=clock)
    assert [budget.admit("crm") for _ in range(60)] == [0.0] * 60
    wait = budget.admit("crm")
    assert 0.99 < wait <= 1.0


def test_budget_refills_at_the_rate() -> None:
    clock = FakeClock()
    budget = RequestBudget(6, clock=clock)
    for _ in range(6):
        assert budget.admit("crm") == 0.0
    assert budget.admit("crm") > 0
    clock.now += 10.0  # one request's worth at 6 a minute
    assert budget.admit("crm") == 0.0
    assert budget.admit("crm") > 0


def test_budget_refused_requests_do_not_cost_anything() -> None:
    clock = FakeClock()
    budget = RequestBudget(1, clock=clock)
    assert budget.admit("crm") == 0.0
    for _ in range(100):
        assert budget.admit("crm") == 60.0
    clock.now += 60.0
    assert budget.admit("crm") == 0.0


def test_budget_standing_counts_what_is_left_and_when_it_is_full() -> None:
    clock = FakeClock()
    budget = RequestBudget(6, clock=clock)
    assert budget.standing("crm") == (6, 0)
    for _ in range(4):
        budget.admit("crm")
    assert budget.standing("crm") == (2, 40)
    clock.now += 15.0  # one and a half requests' worth back
    assert budget.standing("crm") == (3, 25)


def test_budget_keeps_clients_apart() -> None:
    budget = RequestBudget(2, clock=FakeClock())
    assert budget.admit("crm") == budget.admit("crm") == 0.0
    assert budget.admit("crm") > 0
    assert budget.admit("web") == 0.0


def test_budget_memory_is_bounded() -> None:
    budget = RequestBudget(10, max_clients=100, clock=FakeClock())
    for address in range(10_000):
        budget.admit(f"10.0.{address // 256}.{address % 256}")
    assert len(budget) == 100


async def test_client_over_its_limit_gets_429_and_another_client_does_not(
    models_dir: Path,
) -> None:
    settings = settings_for(models_dir, rate_limit_per_minute=3, **KEYS)
    async with serve(settings) as client:
        crm = {"X-API-Key": CRM_KEY}
        standings = []
        for _ in range(3):
            answered = await client.get("/segments", headers=crm)
            assert answered.status_code == 200
            assert answered.headers["ratelimit-policy"] == '"per-client";q=3;w=60'
            standings.append(answered.headers["ratelimit"])
        # Requests left now, and the seconds until the bucket is full again (20 s each).
        assert standings == [
            '"per-client";r=2;t=20',
            '"per-client";r=1;t=40',
            '"per-client";r=0;t=60',
        ]
        limited = await client.get("/segments", headers=crm)
        error = assert_error(limited, 429, "rate_limited")
        assert "3 requests a minute" in error["message"]
        retry_after = limited.headers["retry-after"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 20
        assert limited.headers["ratelimit"] == f'"per-client";r=0;t={retry_after}'
        assert limited.headers["ratelimit-policy"] == '"per-client";q=3;w=60'
        assert "x-request-id" in limited.headers
        # Another client still has its whole budget; probes are never limited.
        other = await client.get("/segments", headers={"X-API-Key": WEB_KEY})
        assert other.status_code == 200
        for path in ("/health", "/ready", "/metrics"):
            assert (await client.get(path)).status_code == 200
        assert_error(await client.post("/segment", headers=crm, json={}), 429, "rate_limited")


async def test_anonymous_clients_are_limited_by_address_when_keys_are_off(
    models_dir: Path,
) -> None:
    app = create_app(settings_for(models_dir, rate_limit_per_minute=2))
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 4000)),
        base_url="http://service",
    )
    async with serve_app(app) as first, elsewhere:
        assert (await first.get("/segments")).status_code == 200
        assert (await first.get("/segments")).status_code == 200
        assert_error(await first.get("/segments"), 429, "rate_limited")
        assert (await elsewhere.get("/segments")).status_code == 200


async def test_without_a_limit_nothing_is_refused(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        statuses = {(await client.get("/model")).status_code for _ in range(200)}
    assert statuses == {200}


async def test_dashboard_sessions_are_limited_as_their_clients_not_by_address(
    models_dir: Path,
) -> None:
    """Colleagues behind one proxy share an address: each session has its client's budget,
    and a forged cookie is counted by the address."""
    settings = settings_for(models_dir, rate_limit_per_minute=3, **KEYS)
    async with serve(settings) as client:
        crm = {"Cookie": await signed_in(client, CRM_KEY)}  # the address's first request
        web = {"Cookie": await signed_in(client, WEB_KEY)}  # and its second
        for _ in range(3):
            assert (await client.get("/dashboard", headers=crm)).status_code == 200
        assert_error(await client.get("/dashboard", headers=crm), 429, "rate_limited")
        assert (await client.get("/dashboard", headers=web)).status_code == 200
        # The web client's key on the API draws on the same budget as its session.
        for _ in range(2):
            assert (
                await client.get("/segments", headers={"X-API-Key": WEB_KEY})
            ).status_code == 200
        assert_error(await client.get("/dashboard", headers=web), 429, "rate_limited")
        forged = {"Cookie": f"{SESSION_COOKIE}=Y3Jt.9999999999.c2lnbmVk"}
        assert (await client.get("/dashboard", headers=forged)).status_code == 303  # sign in
        assert_error(await client.get("/dashboard", headers=forged), 429, "rate_limited")
