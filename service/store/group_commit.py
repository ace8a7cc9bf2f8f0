"""Group commit: the keyed answers of concurrent requests kept in one transaction.

Each live ``POST /segment`` with a customer key must be in the store before its answer
leaves (``"recorded": true`` is a promise). One transaction and one commit per request made
every such request wait for all the commits before it, one after another, so adding
connections added no throughput. Here one writer thread per process takes whatever has
queued while the previous commit was under way and commits it together: under load a
commit carries many answers, and an idle service still commits each answer at once (no
timer, so no added latency). Every waiting request is released when its group's commit has
landed, or with the error that kept it out.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from service.store.grouped_writes import GroupWriter

logger = logging.getLogger(__name__)

MAX_GROUP_ROWS = 512
"""Rows in one commit at most; more wait for the next (a larger group is no cheaper per row,
and it would hold its rows' locks longer)."""

Outcome = StoreUnavailable | None
"""What a waiting request learns: None once its rows have committed, else why they did not."""


@dataclass(frozen=True, eq=False)
class _Waiting:
    block: Assignments
    loop: asyncio.AbstractEventLoop
    outcome: asyncio.Future[Outcome]


_STOP = object()


class GroupCommit:
    """One writer thread that commits the blocks of concurrent requests together.

    Parameters
    ----------
    store
        Where the blocks go (through a :class:`GroupWriter` of the writer thread's own).
    max_group_rows
        Rows in one commit at most.
    on_commit
        Called on the writer thread with the number of blocks each successful commit kept.
    """

    def __init__(
        self,
        store: CustomerStore,
        *,
        max_group_rows: int = MAX_GROUP_ROWS,
        on_commit: Callable[[int], None] = lambda blocks: None,
    ) -> None:
        self._writer = GroupWriter(store)
        self._max_group_rows = max_group_rows
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Waiting | object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="store-group-commit", daemon=True)
        self._thread.start()

    def submit(self, block: Assignments) -> asyncio.Future[Outcome]:
        """Queue ``block`` for the next group; the future settles once it is committed or not.

        Called on the event loop. The write happens whether or not the caller still waits
        for it (a client that hung up does not undo its answer).
        """
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Outcome] = loop.create_future()
        if self._closed:
            outcome.set_result(StoreUnavailable("the service is shutting down"))
        else:
            self._queue.put(_Waiting(block, loop, outcome))
        return outcome

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread (blocks until it has)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
            self._writer.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Waiting)
            group, stopping = self._gather(first)
            self._commit(group)
            if stopping:
                return

    def _gather(self, first: _Waiting) -> tuple[list[_Waiting], bool]:
        """``first`` and whatever else has queued meanwhile, up to the group's size."""
        group, rows = [first], len(first.block)
        while rows < self._max_group_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            assert isinstance(item, _Waiting)
            group.append(item)
            rows += len(item.block)
        return group, False

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            self._writer.write([item.block for item in group])
            outcomes: Sequence[Outcome] = [None] * len(group)
            self._on_commit(len(group))
        except StoreUnavailable as error:
            # Refused rows fail their own request only: the others are written one by one.
            # An unreachable store would fail them all again, and slowly: not retried.
            if error.refused and len(group) > 1:
                outcomes = [self._alone(item.block) for item in group]
            else:
                outcomes = [error] * len(group)
        except Exception as error:  # no request may wait forever on a writer that died
            logger.exception("recording %d live answers failed unexpectedly", len(group))
            outcomes = [StoreUnavailable(f"{type(error).__name__}: {error}")] * len(group)
        _settle(group, outcomes)

    def _alone(self, block: Assignments) -> Outcome:
        try:
            self._writer.write([block])
        except StoreUnavailable as error:
            return error
        self._on_commit(1)
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
