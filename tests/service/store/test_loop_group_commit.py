"""PostgreSQL's group commit, sent by the event loop: what differs from writer threads
(the rules they share are tested on both stores in test_live_recording)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from service.store.customer_store import CustomerStore
from service.store.group_commit import Outcome, ThreadGroupCommit, group_commit_for
from service.store.loop_group_commit import LoopGroupCommit
from tests.service.store.test_live_recording import block, queued_now, stored_keys, writes_held


def commit_threads() -> list[str]:
    return [
        thread.name for thread in threading.enumerate() if thread.name.startswith("store-group")
    ]


async def test_postgresql_groups_are_sent_by_the_loop_and_sqlite_ones_by_a_thread(
    postgres_url: str, tmp_path: Path
) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    before = commit_threads()
    writer = group_commit_for(store)
    try:
        assert isinstance(writer, LoopGroupCommit)
        outcomes = await asyncio.gather(*(writer.write(block(f"k{n}", n)) for n in range(20)))
        assert outcomes == [None] * 20
        assert commit_threads() == before  # no writer thread was started
    finally:
        await asyncio.to_thread(writer.close)
    assert stored_keys(store) == sorted(f"k{n}" for n in range(20))
    store.dispose()
    sqlite_store = CustomerStore(f"sqlite:///{tmp_path / 'store.db'}")
    threaded = group_commit_for(sqlite_store)
    try:
        assert isinstance(threaded, ThreadGroupCommit)
        assert len(commit_threads()) == len(before) + 1
    finally:
        threaded.close()
        sqlite_store.dispose()


async def test_a_write_from_another_event_loop_is_committed_by_the_writers_loop(
    postgres_url: str,
) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    writer = group_commit_for(store)
    try:
        assert await writer.write(block("home", 1)) is None
        # A second loop, on a thread of its own, while the writer's loop keeps running.
        elsewhere = await asyncio.to_thread(asyncio.run, writer.write(block("elsewhere", 2)))
        assert elsewhere is None
        assert await writer.write(block("home-again", 3)) is None
    finally:
        await asyncio.to_thread(writer.close)
    assert stored_keys(store) == ["elsewhere", "home", "home-again"]
    store.dispose()


async def test_closing_on_the_writers_own_loop_with_a_group_under_way_is_refused(
    postgres_url: str,
) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    writer = group_commit_for(store, wait_seconds=30)
    with writes_held(postgres_url):
        stuck = queued_now(writer, block("stuck", 1))
        await asyncio.sleep(0.2)  # sent, and waiting on the lock
        with pytest.raises(RuntimeError, match="off the event loop"):
            writer.close()
    # The group under way was not dropped: it lands once the lock goes.
    assert await stuck is None
    await asyncio.to_thread(writer.close)
    assert stored_keys(store) == ["stuck"]
    store.dispose()


def test_a_writer_whose_loop_stopped_with_a_group_under_way_serves_the_next_loop(
    postgres_url: str,
) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    writer = group_commit_for(store, wait_seconds=30)
    first_loop = asyncio.new_event_loop()
    left: list[asyncio.Task[Outcome]] = []

    async def leave_a_group_under_way() -> None:
        left.append(first_loop.create_task(writer.write(block("stuck", 1))))
        await asyncio.sleep(0.2)  # sent, and waiting on the lock

    try:
        with writes_held(postgres_url):
            first_loop.run_until_complete(leave_a_group_under_way())
        # That loop no longer runs: the next one gets the writer's connection back at once
        # (its group would otherwise hold it for ever, and this write wait out 30 s).
        started = time.monotonic()
        assert asyncio.run(writer.write(block("next", 2))) is None
        assert time.monotonic() - started < 5
        assert not left[0].done()  # its loop stopped before its answer came
    finally:
        writer.close()
        pending = asyncio.all_tasks(first_loop)
        for task in pending:
            task.cancel()
        first_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        first_loop.close()
    assert "next" in stored_keys(store)
    store.dispose()
