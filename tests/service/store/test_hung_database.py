"""Issue 18, item 3: a PostgreSQL that stops answering without refusing, on a real TCP path
that the test freezes. Live answers keep coming at once and say they were not recorded,
readiness says so within its deadline, scoring without the store is not slowed, and no
write reported as failed is kept once the path thaws (a write whose fate was unknown says
so in its answer)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from service.store.group_commit import WAIT_SECONDS
from tests.service.processes import service_process, wait_for_log
from tests.service.store.tcp_relay import TcpRelay
from tests.service.store.test_live_recording import live_customer, stored_rows

FROZEN_SECONDS = 8.0
STORE_TIMEOUT_SECONDS = 2.0
"""The service's deadline on each round trip to the database, in this test."""


def live_call_seconds(log: Path) -> list[float]:
    """How long each ``POST /segment`` took by the service's access log."""
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [
        line["duration_ms"] / 1000
        for line in lines
        if line.get("logger") == "service.access" and line.get("route") == "/segment"
    ]


async def keep_calling(
    client: httpx.AsyncClient, numbers: range, until: float
) -> list[tuple[dict[str, Any], float]]:
    """Keyed calls one after another until ``until``: each answer with its time."""
    answered = []
    for number in numbers:
        if time.monotonic() >= until:
            break
        sent = live_customer(number, f"crm-{number % 50}")
        started = time.monotonic()
        response = await client.post("/segment", json=sent)
        assert response.status_code == 200, response.text
        answer = {**response.json(), "avg_credit_limit": sent["avg_credit_limit"]}
        answered.append((answer, time.monotonic() - started))
    return answered


async def probe_readiness(client: httpx.AsyncClient, until: float) -> list[tuple[str, float]]:
    probes = []
    while time.monotonic() < until:
        started = time.monotonic()
        response = await client.get("/ready")
        probes.append((response.json()["status"], time.monotonic() - started))
        await asyncio.sleep(0.5)
    return probes


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def through_a_freeze(base_url: str, relay: TcpRelay) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        before = await keep_calling(client, range(0, 20), until=time.monotonic() + 30)
        assert all(answer["recorded"] is True for answer, _ in before)
        assert (await client.get("/ready")).json()["status"] == "ready"

        relay.freeze()
        until = time.monotonic() + FROZEN_SECONDS
        callers = [
            keep_calling(client, range(start, 10**6, 8), until) for start in range(1000, 1008)
        ]
        batch = [live_customer(number, "unused") for number in range(1000)]
        for customer in batch:
            del customer["customer_key"]
        frozen = await asyncio.gather(
            *callers,
            probe_readiness(client, until),
            timed(client.post("/segment/batch", json={"customers": batch})),
            timed(client.get("/customers/crm-1")),
        )
        relay.thaw()

        deadline = time.monotonic() + 60
        while (await client.get("/ready")).json()["status"] != "ready":
            assert time.monotonic() < deadline, "the store never came back"
            await asyncio.sleep(0.2)
        after = await keep_calling(client, range(10**6, 10**6 + 20), until=time.monotonic() + 30)
    return {
        "before": before,
        "during": [item for caller in frozen[: len(callers)] for item in caller],
        "probes": frozen[len(callers)],
        "batch": frozen[len(callers) + 1],
        "lookup": frozen[len(callers) + 2],
        "after": after,
    }


@pytest.mark.slow
def test_a_database_that_hangs_costs_live_answers_nothing_and_no_failed_write_lands(
    models_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    database = make_url(postgres_url)
    with TcpRelay((database.host or "127.0.0.1", database.port or 5432)) as relay:
        relayed = database.set(port=relay.port).render_as_string(hide_password=False)
        environment = {"STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT_SECONDS)}
        with service_process(
            models_dir, tmp_path, 1, database_url=relayed, environment=environment
        ) as (process, port, log):
            wait_for_log(process, log, "Application startup complete.", 1)
            seen = asyncio.run(through_a_freeze(f"http://127.0.0.1:{port}", relay))
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
            served = live_call_seconds(log)
        time.sleep(1)  # statements the relay delivered late have run

    # No live answer waits longer than its commit's deadline, by the service's own clock
    # (its access log: from the request's arrival to its answer)...
    assert max(served) < WAIT_SECONDS + 0.5, sorted(served)[-10:]
    during = seen["during"]
    times = sorted(seconds for _, seconds in during)
    # ...nor, seen from the client, by more than scheduling on this busy machine. The client's
    # clock also counts its own process and the kernel: with either group commit, about one
    # run in five had a call or two taking up to 3.0 s end to end while the service's
    # clock never passed 1.1 s.
    assert times[-1] < WAIT_SECONDS + STORE_TIMEOUT_SECONDS + 1.0, times[-10:]
    # Once the store is known to hang, answers do not wait for it at all.
    assert times[len(times) * 9 // 10] < WAIT_SECONDS / 4, times[len(times) * 9 // 10]
    assert sum(answer["recorded"] is False for answer, _ in during) > len(during) // 2

    statuses = [status for status, _ in seen["probes"]]
    assert "degraded" in statuses, statuses
    assert max(seconds for _, seconds in seen["probes"]) < 2.0, seen["probes"]

    batch, batch_seconds = seen["batch"]
    assert batch.status_code == 200 and len(batch.json()["results"]) == 1000
    assert batch_seconds < 2.0, batch_seconds
    lookup, lookup_seconds = seen["lookup"]
    assert lookup.status_code in {200, 503}, lookup.text
    assert lookup_seconds < 3 * STORE_TIMEOUT_SECONDS + 3, lookup_seconds

    answers = [answer for part in ("before", "during", "after") for answer, _ in seen[part]]
    assert all(answer["recorded"] is True for answer, _ in seen["after"])
    history = stored_rows(postgres_url, "assignment_history", {a["customer_key"] for a in answers})
    kept = {(row["customer_key"], row["avg_credit_limit"]) for row in history}
    assert len(kept) == len(history), "an answer was recorded twice"
    for answer in answers:
        request = (answer["customer_key"], float(answer["avg_credit_limit"]))
        if answer["recorded"]:
            assert request in kept, answer
        elif not answer.get("recording_unknown"):
            assert request not in kept, f"reported as not recorded, yet kept: {answer}"
