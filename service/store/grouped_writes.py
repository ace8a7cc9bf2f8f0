"""Many small blocks in one transaction, on a connection kept by one writer thread.

The live route's group commits (see :mod:`service.store.group_commit`) write a few dozen
rows hundreds of times a second. Going through the pool and SQLAlchemy's statement
machinery cost more than the write itself (a checkout with its ping, a compiled
``executemany``, a dict per row), and all of it under the GIL that the event loop needs.
Here the writer keeps one driver connection and hands each group to the driver in one
call: on PostgreSQL a single statement (one round trip, atomic on its own), on SQLite two
``executemany`` inside ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.pool import PoolProxiedConnection

from service.store import postgres_bulk
from service.store.assignments import COLUMNS, Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import database_errors, driver_errors, is_refusal, unavailable
from service.store.statements import COLUMN_LIST, REPLACES_LATEST, UPDATES
from service.store.tables import latest_assignments

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 1.0
"""A connection unused for longer is pinged before its next group (as the pool would)."""

_ROW_PLACEHOLDERS = "(" + ", ".join("?" for _ in COLUMNS) + ")"


_SQLITE_ROWS_PER_STATEMENT = 1_000
"""Rows in one statement at most (SQLite takes at most 32,766 parameters in one)."""


@functools.lru_cache(maxsize=128)
def _sqlite_statement(table: str, rows: int) -> str:
    """One statement writing ``rows`` rows into ``table`` (latest: an upsert), prepared once
    per size by sqlite3.

    One statement, not ``executemany``: sqlite3 lets go of the GIL around every step, so a
    group written row by row took the GIL back twice per row from an event loop that was
    busy serving, and each time waited for it.
    """
    insert = f"INSERT INTO {table} ({COLUMN_LIST}) VALUES " + ", ".join([_ROW_PLACEHOLDERS] * rows)
    if table == "latest_assignments":
        insert += f" ON CONFLICT (customer_key) DO UPDATE SET {UPDATES} WHERE {REPLACES_LATEST}"
    return insert


def _sqlite_insert(driver: Any, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
        part = rows[start : start + _SQLITE_ROWS_PER_STATEMENT]
        driver.execute(_sqlite_statement(table, len(part)), [v for row in part for v in row])


class GroupWriter:
    """Writes groups of blocks, all or none, on a connection of its own.

    Not thread-safe: one writer thread owns it. A connection that failed is dropped and a
    new one taken for the next group.
    """

    def __init__(self, store: CustomerStore) -> None:
        self._store = store
        self._connection: PoolProxiedConnection | None = None
        self._last_used = 0.0
        self._write_group = (
            _write_postgresql if store.dialect == "postgresql" else _sqlite_writer(store)
        )

    def write(self, blocks: Sequence[Assignments]) -> None:
        """Keep every block, in order, in one transaction.

        Raises
        ------
        StoreUnavailable
            Nothing was kept (``refused`` says whether the database refused the rows), or,
            when ``unknown`` is set, the database stopped answering once the group was sent.
        """
        connection = self.connect()
        try:
            self._write_group(connection.driver_connection, blocks)
        except database_errors() as error:
            if not is_refusal(error):
                self.close()
            raise unavailable(error) from error
        self._last_used = time.monotonic()

    def connect(self) -> PoolProxiedConnection:
        """The connection the next group goes on, checked when it was idle (nothing is sent
        on it yet: a failure here leaves the group certainly unwritten).

        Raises
        ------
        StoreUnavailable
            No usable connection could be had.
        """
        self._store.ensure_migrated()
        try:
            return self._usable_connection()
        except database_errors() as error:
            self.close()
            raise unavailable(error) from error

    def _usable_connection(self) -> PoolProxiedConnection:
        """The writer's connection; after an idle spell, checked first (a server restart or a
        dropped link would otherwise fail the next group, which cannot be safely retried:
        a statement lost with its connection may or may not have committed)."""
        if self._connection is not None and time.monotonic() - self._last_used > IDLE_CHECK_SECONDS:
            try:
                self._connection.driver_connection.execute("SELECT 1")  # type: ignore[union-attr]
            except driver_errors():
                self.close()
        if self._connection is None:
            self._connection = self._connect()
        self._last_used = time.monotonic()
        return self._connection

    def _connect(self) -> PoolProxiedConnection:
        connection = self._store.engine.raw_connection()
        if self._store.dialect == "postgresql":
            # Each group is one statement: its own transaction, committed by the server.
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        return connection

    def suspect(self) -> None:
        """Check the connection before the next group: another writer has just found the
        store unreachable, and the server may have dropped this connection too."""
        self._last_used = -math.inf

    def close(self) -> None:
        """Drop the connection (it is never handed back to the pool: its settings differ)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.invalidate()
            except Exception:  # closing a broken connection may fail too: it is gone either way
                logger.debug("closing the group writer's connection failed", exc_info=True)


def _write_postgresql(driver: Any, blocks: Sequence[Assignments]) -> None:
    with driver.cursor() as cursor:
        cursor.execute(postgres_bulk.GROUP_STATEMENT, (postgres_bulk.group_rows(blocks),))


def _sqlite_writer(store: CustomerStore) -> Callable[[Any, Sequence[Assignments]], None]:
    # Times are stored as SQLAlchemy stores them on SQLite, so that it reads them back.
    column_type = latest_assignments.c.assigned_at.type.dialect_impl(store.engine.dialect)
    processor = column_type.bind_processor(store.engine.dialect)
    assert processor is not None
    stored_time: Callable[[datetime], str] = processor

    def write(driver: Any, blocks: Sequence[Assignments]) -> None:
        rows = []
        for block in blocks:
            stored_at = stored_time(block.assigned_at)  # the last column
            rows += [(*row[:-1], stored_at) for row in block.rows()]
        latest = {row[0]: row for row in rows}  # a key given twice: its last row
        driver.execute("BEGIN IMMEDIATE")
        try:
            _sqlite_insert(driver, "latest_assignments", [latest[key] for key in sorted(latest)])
            _sqlite_insert(driver, "assignment_history", rows)
        except BaseException:
            driver.execute("ROLLBACK")
            raise
        driver.execute("COMMIT")

    return write
