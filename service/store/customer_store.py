"""The customer store over SQLAlchemy: SQLite by default, PostgreSQL for several replicas.

Writes are transactional: a batch's history rows and latest rows commit together or not
at all. Latest rows are upserted in customer-key order, so concurrent writers lock rows in
the same order and cannot deadlock each other; the rare lock conflict is retried.

Every write path upserts the latest rows before it appends the history. The upsert locks
each customer's latest row (or waits on another transaction's insert of it) until commit,
so a second writer of the same customer takes its history ids only once the first has
committed: history order follows commit order, and the latest row, written by the last to
commit, is always the customer's newest history entry, however many processes write at
once. (History first let two writers take ids in one order and commit in the other.) The
one exception is a training snapshot, which joins the history but does not replace an
assignment made after its model was trained (see ``statements.REPLACES_LATEST``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from segmentation.features import FEATURES, could_be_customer_key
from service.store import postgres_bulk
from service.store.assignments import ASSIGNMENT_FIELDS, Assignments
from service.store.engine import create_store_engine, sqlalchemy_url
from service.store.errors import (
    InvalidCursor,
    StoreUnavailable,
    database_errors,
    is_lock_conflict,
    reason,
    unavailable,
)
from service.store.schema_version import bring_to_head, current_revision
from service.store.statements import REPLACES_LATEST
from service.store.tables import assignment_history, latest_assignments, snapshot_imports

logger = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 4
# Below this many rows, plain INSERTs cost less than setting up COPY.
_COPY_THRESHOLD = 200
_T = TypeVar("_T")
LONG_ROUND_TRIP_SECONDS = 600.0
"""A round trip's deadline in operations long by nature: migrations and snapshot imports."""


def encode_cursor(customer_key: str) -> str:
    """The opaque page cursor that resumes a member listing after ``customer_key``."""
    return base64.urlsafe_b64encode(customer_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The customer key a cursor from :func:`encode_cursor` resumes after.

    Raises
    ------
    InvalidCursor
        The cursor is not one this service made (not base64url, not UTF-8, or not a
        customer key).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        if not could_be_customer_key(key):  # e.g. a NUL, which PostgreSQL cannot even compare
            raise ValueError("not a customer key")
        return key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"cursor={cursor!r} is not a cursor this service handed out") from None


_MIGRATION_LOCK = threading.Lock()


class CustomerStore:
    """Latest assignment per customer and the full history, behind one small interface."""

    def __init__(
        self, url: str, *, connect_timeout_seconds: int = 3, round_trip_seconds: float = 5.0
    ) -> None:
        self.url = sqlalchemy_url(url)
        self.engine = create_store_engine(self.url, connect_timeout_seconds, round_trip_seconds)
        self.dialect = self.engine.dialect.name
        self.connect_timeout_seconds = connect_timeout_seconds
        self.round_trip_seconds = round_trip_seconds
        self._migrated = False

    @property
    def driver_url(self) -> str:
        """The URL as the driver itself takes it (libpq's ``postgresql://``, for a
        connection made without the engine)."""
        return make_url(self.url).set(drivername=self.dialect).render_as_string(hide_password=False)

    @property
    def migrated(self) -> bool:
        """Whether the schema is known to be at the newest migration (see ensure_migrated)."""
        return self._migrated

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        self.ensure_migrated()
        try:
            with self.engine.begin() if write else self.engine.connect() as connection:
                yield connection
        except database_errors() as error:
            raise unavailable(error) from error

    @contextmanager
    def exclusively(self, name: str) -> Iterator[bool]:
        """Whether this process now holds the store-wide lock ``name``, for the block.

        On PostgreSQL an advisory lock on a connection of its own, so that one process of
        all the replicas sharing the database holds it (the server lets it go if the
        process dies). On SQLite always true: the file has one machine, whose workers
        agree among themselves.

        Raises
        ------
        StoreUnavailable
            The database could not be asked.
        """
        if self.dialect != "postgresql":
            yield True
            return
        with self._connection(write=False) as connection:
            lock = {"name": name}
            held = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(hashtext(:name))"), lock
                ).scalar_one()
            )
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(*database_errors()):
                        # A connection that failed has taken the lock with it.
                        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), lock)

    def ensure_migrated(self) -> None:
        """Migrate on first use (see :meth:`_migrate_or_fail_fast`); a no-op after."""
        if not self._migrated:
            self._migrate_or_fail_fast()

    def _migrate_or_fail_fast(self) -> None:
        """Migrate on first use; while another thread migrates, fail at once.

        Only a store that was down at start-up gets here: queueing every request behind one
        migration (each attempt may wait out the connect timeout) would stall them all.
        """
        if not _MIGRATION_LOCK.acquire(blocking=False):
            raise StoreUnavailable("the schema is being migrated; try again shortly")
        try:
            if not self._migrated:
                self._upgrade()
        finally:
            _MIGRATION_LOCK.release()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        with _MIGRATION_LOCK:
            self._upgrade()

    def _upgrade(self) -> None:
        # Callers hold _MIGRATION_LOCK: Alembic's `context` is one global per process, and
        # two threads migrating at once would run on each other's connection and deadlock.
        try:
            with self._long_round_trips(), self.engine.begin() as connection:
                bring_to_head(connection)
        except SQLAlchemyError as error:
            raise StoreUnavailable(reason(error)) from error
        self._migrated = True

    def schema_version(self) -> str | None:
        """The migration the schema is at (None before the first)."""
        with self._connection(write=False) as connection:
            return current_revision(connection)

    def ping(self) -> None:
        """Read one customer's latest row; raises :class:`StoreUnavailable` when the store
        cannot answer.

        One row, found through the primary key, costs no more than ``SELECT 1`` and reads
        the table itself: an SQLite file whose pages are damaged answered ``SELECT 1``
        while every export failed.
        """
        with self._connection(write=False) as connection:
            connection.execute(select(latest_assignments.c.customer_key).limit(1)).all()

    def record(self, assignments: Assignments) -> None:
        """Add every row to the history and make each customer's last row their latest."""
        if len(assignments):
            self._write(lambda connection: self._write_rows(connection, assignments))

    def is_imported(self, model_version: str) -> bool:
        """Whether the training snapshot of ``model_version`` is already in the store."""
        with self._connection(write=False) as connection:
            found = connection.execute(
                select(snapshot_imports.c.model_version).where(
                    snapshot_imports.c.model_version == model_version
                )
            ).first()
        return found is not None

    def import_snapshot(self, assignments: Assignments) -> bool:
        """Import a model's training assignments once; False when already imported.

        The claim on ``snapshot_imports`` and the rows commit in one transaction, so
        several replicas importing at once leave exactly one copy.
        """

        def claim_and_write(connection: Connection) -> bool:
            claim = (
                self._insert(snapshot_imports)
                .values(
                    model_version=assignments.model_version,
                    n_rows=len(assignments),
                    imported_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["model_version"])
                .returning(snapshot_imports.c.model_version)
            )
            # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT.
            if connection.execute(claim).first() is None:
                return False
            self._write_rows(connection, assignments)
            return True

        with self._long_round_trips():
            return self._write(claim_and_write)

    def _write(self, operation: Callable[[Connection], _T]) -> _T:
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self._connection(write=True) as connection:
                    return operation(connection)
            except StoreUnavailable as error:
                if attempt == _WRITE_ATTEMPTS or not is_lock_conflict(error.__cause__):
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _insert(self, table: Any) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def _long_round_trips(self) -> contextlib.AbstractContextManager[None]:
        """This thread's round trips may take ``LONG_ROUND_TRIP_SECONDS`` each, for the block.

        Only PostgreSQL's connections have deadlines; :mod:`service.store.deadlines` is
        imported for them alone, since it loads psycopg (some 8 MB a worker on SQLite
        would carry for nothing).
        """
        if self.dialect != "postgresql":
            return contextlib.nullcontext()
        from service.store import deadlines

        return deadlines.relaxed(LONG_ROUND_TRIP_SECONDS)

    def _write_rows(self, connection: Connection, assignments: Assignments) -> None:
        if self.dialect == "postgresql" and len(assignments) >= _COPY_THRESHOLD:
            postgres_bulk.copy_rows(connection, assignments)
            return
        params = assignments.as_params()
        # Latest rows first, in key order, then the history (see the module's docstring).
        latest_by_key = {item["customer_key"]: item for item in params}
        ordered = [latest_by_key[key] for key in sorted(latest_by_key)]
        upsert = self._insert(latest_assignments)
        upsert = upsert.on_conflict_do_update(
            index_elements=["customer_key"],
            set_={name: upsert.excluded[name] for name in ASSIGNMENT_FIELDS},
            where=text(REPLACES_LATEST),
        )
        connection.execute(upsert, ordered)
        connection.execute(assignment_history.insert(), params)

    def latest(self, customer_key: str) -> dict[str, Any] | None:
        """The customer's latest assignment (the columns of ``latest_assignments``), or None."""
        with self._connection(write=False) as connection:
            row = connection.execute(
                select(latest_assignments).where(latest_assignments.c.customer_key == customer_key)
            ).first()
        return _as_dict(row) if row else None

    def latest_many(self, customer_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest assignment of every key the store knows, by key (unknown keys absent)."""
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(customer_keys))
        with self._connection(write=False) as connection:
            for start in range(0, len(unique), 1000):
                chunk = unique[start : start + 1000]
                rows = connection.execute(
                    select(latest_assignments).where(latest_assignments.c.customer_key.in_(chunk))
                )
                found.update((row.customer_key, _as_dict(row)) for row in rows)
        return found

    def history(self, customer_key: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """A customer's assignments, newest first."""
        table = assignment_history
        with self._connection(write=False) as connection:
            rows = connection.execute(
                select(
                    table.c.segment_id, table.c.model_version, table.c.source, table.c.assigned_at
                )
                .where(table.c.customer_key == customer_key)
                .order_by(table.c.id.desc())
                .limit(limit)
            )
            return [_as_dict(row) for row in rows]

    def members(
        self, segment_id: str, *, model_version: str, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the customers ``model_version`` last put in the segment, by key, and
        the cursor of the next page."""
        table = latest_assignments
        query = select(table).where(
            table.c.model_version == model_version, table.c.segment_id == segment_id
        )
        if cursor is not None:
            query = query.where(table.c.customer_key > decode_cursor(cursor))
        query = query.order_by(table.c.customer_key).limit(limit + 1)
        with self._connection(write=False) as connection:
            rows = [_as_dict(row) for row in connection.execute(query)]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, encode_cursor(page[-1]["customer_key"])

    def known_customers(self, limit: int) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Stored customers' keys and the features of their latest assignment, at most
        ``limit`` of them (the first by key).

        Returns the keys and an ``(n, len(FEATURES))`` array, in key order.
        """
        table = latest_assignments
        columns = [table.c.customer_key, *(table.c[feature] for feature in FEATURES)]
        query = select(*columns).order_by(table.c.customer_key).limit(limit)
        with self._connection(write=False) as connection:
            rows = connection.execute(query).all()
        keys = [str(row[0]) for row in rows]
        features = np.array([row[1:] for row in rows], dtype=np.float64)
        return keys, features.reshape(len(rows), len(FEATURES))

    def others_assigned_by(
        self, model_version: str, segment_id: str
    ) -> tuple[list[str], list[str], npt.NDArray[np.float64]]:
        """Every customer whose latest assignment ``model_version`` made to a segment other
        than ``segment_id``: their keys (in key order), segments and features."""
        table = latest_assignments
        columns = [table.c.customer_key, table.c.segment_id, *(table.c[f] for f in FEATURES)]
        query = (
            select(*columns)
            .where(table.c.model_version == model_version, table.c.segment_id != segment_id)
            .order_by(table.c.customer_key)
        )
        with self._connection(write=False) as connection:
            rows = connection.execute(query).all()
        features = np.array([row[2:] for row in rows], dtype=np.float64)
        return (
            [str(row[0]) for row in rows],
            [str(row[1]) for row in rows],
            features.reshape(len(rows), len(FEATURES)),
        )

    def live_counts(self, model_version: str) -> dict[str, int]:
        """Customers whose latest assignment ``model_version`` made, by segment id."""
        table = latest_assignments
        query = (
            select(table.c.segment_id, func.count())
            .where(table.c.model_version == model_version)
            .group_by(table.c.segment_id)
        )
        with self._connection(write=False) as connection:
            return {segment_id: int(count) for segment_id, count in connection.execute(query)}

    def versions_other_than(self, model_version: str) -> dict[str, int]:
        """The other versions that made some customer's latest assignment, with how many.

        Each version is found by one seek in the version index (there are few versions and
        may be millions of customers), so asking costs little when there are none.
        """
        column = latest_assignments.c.model_version
        found: dict[str, int] = {}
        with self._connection(write=False) as connection:
            version = connection.execute(select(func.min(column))).scalar()
            while version is not None:
                if version != model_version:
                    count = select(func.count()).where(column == version)
                    found[version] = int(connection.execute(count).scalar_one())
                version = connection.execute(
                    select(func.min(column)).where(column > version)
                ).scalar()
        return found

    def keys_assigned_by(
        self, model_version: str, *, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        """``(segment_id, customer_key)`` of up to ``limit`` customers whose latest
        assignment ``model_version`` made, in the version index's order, after ``after``."""
        table = latest_assignments
        position = tuple_(table.c.segment_id, table.c.customer_key)
        query = select(table.c.segment_id, table.c.customer_key).where(
            table.c.model_version == model_version
        )
        if after is not None:
            query = query.where(position > tuple_(*after))
        query = query.order_by(table.c.segment_id, table.c.customer_key).limit(limit)
        with self._connection(write=False) as connection:
            return [(str(segment), str(key)) for segment, key in connection.execute(query)]

    def rescore(
        self,
        customer_keys: Sequence[str],
        model_version: str,
        assign: Callable[[list[str], npt.NDArray[np.float64]], Assignments],
    ) -> int:
        """Have ``model_version`` assign again those of the customers it did not assign last;
        returns how many it did.

        In one transaction, the customers' latest rows are read under lock (in key order,
        as every writer locks them), so the features scored are the newest and a live
        answer in between is neither overwritten nor assigned twice; ``assign`` turns keys
        and features into the block to keep.
        """
        table = latest_assignments
        columns = [table.c.customer_key, *(table.c[feature] for feature in FEATURES)]
        query = (
            select(*columns)
            .where(
                table.c.customer_key.in_(sorted(set(customer_keys))),
                table.c.model_version != model_version,
            )
            .order_by(table.c.customer_key)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update()  # SQLite's BEGIN IMMEDIATE locks it all already

        def read_score_write(connection: Connection) -> int:
            rows = connection.execute(query).all()
            if not rows:
                return 0
            keys = [str(row[0]) for row in rows]
            features = np.array([row[1:] for row in rows], dtype=np.float64)
            self._write_rows(connection, assign(keys, features))
            return len(rows)

        return self._write(read_score_write)


def _as_dict(row: Any) -> dict[str, Any]:
    # Column names come back as str subclasses, which orjson refuses as keys.
    return {str(name): value for name, value in row._mapping.items()}
