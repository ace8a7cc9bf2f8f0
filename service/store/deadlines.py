"""A deadline on every round trip to PostgreSQL, so that a database that hangs fails instead.

A database that stops answering without refusing (a frozen network path, a stuck server)
keeps a socket open and silent: the kernel still acknowledges what is sent, so neither TCP
keepalives nor a server-side ``statement_timeout`` ever fire, and a plain connection waits
for ever. Every wait of psycopg's (a statement, a commit, each chunk of a COPY, a fetch)
goes through :meth:`psycopg.Connection.wait`, which takes a timeout: here each connection
passes its own, and a connection whose wait ran out is closed, since it stopped in the
middle of the protocol. The asynchronous connections of the live group commit keep the
same deadline (:class:`BoundedAsyncConnection`).

Whether the database kept what it was sent is then unknown only when the wait was for a
commit (or a statement in autocommit, its own transaction): anything earlier in a
transaction is rolled back by the server when it finds the connection gone. The same holds
for a connection lost (reset, closed) while a commit was on its way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen

# psycopg raises this private subclass of OperationalError when a wait's timeout runs out
# (public since 3.2 is only the ``timeout`` argument itself); nothing else is taken from it.
from psycopg.errors import _WaitTimeout

_RV = TypeVar("_RV")
_WAIT_INTERVAL = 0.1
"""How often psycopg's own wait wakes up to see whether it was interrupted (its default)."""


class NoAnswer(psycopg.OperationalError):
    """The database did not answer: the deadline passed (the connection is then closed) or
    the connection was lost while a commit was on its way.

    ``outcome_unknown``: the wait was for a commit (or a statement in autocommit), so what
    was sent may have been kept.
    """

    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


_relaxed = threading.local()


@contextmanager
def relaxed(seconds: float) -> Iterator[None]:
    """Let this thread's round trips take up to ``seconds`` each, for operations that are
    long by nature (a migration rebuilding an index, a whole snapshot's upsert)."""
    before = getattr(_relaxed, "seconds", None)
    _relaxed.seconds = seconds
    try:
        yield
    finally:
        _relaxed.seconds = before


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends within ``round_trip_seconds``."""

    round_trip_seconds: float = 5.0
    _committing = False

    def wait(
        self, gen: PQGen[_RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> _RV:
        if timeout is not None:  # psycopg's own timed wait (for notifications): its to handle
            return super().wait(gen, interval=interval, timeout=timeout)
        seconds = _round_trip_seconds(self.round_trip_seconds)
        try:
            return super().wait(gen, interval=interval, timeout=seconds)
        except _WaitTimeout:
            # Stopped mid-protocol: the connection cannot be used again.
            unknown = self.autocommit or self._committing
            self.close()
            raise _timed_out(seconds, unknown=unknown) from None
        except psycopg.OperationalError as error:
            lost = _lost(error, committing=self.autocommit or self._committing)
            if lost is None:
                raise
            raise lost from error

    def commit(self) -> None:
        self._committing = True
        try:
            super().commit()
        finally:
            self._committing = False


class BoundedAsyncConnection(psycopg.AsyncConnection[Any]):
    """The asynchronous connection under the same rule: every wait for the server ends
    within ``round_trip_seconds`` (the live group commit's, on the event loop). Used in
    autocommit, where every statement is its own transaction: a statement that ran out of
    time may have been kept."""

    round_trip_seconds: float = 5.0

    async def wait(
        self, gen: PQGen[_RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> _RV:
        if timeout is not None:
            return await super().wait(gen, interval=interval, timeout=timeout)
        seconds = _round_trip_seconds(self.round_trip_seconds)
        try:
            return await super().wait(gen, interval=interval, timeout=seconds)
        except _WaitTimeout:
            # A timeout, not a cancellation: cancelling would send the server a cancel
            # request over a new connection, to a server that is not answering.
            unknown = self.autocommit
            await self.close()
            raise _timed_out(seconds, unknown=unknown) from None
        except psycopg.OperationalError as error:
            lost = _lost(error, committing=self.autocommit)
            if lost is None:
                raise
            raise lost from error


def _round_trip_seconds(own: float) -> float:
    relaxed_seconds: float | None = getattr(_relaxed, "seconds", None)
    return own if relaxed_seconds is None else relaxed_seconds


def _timed_out(seconds: float, *, unknown: bool) -> NoAnswer:
    return NoAnswer(f"the database did not answer within {seconds:g} s", outcome_unknown=unknown)


def _lost(error: psycopg.OperationalError, *, committing: bool) -> NoAnswer | None:
    """When the connection itself failed (no SQLSTATE: reset, closed, not the database
    refusing) while a commit was on its way: that it may have landed all the same."""
    if error.sqlstate is None and committing:
        return NoAnswer(
            f"the connection was lost before the database answered: {error}",
            outcome_unknown=True,
        )
    return None
