"""Group commit on PostgreSQL, sent by the event loop that serves the requests.

The rules are :class:`~service.store.group_commit.GroupCommit`'s; only the writers differ.
Writer threads cost each group two wake-ups of a thread (the writer's when the group was
queued, the loop's when its commit landed), each waiting for a core that wrk, the loop and
the database already kept busy, and for the GIL: under 16 keyed connections the loop sat
idle a fifth of the time, waiting for commits. Here the loop sends each group on one of
psycopg's asynchronous connections and reads the answer when the socket has it, between
requests (measured side by side on one worker, in alternating 8 s runs: 4,292-5,070 keyed
answers a second against 3,961-4,361 with the two writer threads before).

A writer lives on the event loop it first served: a call from another loop is passed to
that one (tests run several), and ``close`` is called off it (as the application does).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Sequence
from typing import Unpack

from service.store import grouped_writes, postgres_bulk
from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.deadlines import BoundedAsyncConnection
from service.store.errors import (
    StoreUnavailable,
    database_errors,
    driver_errors,
    is_refusal,
    unavailable,
)
from service.store.group_commit import GroupCommit, GroupCommitOptions, Outcome, _Waiting

logger = logging.getLogger(__name__)


class _Lane:
    """One connection of the writer's: at most one group on it at a time."""

    __slots__ = ("connection", "last_used", "number", "suspect")

    def __init__(self, number: int) -> None:
        self.number = number
        self.connection: BoundedAsyncConnection | None = None
        self.last_used = 0.0
        self.suspect = False


class LoopGroupCommit(GroupCommit):
    """Groups sent on ``writers`` asynchronous connections from the event loop."""

    def __init__(self, store: CustomerStore, **options: Unpack[GroupCommitOptions]) -> None:
        super().__init__(**options)
        self._store = store
        self._lanes = [_Lane(number) for number in range(len(self._busy_since))]
        self._free = list(reversed(self._lanes))
        self._sending: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def write(self, block: Assignments) -> Outcome:
        loop = asyncio.get_running_loop()
        home = self._home(loop)
        if home is not loop:
            sent = asyncio.run_coroutine_threadsafe(super().write(block), home)
            return await asyncio.wrap_future(sent)
        return await super().write(block)

    def close(self) -> None:
        """Commit what is queued, then close the connections (blocks until done).

        Raises
        ------
        RuntimeError
            Called on the writer's own event loop while groups are under way: they need
            that loop to finish (call it from another thread, as the application does).
        """
        if self._closed:
            return
        loop = self._loop
        if loop is not None and loop.is_running():
            if _running_on(loop):
                if self._sending or self._turn or not self._queue.empty():
                    raise RuntimeError(
                        "close() waits for groups under way: call it off the event loop"
                    )
            else:
                self._closed = True
                asyncio.run_coroutine_threadsafe(self._drain(), loop).result()
        # What a loop no longer running left under way will not finish: nobody waits for it.
        self._closed = True
        for lane in self._lanes:
            _finish(lane)

    def _home(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """The loop the writer lives on: ``loop`` when it had none, or its own no longer
        runs (a connection of one loop cannot be used from another, and what was under
        way on it will not finish: nobody waits for it any more)."""
        if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
            for lane in self._lanes:
                _finish(lane)
            # New lanes: a group the old loop left under way keeps its own (see _send).
            self._lanes = [_Lane(number) for number in range(len(self._lanes))]
            self._free = list(reversed(self._lanes))
            self._sending = set()
            self._busy_since = [None] * len(self._lanes)
            self._queue = queue.SimpleQueue()
            self._turn = []
            self._loop = loop
        return self._loop

    def _hand_over(self) -> None:
        super()._hand_over()
        self._dispatch()

    def _dispatch(self) -> None:
        """Send what is queued on the free connections, a group each."""
        while self._free and not self._queue.empty():
            first = self._queue.get_nowait()
            assert isinstance(first, list)
            group, _ = self._gather(first)
            lane = self._free.pop()
            assert self._loop is not None
            task = self._loop.create_task(self._send(lane, group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _drain(self) -> None:
        self._hand_over()  # what was written before goes before the end
        while self._sending:
            await asyncio.wait(list(self._sending))
        for lane in self._lanes:
            await _close(lane)

    async def _send(self, lane: _Lane, group: list[_Waiting]) -> None:
        self._busy_since[lane.number] = time.monotonic()
        try:
            settled = await self._commit(lane, group)
            for item, outcome in settled:
                if not item.outcome.done():  # expired, or a request that no longer waits
                    item.outcome.set_result(outcome)
        finally:
            if self._lanes[lane.number] is lane:  # not a lane of a loop left behind
                self._busy_since[lane.number] = None
                self._free.append(lane)
                self._dispatch()

    async def _commit(
        self, lane: _Lane, group: list[_Waiting]
    ) -> Sequence[tuple[_Waiting, Outcome]]:
        """The outcome of each block of ``group`` that was still wanted."""
        try:
            connection = await self._connected(lane)
        except Exception as error:  # nothing was sent
            unconnected = self._unconnected(error, len(group))
            return [(item, unconnected) for item in group]
        claimed = self._claim(group)
        if not claimed:
            return []
        try:
            await self._write(lane, connection, [item.block for item in claimed])
        except Exception as error:  # no request may wait forever on a group that failed
            failure = self._unwritten(error, len(claimed))
            outcomes: Sequence[Outcome] = (
                [failure] * len(claimed)
                if failure is not None
                else [await self._alone(lane, item.block) for item in claimed]
            )
        else:
            outcomes = [None] * len(claimed)
            self._count_commit(len(claimed))
        return list(zip(claimed, outcomes, strict=True))

    async def _connected(self, lane: _Lane) -> BoundedAsyncConnection:
        """The lane's connection, checked after an idle spell or a reported outage (a
        group lost with its connection cannot be safely retried); nothing is sent yet.

        Raises
        ------
        StoreUnavailable
            No usable connection could be had.
        """
        if not self._store.migrated:  # only a store that was down at start-up
            await asyncio.to_thread(self._store.ensure_migrated)
        connection = lane.connection
        idle = time.monotonic() - lane.last_used > grouped_writes.IDLE_CHECK_SECONDS
        if connection is not None and (lane.suspect or idle):
            try:
                await connection.execute("SELECT 1")
            except driver_errors():
                await _close(lane)
                connection = None
        if connection is None:
            try:
                connection = await BoundedAsyncConnection.connect(
                    self._store.driver_url,
                    autocommit=True,  # each group is one statement: its own transaction
                    connect_timeout=self._store.connect_timeout_seconds,
                )
            except database_errors() as error:
                raise unavailable(error) from error
            connection.round_trip_seconds = self._store.round_trip_seconds
            lane.connection = connection
        lane.suspect = False
        lane.last_used = time.monotonic()
        return connection

    async def _write(
        self, lane: _Lane, connection: BoundedAsyncConnection, blocks: Sequence[Assignments]
    ) -> None:
        try:
            await connection.execute(
                postgres_bulk.GROUP_STATEMENT, (postgres_bulk.group_rows(blocks),)
            )
        except database_errors() as error:
            if not is_refusal(error):
                await _close(lane)
            raise unavailable(error) from error
        lane.last_used = time.monotonic()

    async def _alone(self, lane: _Lane, block: Assignments) -> Outcome:
        try:
            # Connected again if the block before failed otherwise than by a refusal.
            await self._write(lane, await self._connected(lane), [block])
        except StoreUnavailable as error:
            return error
        self._count_commit(1)
        return None

    def _suspect_connections(self) -> None:
        for lane in self._lanes:
            lane.suspect = True


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _close(lane: _Lane) -> None:
    connection, lane.connection = lane.connection, None
    if connection is not None:
        try:
            await connection.close()
        except Exception:  # closing a broken connection may fail too: it is gone either way
            logger.debug("closing a group commit connection failed", exc_info=True)


def _finish(lane: _Lane) -> None:
    """Close the lane's connection without its loop (psycopg's close is a coroutine)."""
    connection, lane.connection = lane.connection, None
    if connection is not None:
        connection.pgconn.finish()
