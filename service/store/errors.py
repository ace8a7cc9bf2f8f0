"""What can go wrong with the customer store, and how a database error is told apart."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError

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
    unknown = isinstance(origin, NoAnswer) and origin.outcome_unknown
    return StoreUnavailable(reason(error), refused=is_refusal(error), unknown=unknown)


def reason(error: Exception) -> str:
    """The driver's error in one line (``OperationalError: connection refused``)."""
    origin = getattr(error, "orig", None) or error
    return f"{type(origin).__name__}: {str(origin).strip().splitlines()[0] if str(origin) else ''}"


DRIVER_ERRORS = (psycopg.Error, sqlite3.Error)
# PEP 249's classes for a connection that failed, timed out or was lost (a deadlock or a
# busy SQLite file too): the statement itself may be fine.
_NOT_REFUSALS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
)


def is_refusal(error: Exception) -> bool:
    """The database answered and refused the statement: not a connection or lock problem.

    Takes SQLAlchemy's wrapped errors and the drivers' own.
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
        error = error.orig if isinstance(error.orig, Exception) else error
    return isinstance(error, DRIVER_ERRORS) and not isinstance(error, _NOT_REFUSALS)


def is_lock_conflict(error: BaseException | None) -> bool:
    """Whether the database refused for a lock (a deadlock, a serialisation failure, busy)."""
    origin = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(origin, "sqlstate", None)
    return code in {"40P01", "40001", "55P03"} or "database is locked" in str(origin)
