"""Replicas that act as one service: three service processes of two workers each behind
nginx, one PostgreSQL database, one Redis, under load with switches of model.

What only real processes can show: every process follows a switch made through any one of
them within seconds, a client gets its rate limit once (not once per process), the store
keeps every recorded answer exactly once, and the shadow's counts and the drift window
cover every process's customers, whichever process reports them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.app import SHARE_SECONDS
from tests.service.helpers import ADMIN_KEY
from tests.service.processes import service_process, wait_for_log
from tests.service.redis_server import redis_server
from tests.service.reverse_proxy import reverse_proxy
from tests.service.store.conftest import fresh_postgres_database
from tests.service.store.test_live_recording import live_customer, stored_rows

PROCESSES = 3
WORKERS = 2
PER_MINUTE = 1_200
"""Each client's limit: 20 requests a second, and a minute's worth at once."""
LOAD_CLIENTS = 12
LOAD_SECONDS = 12.0
REPEATED_KEYS = 300
"""The load's customers: each is scored several times, under both models."""
SHADOWED = 300
"""Customers scored while a shadow runs."""
SWITCH_SECONDS = 10.0
"""How long every process may take to serve a version switched to through another one."""

CLIENT_KEYS = {f"load-{number}": f"load-key-{number:04d}" for number in range(LOAD_CLIENTS)}
CLIENT_KEYS |= {"campaign": "campaign-key-0001", "ops": "ops-key-0001"}


@contextmanager
def replicas(
    models_dir: Path, tmp_path: Path, database_url: str, redis_url: str
) -> Iterator[list[int]]:
    """The service processes, all started and serving; yields their ports."""
    environment = {
        "API_KEYS": ",".join(f"{client}:{key}" for client, key in CLIENT_KEYS.items()),
        "ADMIN_API_KEY": ADMIN_KEY,
        "RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "REDIS_URL": redis_url,
        "MODEL_POLL_SECONDS": "0.5",
    }
    with ExitStack() as stack:
        started = []
        for number in range(PROCESSES):
            folder = tmp_path / f"replica-{number}"
            folder.mkdir()
            started.append(
                stack.enter_context(
                    service_process(
                        models_dir,
                        folder,
                        WORKERS,
                        database_url=database_url,
                        environment=environment,
                    )
                )
            )
        for process, _, log in started:
            wait_for_log(process, log, "Application startup complete.", WORKERS)
        yield [port for _, port, _ in started]


@pytest.mark.slow
def test_three_processes_behind_a_proxy_act_as_one_service(
    versions: tuple[Path, str, str], tmp_path: Path
) -> None:
    models_dir, first, second = versions
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database())
        redis = stack.enter_context(redis_server())
        ports = stack.enter_context(replicas(models_dir, tmp_path, database_url, redis.url))
        proxy_url = stack.enter_context(reverse_proxy(ports, tmp_path / "proxy"))
        load = asyncio.run(_load_with_switches(proxy_url, ports, first, second))
        shadow_reports, drift_reports = asyncio.run(_observed_everywhere(proxy_url, ports, second))
        admitted, elapsed = asyncio.run(_as_fast_as_possible(proxy_url, "campaign", 1_500))
        assert load.statuses == {200}, f"errors under load: {load.statuses}"
        assert all(answer["recorded"] is True for answer in load.answers)
        assert {answer["model_version"] for answer in load.answers} == {first, second}
        # Every process served each switch within seconds, wherever it was made.
        assert len(load.switch_seconds) == 2
        assert all(seconds < SWITCH_SECONDS for seconds in load.switch_seconds), load.switch_seconds
        # One limit across all processes: a minute's worth, plus what refilled meanwhile
        # (per process, the six workers would have let all 1,500 through).
        assert PER_MINUTE <= admitted <= PER_MINUTE + elapsed * PER_MINUTE / 60 + 2
        _check_store(database_url, load.answers)
        # Whichever process is asked, the shadow's counts and the drift window cover the
        # customers every worker of every process scored.
        assert {report["customers"] for report in shadow_reports} == {SHADOWED}
        assert {report["requests"] for report in shadow_reports} == {SHADOWED}
        windows = {report["window"]["customers"] for report in drift_reports}
        assert len(windows) == 1 and windows.pop() >= SHADOWED


class Load:
    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.statuses: set[int] = set()
        self.switch_seconds: list[float] = []


async def _load_with_switches(proxy_url: str, ports: list[int], first: str, second: str) -> Load:
    """Keyed CRM calls from ``LOAD_CLIENTS`` clients, each at its limit's refill rate (so
    never limited), while the served version is switched to ``second`` and back."""
    load = Load()
    numbers = iter(range(1_000_000))
    deadline = time.monotonic() + LOAD_SECONDS

    async def client_loop(client: httpx.AsyncClient, key: str) -> None:
        interval = 60.0 / PER_MINUTE
        next_send = time.monotonic()
        while time.monotonic() < deadline:
            number = next(numbers)
            sent = live_customer(number, f"replicated-{number % REPEATED_KEYS}")
            response = await client.post("/segment", json=sent, headers={"X-API-Key": key})
            load.statuses.add(response.status_code)
            if response.status_code == 200:
                load.answers.append({**response.json(), "avg_credit_limit": number + 10_000})
            next_send += interval
            await asyncio.sleep(max(next_send - time.monotonic(), 0.0))

    async def switches(client: httpx.AsyncClient) -> None:
        for version, at in ((second, 3.0), (first, 7.5)):
            await asyncio.sleep(max(deadline - LOAD_SECONDS + at - time.monotonic(), 0.0))
            started = time.monotonic()
            switched = await client.post(
                "/admin/reload", json={"version": version}, headers={"X-API-Key": ADMIN_KEY}
            )
            assert switched.status_code == 200, switched.text
            load.switch_seconds.append(await _every_process_serves(ports, version, started))

    async with httpx.AsyncClient(base_url=proxy_url, timeout=30) as client:
        loops = [client_loop(client, key) for name, key in CLIENT_KEYS.items() if "load" in name]
        await asyncio.gather(switches(client), *loops)
    return load


async def _every_process_serves(ports: list[int], version: str, since: float) -> float:
    """Seconds from ``since`` until every process (asked directly, not through the proxy,
    several times so that both workers answer) serves ``version``."""
    async with httpx.AsyncClient(timeout=10, headers={"X-API-Key": CLIENT_KEYS["ops"]}) as client:
        while True:
            served = set()
            for port in ports:
                for _ in range(4):
                    answer = await client.get(f"http://127.0.0.1:{port}/model")
                    served.add(answer.json()["model_version"])
            if served == {version}:
                return time.monotonic() - since
            assert time.monotonic() - since < SWITCH_SECONDS * 2, f"still serving {served}"
            await asyncio.sleep(0.1)


async def _observed_everywhere(
    proxy_url: str, ports: list[int], version: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shadow with ``version`` (started through the proxy), score ``SHADOWED`` customers
    through the proxy, then ask every process directly for the shadow's report and the
    drift report."""
    admin = {"X-API-Key": ADMIN_KEY}
    async with httpx.AsyncClient(base_url=proxy_url, timeout=30) as client:
        started = await client.post("/admin/shadow", json={"version": version}, headers=admin)
        assert started.status_code == 200, started.text
        await asyncio.sleep(2 * SHARE_SECONDS)  # every worker takes the shadow up
        headers = {"X-API-Key": CLIENT_KEYS["load-0"]}
        for number in range(SHADOWED):
            sent = live_customer(number, f"shadowed-{number}")
            assert (await client.post("/segment", json=sent, headers=headers)).status_code == 200
        await asyncio.sleep(2.5 * SHARE_SECONDS)  # every worker has shared its counts
        shadows, drifts = [], []
        for port in ports:
            base = f"http://127.0.0.1:{port}"
            shadows.append((await client.get(f"{base}/admin/shadow", headers=admin)).json())
            ops = {"X-API-Key": CLIENT_KEYS["ops"]}
            drifts.append((await client.get(f"{base}/drift", headers=ops)).json())
    return shadows, drifts


async def _as_fast_as_possible(
    proxy_url: str, client_name: str, requests: int
) -> tuple[int, float]:
    """How many of ``requests`` sent at once by one client were admitted, and in how long."""
    headers = {"X-API-Key": CLIENT_KEYS[client_name]}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=proxy_url, headers=headers, limits=limits, timeout=30
    ) as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(client.get("/segments") for _ in range(requests)))
        elapsed = time.monotonic() - started
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 429}, set(statuses)
    return statuses.count(200), elapsed


def _check_store(database_url: str, answers: list[dict[str, Any]]) -> None:
    """Every recorded answer is in the history exactly once, with its segment and version;
    each customer's latest row is its newest history row (the store's rescoring after a
    switch may have added rows of its own: they count as history too)."""
    keys = {answer["customer_key"] for answer in answers}
    history = stored_rows(database_url, "assignment_history", keys)
    live = [row for row in history if row["source"] == "single"]
    by_request = {(row["customer_key"], row["avg_credit_limit"]): row for row in live}
    assert len(live) == len(by_request) == len(answers), "an answer was lost or recorded twice"
    for answer in answers:
        row = by_request[(answer["customer_key"], float(answer["avg_credit_limit"]))]
        assert (row["segment_id"], row["model_version"]) == (
            answer["segment_id"],
            answer["model_version"],
        )
    newest = {row["customer_key"]: row for row in history}  # in id order: the last wins
    latest = stored_rows(database_url, "latest_assignments", keys)
    assert len(latest) == len(newest) == len(keys)
    for row in latest:
        newest_row = {name: value for name, value in newest[row["customer_key"]].items()}
        newest_row.pop("id")
        assert row == newest_row, f"latest of {row['customer_key']} is not its newest history"
