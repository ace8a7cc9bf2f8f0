"""Group commit: the keyed answers of concurrent requests kept in one transaction.

Each live ``POST /segment`` with a customer key must be in the store before its answer
leaves (``"recorded": true`` is a promise). One transaction and one commit per request made
every such request wait for all the commits before it, one after another, so adding
connections added no throughput. Here a writer takes whatever has queued while the
previous commit was under way and commits it together: under load a commit carries
many answers, and an idle service still commits each answer at once (no timer, so no added
latency). Every waiting request is released when its group's commit has landed, or with
the error that kept it out.

On SQLite a writer thread does the writing (:class:`ThreadGroupCommit`: sqlite3 has no
asynchronous interface, and its writes are local). On PostgreSQL the event loop sends the
groups itself (:mod:`service.store.loop_group_commit`). Several groups may be under way at
once (``writers``), each on its own connection: concurrent groups are safe for the same
reasons as two worker processes are (see the store's write rule in customer_store).
:func:`group_commit_for` picks the one for a store; both follow :class:`GroupCommit`'s rules.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypedDict, Unpack

from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from service.store.grouped_writes import GroupWriter

logger = logging.getLogger(__name__)

MAX_GROUP_ROWS = 512
"""Rows in one commit at most; more wait for the next (a larger group is no cheaper per row,
and it would hold its rows' locks longer)."""
WAIT_SECONDS = 1.0
"""How long a live answer waits for its commit, when the store is slow, before it goes
out saying so (a commit takes a few milliseconds even under load)."""
WRITERS = 1
"""Groups under way at once per process. On SQLite one: it lets one writer in at a time. On
PostgreSQL one too, sent from the event loop: measured side by side on one worker under 16
keyed connections, one connection answered 4,732-4,810 requests a second (p99 6.2-6.7 ms)
against 4,026-4,209 (p99 6.6-7.6 ms) for two, whose smaller groups cost the loop more per
answer (README)."""

Outcome = StoreUnavailable | None
"""What a waiting request learns: None once its rows have committed, else why they did not
(with ``unknown`` set when they were sent and may still be kept)."""

_QUEUED, _SENT, _WITHDRAWN = range(3)


class _Waiting:
    __slots__ = ("block", "loop", "outcome", "state")

    def __init__(self, block: Assignments, loop: asyncio.AbstractEventLoop) -> None:
        self.block = block
        self.loop = loop
        self.outcome: asyncio.Future[Outcome] = loop.create_future()
        self.state = _QUEUED


_STOP = object()


class GroupCommit:
    """Commits the blocks of concurrent requests together: what both ways of writing share.

    A request waits at most ``wait_seconds`` for its commit. When the store is that late,
    a block not sent yet is withdrawn (it will never be written: the answer can say "not
    recorded"), and one already sent is reported as unknown. While every writer's commit
    has been under way for longer than that, new blocks are not queued at all: a database
    that hangs costs live answers nothing, and they say that they were not recorded.

    Parameters
    ----------
    wait_seconds
        How long a request waits for its commit.
    max_group_rows
        Rows in one commit at most.
    on_commit
        Called with the number of blocks each successful commit kept.
    writers
        Groups under way at once at most (each on a connection of its own).
    """

    def __init__(
        self,
        *,
        wait_seconds: float = WAIT_SECONDS,
        max_group_rows: int = MAX_GROUP_ROWS,
        on_commit: Callable[[int], None] = lambda blocks: None,
        writers: int = WRITERS,
    ) -> None:
        self._wait_seconds = wait_seconds
        self._max_group_rows = max_group_rows
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[list[_Waiting] | object] = queue.SimpleQueue()
        self._turn: list[_Waiting] = []
        """Blocks of the event loop's current turn, not yet handed to the writers."""
        self._turn_lock = threading.Lock()  # close() hands the turn over from its own thread
        self._states = threading.Lock()  # a block is either sent or withdrawn, never both
        self._closed = False
        self._busy_since: list[float | None] = [None] * writers
        """Since when each writer's commit has run (None: the writer is free)."""

    async def write(self, block: Assignments) -> Outcome:
        """Have ``block`` committed with the next group; None once it is, else why not.

        Called on the event loop. A block that was queued is written whether or not its
        caller still waits (a client that hung up does not undo its answer).
        """
        if self._closed:
            return StoreUnavailable("the service is shutting down")
        stalled = self._stalled_for()
        if stalled > self._wait_seconds:
            return StoreUnavailable(f"the store has not finished a commit for {stalled:.1f} s")
        loop = asyncio.get_running_loop()
        item = _Waiting(block, loop)
        with self._turn_lock:
            turn = self._turn
            turn.append(item)
        if len(turn) == 1:  # the turn's first block: its hand-over and its deadline
            loop.call_soon(self._hand_over)
            loop.call_later(self._wait_seconds, self._expire, turn)
        return await item.outcome

    def close(self) -> None:
        """Commit what is queued, then stop the writers (blocks until they have)."""
        raise NotImplementedError

    def _hand_over(self) -> None:
        """Queue the blocks of this turn of the event loop together, with one deadline.

        Queueing each block as it came cost a wake-up per request, and each request's own
        timer as much again: together a tenth of a keyed call. Now the writers are told,
        and a timer set, once a turn.
        """
        with self._turn_lock:
            turn, self._turn = self._turn, []
        if turn:
            self._queue.put(turn)

    def _stalled_for(self) -> float:
        """How long every writer has been inside a commit (0 when one of them is free)."""
        now = time.monotonic()
        return min(0.0 if since is None else now - since for since in self._busy_since)

    def _expire(self, turn: list[_Waiting]) -> None:
        """Settle the requests of a turn whose commit is late: withdrawn if still queued,
        else unknown (those already answered, or gone, are left as they are)."""
        late = [item for item in turn if not item.outcome.done()]
        if not late:
            return
        deadline = f"the store did not commit within {self._wait_seconds:g} s"
        with self._states:
            withdrawn = [item.state == _QUEUED for item in late]
            for item, was_queued in zip(late, withdrawn, strict=True):
                if was_queued:
                    item.state = _WITHDRAWN
        for item, was_queued in zip(late, withdrawn, strict=True):
            if was_queued:
                item.outcome.set_result(StoreUnavailable(f"{deadline}; the row was not sent"))
            else:
                item.outcome.set_result(
                    StoreUnavailable(
                        f"{deadline}; the row was sent and may yet be kept", unknown=True
                    )
                )

    def _gather(self, first: list[_Waiting]) -> tuple[list[_Waiting], bool]:
        """``first`` and whatever else has queued meanwhile, until the group has its rows
        (a turn's blocks are never split: the group may pass them by one turn's worth).
        Also whether the writer is told to stop."""
        group, rows = list(first), sum(len(item.block) for item in first)
        while rows < self._max_group_rows:
            try:
                turn = self._queue.get_nowait()
            except queue.Empty:
                break
            if turn is _STOP:
                return group, True
            assert isinstance(turn, list)
            group += turn
            rows += sum(len(item.block) for item in turn)
        return group, False

    def _claim(self, group: list[_Waiting]) -> list[_Waiting]:
        """The blocks of ``group`` that are still wanted, marked as sent."""
        with self._states:
            wanted = [item for item in group if item.state == _QUEUED]
            for item in wanted:
                item.state = _SENT
        return wanted

    def _count_commit(self, blocks: int) -> None:
        """Tell ``on_commit`` of a commit that landed: its failing must neither kill a
        writer nor turn rows that are kept into rows reported unknown."""
        try:
            self._on_commit(blocks)
        except Exception:
            logger.exception("counting a commit of %d live answers failed", blocks)

    def _unconnected(self, error: Exception, count: int) -> StoreUnavailable:
        """What the requests of a group that could not be sent learn (nothing was sent)."""
        if not isinstance(error, StoreUnavailable):
            logger.exception("preparing to record %d live answers failed", count)
            error = StoreUnavailable(f"{type(error).__name__}: {error}")
        self._suspect_connections()
        return error

    def _unwritten(self, error: Exception, count: int) -> StoreUnavailable | None:
        """What the requests of a group whose write failed learn; None when the database
        refused some of its rows, and each block is to be written alone (refused rows fail
        their own request only: an unreachable store would fail them all again, and
        slowly, so that is not retried)."""
        if not isinstance(error, StoreUnavailable):  # a bug, not the store
            logger.exception("recording %d live answers failed unexpectedly", count)
            return StoreUnavailable(f"{type(error).__name__}: {error}", unknown=True)
        if error.refused and count > 1:
            return None
        self._suspect_connections()
        return error

    def _suspect_connections(self) -> None:
        """After a failure to reach the store, every connection is checked before its next
        group (a group lost with its connection cannot be safely retried)."""
        raise NotImplementedError


class GroupCommitOptions(TypedDict, total=False):
    """:class:`GroupCommit`'s settings, as keywords."""

    wait_seconds: float
    max_group_rows: int
    on_commit: Callable[[int], None]
    writers: int


def group_commit_for(store: CustomerStore, **options: Unpack[GroupCommitOptions]) -> GroupCommit:
    """The group commit for ``store``: from the event loop on PostgreSQL, by a writer
    thread on SQLite."""
    if store.dialect == "postgresql":
        # Here, not at the top: it loads psycopg, which a store on SQLite never needs.
        from service.store.loop_group_commit import LoopGroupCommit

        return LoopGroupCommit(store, **options)
    return ThreadGroupCommit(store, **options)


class ThreadGroupCommit(GroupCommit):
    """Writer threads that commit the groups, each through a :class:`GroupWriter` (and a
    connection) of its own."""

    def __init__(self, store: CustomerStore, **options: Unpack[GroupCommitOptions]) -> None:
        super().__init__(**options)
        writers = len(self._busy_since)
        self._writers = [GroupWriter(store) for _ in range(writers)]
        self._threads = [
            threading.Thread(
                target=self._run, args=(number,), name=f"store-group-commit-{number}", daemon=True
            )
            for number in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hand_over()  # what was written before goes before the end
            for _ in self._threads:
                self._queue.put(_STOP)  # after every queued block: each thread takes one
            for thread in self._threads:
                thread.join()
            for writer in self._writers:
                writer.close()

    def _run(self, number: int) -> None:
        writer = self._writers[number]
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, list)
            group, stopping = self._gather(first)
            self._busy_since[number] = time.monotonic()
            try:
                self._commit(writer, group)
            finally:
                self._busy_since[number] = None
            if stopping:
                return

    def _commit(self, writer: GroupWriter, group: list[_Waiting]) -> None:
        try:
            writer.connect()
        except Exception as error:  # nothing was sent; the writer thread must live on
            _settle(group, [self._unconnected(error, len(group))] * len(group))
            return
        group = self._claim(group)
        if not group:
            return
        try:
            writer.write([item.block for item in group])
        except Exception as error:  # no request may wait forever on a writer that failed
            failure = self._unwritten(error, len(group))
            outcomes: Sequence[Outcome] = (
                [failure] * len(group)
                if failure is not None
                else [self._alone(writer, item.block) for item in group]
            )
        else:
            outcomes = [None] * len(group)
            self._count_commit(len(group))
        _settle(group, outcomes)

    def _suspect_connections(self) -> None:
        for writer in self._writers:
            writer.suspect()

    def _alone(self, writer: GroupWriter, block: Assignments) -> Outcome:
        try:
            writer.write([block])
        except StoreUnavailable as error:
            return error
        self._count_commit(1)
        return None


def _settle(group: Sequence[_Waiting], outcomes: Sequence[Outcome]) -> None:
    """Release every waiting request, with one wake-up per event loop (not per request)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]] = {}
    for item, outcome in zip(group, outcomes, strict=True):
        by_loop.setdefault(item.loop, []).append((item.outcome, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_set_outcomes, settled)
        except RuntimeError:  # that loop has closed: nobody is waiting any more
            logger.debug("an event loop closed before its writes were settled")


def _set_outcomes(settled: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in settled:
        if not future.done():  # a request cancelled (timed out) while its write ran
            future.set_result(outcome)
