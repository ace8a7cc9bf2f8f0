"""What can go wrong with the customer store, and how a database error is told apart."""

from __future__ import annotations

import functools
import sqlite3
import sys
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

if TYPE_CHECKING:
    from service.store.deadlines import NoAnswer


class StoreUnavailable(Exception):
    """The database could not be reached or refused the operation.

    ``refused`` tells the two apart: True when the database answered and refused what it was
    given (a constraint, a trigger, a value it cannot hold), so the same statement would
    fail again and other rows written with it may well succeed alone. ``unknown``: the
    database stopped answering after a commit was sent, so a write may have been kept.
    """

    def __init__(self, reason: str, *, refused: bool = False, unknown: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused
        self.unknown = unknown


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not hand out."""


def unavailable(error: Exception) -> StoreUnavailable:
    """The store's error for a SQLAlchemy or driver error, saying whether it was refused
    and whether what was sent may have been kept all the same."""
    origin = getattr(error, "orig", None) or error
    no_answer = _drivers().no_answer
    unknown = no_answer is not None and isinstance(origin, no_answer) and origin.outcome_unknown
    return StoreUnavailable(reason(error), refused=is_refusal(error), unknown=unknown)


def reason(error: Exception) -> str:
    """The driver's error in one line (``OperationalError: connection refused``)."""
    origin = getattr(error, "orig", None) or error
    return f"{type(origin).__name__}: {str(origin).strip().splitlines()[0] if str(origin) else ''}"


class _Drivers(NamedTuple):
    """The drivers' exception classes that the store tells apart."""

    errors: tuple[type[Exception], ...]
    """Every error of the drivers (PEP 249's ``Error``)."""
    not_refusals: tuple[type[Exception], ...]
    """PEP 249's classes for a connection that failed, timed out or was lost (a deadlock or
    a busy SQLite file too): the statement itself may be fine."""
    no_answer: type[NoAnswer] | None
    """PostgreSQL's missed deadline (:mod:`service.store.deadlines`)."""


_SQLITE = _Drivers(
    errors=(sqlite3.Error,),
    not_refusals=(sqlite3.OperationalError, sqlite3.InterfaceError),
    no_answer=None,
)


def driver_errors() -> tuple[type[Exception], ...]:
    """Every error the drivers in use raise, for ``except`` clauses: sqlite3's, and
    psycopg's once it is loaded (see :func:`_drivers`)."""
    return _drivers().errors


def database_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's errors and :func:`driver_errors`: what a statement on the store may
    raise about the database."""
    return (SQLAlchemyError, *_drivers().errors)


def _drivers() -> _Drivers:
    """sqlite3's classes, and psycopg's once something has loaded it.

    psycopg costs a worker some 8 MB of memory, and a store on SQLite never loads it (the
    PostgreSQL engine does, :mod:`service.store.engine`); until it is loaded none of its
    errors can be raised, so there is nothing of it to catch. Looked up when an error is
    told apart, never on the way of a statement that succeeds.
    """
    return _with_psycopg() if "psycopg" in sys.modules else _SQLITE


@functools.cache
def _with_psycopg() -> _Drivers:
    # Loaded already (by the engine or by whoever imported psycopg): nothing new is paid
    # here, and the import waits for another thread that may be loading it still.
    import psycopg

    from service.store.deadlines import NoAnswer

    return _Drivers(
        errors=(*_SQLITE.errors, psycopg.Error),
        not_refusals=(*_SQLITE.not_refusals, psycopg.OperationalError, psycopg.InterfaceError),
        no_answer=NoAnswer,
    )


def is_refusal(error: Exception) -> bool:
    """The database answered and refused the statement: not a connection or lock problem.

    Takes SQLAlchemy's wrapped errors and the drivers' own.
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
        error = error.orig if isinstance(error.orig, Exception) else error
    drivers = _drivers()
    return isinstance(error, drivers.errors) and not isinstance(error, drivers.not_refusals)


def is_lock_conflict(error: BaseException | None) -> bool:
    """Whether the database refused for a lock (a deadlock, a serialisation failure, busy)."""
    origin = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(origin, "sqlstate", None)
    return code in {"40P01", "40001", "55P03"} or "database is locked" in str(origin)
