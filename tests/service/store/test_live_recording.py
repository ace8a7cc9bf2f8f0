"""Live answers with a customer key (``POST /segment``): committed in groups, every
``"recorded": true`` true, latest always the newest history, nothing lost on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from segmentation.artifact import read_latest
from segmentation.features import FEATURES
from service.store import grouped_writes
from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from service.store.group_commit import GroupCommit, Outcome, group_commit_for
from service.store.grouped_writes import GroupWriter
from tests.service.conftest import serve, settings_for
from tests.service.processes import service_process, wait_for_log
from tests.service.store.conftest import set_connections
from tests.service.store.test_customer_store import refuse_latest_rows_for

POISON = "poison"
"""A key the database refuses (a trigger raises on its latest row)."""


def live_customer(number: int, key: str) -> dict[str, Any]:
    """A customer whose credit limit (10,000 + number) tells its request apart from every
    other; the counts vary so that the requests fall into every segment."""
    return {
        "customer_key": key,
        "avg_credit_limit": 10_000 + number,
        "total_credit_cards": 1 + number % 10,
        "total_visits_bank": number % 6,
        "total_visits_online": (number * 7) % 16,
        "total_calls_made": (number * 3) % 11,
    }


def stored_rows(database_url: str, table: str, keys: set[str]) -> list[dict[str, Any]]:
    """Rows of ``table`` for these customers (history in id order)."""
    store = CustomerStore(database_url)
    order = " ORDER BY id" if table == "assignment_history" else ""
    with store.engine.connect() as connection:
        rows = [
            dict(row._mapping) for row in connection.execute(text(f"SELECT * FROM {table}{order}"))
        ]
    store.dispose()
    return [row for row in rows if row["customer_key"] in keys]


def stored_keys(store: CustomerStore) -> list[str]:
    """Every key in the store's history, one per row, sorted."""
    with store.engine.connect() as connection:
        return sorted(
            connection.execute(text("SELECT customer_key FROM assignment_history")).scalars()
        )


def check_store_against_answers(database_url: str, answers: list[dict[str, Any]]) -> None:
    """Every answer said recorded is in the history once, with its segment and version;
    nothing else is; and each customer's latest row is its newest history row."""
    keys = {answer["customer_key"] for answer in answers}
    history = stored_rows(database_url, "assignment_history", keys)
    recorded = [answer for answer in answers if answer["recorded"]]
    by_request = {(row["customer_key"], row["avg_credit_limit"]): row for row in history}
    assert len(history) == len(by_request) == len(recorded), "an answer was recorded twice"
    for answer in recorded:
        row = by_request[(answer["customer_key"], float(answer["avg_credit_limit"]))]
        assert (row["segment_id"], row["model_version"], row["source"]) == (
            answer["segment_id"],
            answer["model_version"],
            "single",
        )
    newest = {row["customer_key"]: row for row in history}  # in id order: the last wins
    latest = {
        row["customer_key"]: row for row in stored_rows(database_url, "latest_assignments", keys)
    }
    assert set(latest) == set(newest)
    for key, row in latest.items():
        newest_row = {name: value for name, value in newest[key].items() if name != "id"}
        assert row == newest_row, f"latest of {key} is not its newest history entry"


async def burst(
    client: httpx.AsyncClient, keys: list[str], per_key: int, *, first: int = 0
) -> list[dict[str, Any]]:
    """``per_key`` concurrent requests for each key, all at once, numbered from ``first``;
    the answers, each with the credit limit that was sent."""

    async def one(number: int) -> dict[str, Any]:
        sent = live_customer(number, keys[number % len(keys)])
        response = await client.post("/segment", json=sent)
        assert response.status_code == 200, response.text
        return {**response.json(), "avg_credit_limit": sent["avg_credit_limit"]}

    count = len(keys) * per_key
    return list(await asyncio.gather(*(one(n) for n in range(first, first + count))))


# Two real worker processes, hundreds of concurrent keyed calls.


@contextmanager
def two_workers(
    models_dir: Path, tmp_path: Path, database_url: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m service --workers 2`` on ``database_url``, once both workers have started;
    yields the process and its base URL."""
    with service_process(models_dir, tmp_path, 2, database_url=database_url) as (
        process,
        port,
        log,
    ):
        wait_for_log(process, log, "Application startup complete.", 2)
        yield process, f"http://127.0.0.1:{port}"


def http_client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60)


def rounds_on_two_workers(
    models_dir: Path,
    tmp_path: Path,
    database_url: str,
    keys: list[str],
    *,
    per_key: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """``rounds`` bursts of ``per_key`` concurrent calls for each key, one after another, on
    two worker processes that then stop cleanly; every answer."""
    with two_workers(models_dir, tmp_path, database_url) as (process, base_url):

        async def run() -> list[dict[str, Any]]:
            async with http_client(base_url, connections=64) as client:
                answers: list[dict[str, Any]] = []
                for round_number in range(rounds):
                    first = round_number * len(keys) * per_key
                    answers += await burst(client, keys, per_key=per_key, first=first)
                return answers

        answers = asyncio.run(run())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert len(answers) == rounds * len(keys) * per_key
    assert all(answer["recorded"] is True for answer in answers)
    return answers


@pytest.mark.slow
def test_concurrent_keyed_calls_on_two_workers_are_recorded_exactly_as_answered(
    models_dir: Path, tmp_path: Path, database_url: str
) -> None:
    keys = [f"live-{number}" for number in range(12)]
    # The second round finds every customer known.
    answers = rounds_on_two_workers(models_dir, tmp_path, database_url, keys, per_key=25, rounds=2)
    assert {answer["model_version"] for answer in answers} == {read_latest(models_dir)}
    assert len({answer["segment_id"] for answer in answers}) > 1
    check_store_against_answers(database_url, answers)


@pytest.mark.slow
def test_hundreds_of_concurrent_writes_per_key_keep_latest_the_newest_history(
    models_dir: Path, tmp_path: Path, database_url: str
) -> None:
    """Issue 18's probe: hundreds of calls for the same customer at once, on two workers,
    repeated; the customer's latest row must always be the newest of its history."""
    keys = ["hot-1", "hot-2", "hot-3"]
    answers = rounds_on_two_workers(models_dir, tmp_path, database_url, keys, per_key=200, rounds=3)
    check_store_against_answers(database_url, answers)


@pytest.mark.slow
def test_sigterm_during_a_burst_loses_none_of_the_answered_writes(
    models_dir: Path, tmp_path: Path, database_url: str
) -> None:
    keys = [f"term-{number}" for number in range(40)]
    with two_workers(models_dir, tmp_path, database_url) as (process, base_url):

        async def run() -> list[dict[str, Any]]:
            answered: list[dict[str, Any]] = []
            async with http_client(base_url, connections=32) as client:
                numbers = iter(range(3000))

                async def client_loop() -> None:
                    for number in numbers:
                        sent = live_customer(number, keys[number % len(keys)])
                        try:
                            response = await client.post("/segment", json=sent)
                        except httpx.TransportError:
                            return  # refused or cut off by the shutdown: never answered
                        assert response.status_code == 200, response.text
                        limit = sent["avg_credit_limit"]
                        answered.append({**response.json(), "avg_credit_limit": limit})

                async def terminate_once_answering() -> None:
                    while len(answered) < 200:
                        await asyncio.sleep(0.001)
                    process.send_signal(signal.SIGTERM)

                loops = (client_loop() for _ in range(32))
                await asyncio.gather(terminate_once_answering(), *loops)
            return answered

        answered = asyncio.run(run())
        assert process.wait(timeout=60) == 0
    assert 200 <= len(answered) < 3000
    assert all(answer["recorded"] is True for answer in answered)
    # The answered writes are all there; writes whose answer was lost may be too.
    history = stored_rows(database_url, "assignment_history", set(keys))
    stored = {(row["customer_key"], row["avg_credit_limit"], row["segment_id"]) for row in history}
    for answer in answered:
        assert (
            answer["customer_key"],
            float(answer["avg_credit_limit"]),
            answer["segment_id"],
        ) in stored
    assert len(stored) == len(history), "a write was recorded twice"


# Failures part-way through a group.


async def test_a_refused_answer_in_a_group_is_the_only_one_not_recorded(
    models_dir: Path, database_url: str
) -> None:
    keys = [*(f"fine-{number}" for number in range(19)), POISON]
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        refuse_latest_rows_for(CustomerStore(database_url), POISON)
        answers = await burst(client, keys, per_key=10)
    refused = [answer for answer in answers if answer["customer_key"] == POISON]
    kept = [answer for answer in answers if answer["customer_key"] != POISON]
    assert refused and all(answer["recorded"] is False for answer in refused)
    assert kept and all(answer["recorded"] is True for answer in kept)
    check_store_against_answers(database_url, answers)


def block(key: str, number: int) -> Assignments:
    return Assignments(
        customer_keys=[key],
        segment_ids=["branch-loyal"],
        features=np.full((1, len(FEATURES)), float(number)),
        confidence=[0.5],
        atypical=[False],
        model_version="v1",
        source="single",
        assigned_at=datetime.now(UTC),
    )


@contextmanager
def writes_held(database_url: str) -> Iterator[None]:
    """Another connection holds the write lock until the end, so writes queue behind it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        holder = sqlite3.connect(url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("COMMIT")
            holder.close()
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as locking:
        locking.execute("LOCK TABLE latest_assignments IN EXCLUSIVE MODE")
        yield


def queued_now(writer: GroupCommit, assignments: Assignments) -> asyncio.Task[Outcome]:
    """``assignments`` on their way to ``writer`` (queued at the loop's next turn)."""
    return asyncio.create_task(writer.write(assignments))


async def queued_behind_a_held_lock(
    writer: GroupCommit, database_url: str, keys: list[str]
) -> list[Outcome]:
    """One block that takes the writer to the database, where a held lock stops it, then
    ``keys``' blocks queued behind it; their outcomes once the lock is let go."""
    with writes_held(database_url):
        first = queued_now(writer, block(f"first-{keys[0]}", 0))
        await asyncio.sleep(0.2)  # the writer has taken it and waits on the lock
        queued = [queued_now(writer, block(key, number)) for number, key in enumerate(keys)]
        await asyncio.sleep(0)  # they are in the queue
    assert await first is None
    return list(await asyncio.gather(*queued))


def test_a_group_larger_than_one_statement_is_kept_whole_in_order(database_url: str) -> None:
    # 2,500 rows: more than one multi-row statement takes on SQLite; keys given twice keep
    # their last row as latest, and the history keeps every row in the order it came.
    keys = [f"many-{number % 2_000}" for number in range(2_500)]
    writer = GroupWriter(CustomerStore(database_url))
    writer.write([block(key, number) for number, key in enumerate(keys)])
    writer.close()
    history = stored_rows(database_url, "assignment_history", set(keys))
    assert [(row["customer_key"], row["avg_credit_limit"]) for row in history] == [
        (key, float(number)) for number, key in enumerate(keys)
    ]
    latest = stored_rows(database_url, "latest_assignments", set(keys))
    newest = {key: float(number) for number, key in enumerate(keys)}
    assert {row["customer_key"]: row["avg_credit_limit"] for row in latest} == newest


async def test_blocks_queued_behind_a_commit_share_the_next_one_and_a_refusal_fails_alone(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    refuse_latest_rows_for(store, POISON)
    commits: list[int] = []
    # One writer thread: a second would take some of the queued blocks for a group of its own.
    writer = group_commit_for(store, wait_seconds=30, on_commit=commits.append, writers=1)
    try:
        together = await queued_behind_a_held_lock(
            writer, database_url, [f"a{n}" for n in range(16)]
        )
        assert together == [None] * 16
        assert commits == [1, 16]
        commits.clear()
        poisoned = [*(f"b{n}" for n in range(8)), POISON, *(f"b{n}" for n in range(8, 16))]
        outcomes = await queued_behind_a_held_lock(writer, database_url, poisoned)
    finally:
        await asyncio.to_thread(writer.close)
    refusal = outcomes.pop(8)
    assert isinstance(refusal, StoreUnavailable) and refusal.refused
    assert outcomes == [None] * 16
    # The group was refused as a whole, then its blocks were written one by one.
    assert commits == [1] * 17
    assert stored_keys(store) == sorted(
        ["first-a0", "first-b0", *(f"a{n}" for n in range(16)), *(f"b{n}" for n in range(16))]
    )
    store.dispose()


async def test_unreachable_store_fails_the_whole_group_at_once() -> None:
    store = CustomerStore("postgresql://postgres@127.0.0.1:1/unreachable")
    writer = group_commit_for(store)
    try:
        outcomes = await asyncio.gather(*(writer.write(block(f"k{n}", n)) for n in range(5)))
    finally:
        await asyncio.to_thread(writer.close)
        store.dispose()
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert not any(outcome.refused for outcome in outcomes if outcome is not None)


async def test_writes_queued_at_close_are_committed_and_later_ones_refused(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    writer = group_commit_for(store, wait_seconds=30)
    with writes_held(database_url):
        pending = [queued_now(writer, block(f"k{n}", n)) for n in range(10)]
        await asyncio.sleep(0)
        closing = asyncio.get_running_loop().run_in_executor(None, writer.close)
        await asyncio.sleep(0.1)
    await closing
    assert await asyncio.gather(*pending) == [None] * 10
    late = await writer.write(block("late", 1))
    assert isinstance(late, StoreUnavailable) and "shutting down" in str(late)
    store.dispose()


async def test_a_commit_whose_counting_fails_is_still_recorded_and_the_writer_goes_on(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    store.migrate()

    def broken_counter(blocks: int) -> None:
        raise OSError("no space left on device")

    writer = group_commit_for(store, on_commit=broken_counter)
    try:
        assert await writer.write(block("first", 1)) is None
        assert await writer.write(block("second", 2)) is None
    finally:
        await asyncio.to_thread(writer.close)
    assert stored_keys(store) == ["first", "second"]
    store.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_before_the_next_group(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grouped_writes, "IDLE_CHECK_SECONDS", 0.0)
    store = CustomerStore(postgres_url)
    store.migrate()
    writer = group_commit_for(store)
    try:
        assert await writer.write(block("before", 1)) is None
        set_connections(postgres_url, allowed=False)  # drops every open connection
        set_connections(postgres_url, allowed=True)
        assert await writer.write(block("after", 2)) is None
    finally:
        await asyncio.to_thread(writer.close)
    assert stored_keys(store) == ["after", "before"]
    store.dispose()


def test_a_writer_told_of_an_outage_checks_its_connection_before_the_next_group(
    postgres_url: str,
) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    unaware, told = GroupWriter(store), GroupWriter(store)
    try:
        for writer in (unaware, told):
            writer.write([block("before", 1)])
        set_connections(postgres_url, allowed=False)  # drops every open connection
        set_connections(postgres_url, allowed=True)
        told.suspect()
        told.write([block("after", 2)])
        # Used a moment ago and not told, the other sends its group on a dead connection.
        with pytest.raises(StoreUnavailable):
            unaware.write([block("lost", 3)])
    finally:
        unaware.close()
        told.close()
    assert stored_keys(store) == ["after", "before", "before"]
    store.dispose()


@pytest.mark.parametrize("writers", [1, 2])
async def test_a_late_commit_withdraws_what_was_not_sent_and_says_what_was_is_unknown(
    database_url: str, writers: int
) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    writer = group_commit_for(store, wait_seconds=1.0, writers=writers)
    sent_keys = [f"sent-{n}" for n in range(writers)]
    try:
        with writes_held(database_url):
            sent = []
            for n, key in enumerate(sent_keys):
                sent.append(queued_now(writer, block(key, n)))
                await asyncio.sleep(0.3)  # a writer has taken it and waits on the lock
            queued = [queued_now(writer, block(f"queued-{n}", n)) for n in range(3)]
            outcomes = await asyncio.gather(*sent, *queued)
            # Every writer is still stuck: a new block is not even queued.
            refused = await writer.write(block("refused", 9))
    finally:
        # Off the loop, as the application closes it: the stuck groups finish first.
        await asyncio.to_thread(writer.close)
    late, withdrawn = outcomes[:writers], outcomes[writers:]
    assert all(isinstance(o, StoreUnavailable) and o.unknown for o in late)
    assert all(isinstance(o, StoreUnavailable) and not o.unknown for o in withdrawn)
    assert isinstance(refused, StoreUnavailable) and not refused.unknown
    assert "has not finished a commit" in str(refused)
    # The groups that were sent landed once the lock went; nothing reported unsent did.
    assert stored_keys(store) == sent_keys
    store.dispose()
