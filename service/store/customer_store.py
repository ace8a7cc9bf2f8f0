"""The customer store over SQLAlchemy: SQLite by default, PostgreSQL for several replicas.

Writes are transactional: a batch's history rows and latest rows commit together or not
at all. Latest rows are upserted in customer-key order, so concurrent writers lock rows in
the same order and cannot deadlock each other; the rare lock conflict is retried.

Every write path upserts the latest rows before it appends the history. The upsert locks
each customer's latest row (or waits on another transaction's insert of it) until commit,
so a second writer of the same customer takes its history ids only once the first has
committed: history order follows commit order, and the latest row, written by the last to
commit, is always the customer's newest history entry, however many processes write at
once. (History first let two writers take ids in one order and commit in the other.)
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from segmentation.features import FEATURES
from service.store.tables import assignment_history, latest_assignments, snapshot_imports

logger = logging.getLogger(__name__)

_ASSIGNMENT_FIELDS = (
    "segment_id",
    "model_version",
    *FEATURES,
    "confidence",
    "atypical",
    "source",
    "assigned_at",
)
_WRITE_ATTEMPTS = 4
# Below this many rows, plain INSERTs cost less than setting up COPY.
_COPY_THRESHOLD = 200
_T = TypeVar("_T")


class StoreUnavailable(Exception):
    """The database could not be reached or refused the operation.

    ``refused`` tells the two apart: True when the database answered and refused what it was
    given (a constraint, a trigger, a value it cannot hold), so the same statement would
    fail again and other rows written with it may well succeed alone.
    """

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


class InvalidCursor(ValueError):
    """A pagination cursor that this store did not hand out."""


@dataclass(frozen=True, eq=False)
class Assignments:
    """Assignments to keep, column by column: what one model said of these customers, from
    one source, at one moment.

    A batch is kept as one block: a Python object per customer (a frozen dataclass, then
    even a named tuple) cost as much as writing the rows to PostgreSQL.
    """

    customer_keys: Sequence[str]
    segment_ids: Sequence[str]
    features: npt.NDArray[np.float64]
    """``(n, len(FEATURES))``, in ``FEATURES`` order."""
    confidence: Sequence[float]
    atypical: Sequence[bool]
    model_version: str
    source: str
    assigned_at: datetime

    def __post_init__(self) -> None:
        lengths = {
            len(self.customer_keys),
            len(self.segment_ids),
            len(self.features),
            len(self.confidence),
            len(self.atypical),
        }
        if len(lengths) != 1:
            raise ValueError(f"assignment columns differ in length: {sorted(lengths)}")
        if self.features.ndim != 2 or self.features.shape[1] != len(FEATURES):
            raise ValueError(f"features must be (n, {len(FEATURES)}), not {self.features.shape}")

    def __len__(self) -> int:
        return len(self.customer_keys)

    def as_params(self) -> list[dict[str, Any]]:
        """One parameter dict per row, for INSERT statements."""
        constant = {
            "model_version": self.model_version,
            "source": self.source,
            "assigned_at": self.assigned_at,
        }
        return [
            {
                "customer_key": key,
                "segment_id": segment_id,
                **dict(zip(FEATURES, features, strict=True)),
                "confidence": confidence,
                "atypical": atypical,
                **constant,
            }
            for key, segment_id, features, confidence, atypical in zip(
                self.customer_keys,
                self.segment_ids,
                self.features.tolist(),
                self.confidence,
                self.atypical,
                strict=True,
            )
        ]


def sqlalchemy_url(url: str) -> str:
    """Accept ``postgresql://`` as well as ``postgresql+psycopg://`` (psycopg 3 either way)."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def encode_cursor(customer_key: str) -> str:
    return base64.urlsafe_b64encode(customer_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        if not key:
            raise ValueError("empty cursor")
        return key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"cursor={cursor!r} is not a cursor this service handed out") from None


_MIGRATION_LOCK = threading.Lock()


class CustomerStore:
    """Latest assignment per customer and the full history, behind one small interface."""

    def __init__(self, url: str, *, connect_timeout_seconds: int = 3) -> None:
        self.url = sqlalchemy_url(url)
        self.engine = _create_engine(self.url, connect_timeout_seconds)
        self.dialect = self.engine.dialect.name
        self._migrated = False

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        if not self._migrated:
            self._migrate_or_fail_fast()
        try:
            with self.engine.begin() if write else self.engine.connect() as connection:
                yield connection
        except (SQLAlchemyError, psycopg.Error) as error:
            raise StoreUnavailable(_reason(error), refused=_is_refusal(error)) from error

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
        config = Config()
        config.set_main_option("script_location", "service.store:migrations")
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as error:
            raise StoreUnavailable(_reason(error)) from error
        self._migrated = True

    def schema_version(self) -> str | None:
        """The migration the schema is at (None before the first)."""
        with self._connection(write=False) as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> None:
        with self._connection(write=False) as connection:
            connection.exec_driver_sql("SELECT 1")

    def record(self, assignments: Assignments) -> None:
        """Add every row to the history and make each customer's last row their latest."""
        if len(assignments):
            self._write(lambda connection: self._write_rows(connection, assignments))

    def record_together(self, blocks: Sequence[Assignments]) -> None:
        """Keep several blocks in one transaction, all or none, as if recorded in order.

        For many small blocks (the live route's single answers): one commit for all of them.
        """
        params = [row for block in blocks for row in block.as_params()]
        if params:
            self._write(lambda connection: self._write_params(connection, params))

    def is_imported(self, model_version: str) -> bool:
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

        return self._write(claim_and_write)

    def _write(self, operation: Callable[[Connection], _T]) -> _T:
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self._connection(write=True) as connection:
                    return operation(connection)
            except StoreUnavailable as error:
                if attempt == _WRITE_ATTEMPTS or not _is_lock_conflict(error.__cause__):
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _insert(self, table: Any) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def _write_rows(self, connection: Connection, assignments: Assignments) -> None:
        if self.dialect == "postgresql" and len(assignments) >= _COPY_THRESHOLD:
            _copy_rows_postgresql(connection, assignments)
            return
        self._write_params(connection, assignments.as_params())

    def _write_params(self, connection: Connection, params: list[dict[str, Any]]) -> None:
        """Latest rows first, in key order, then the history (see the module's docstring)."""
        latest_by_key = {item["customer_key"]: item for item in params}
        ordered = [latest_by_key[key] for key in sorted(latest_by_key)]
        upsert = self._insert(latest_assignments)
        upsert = upsert.on_conflict_do_update(
            index_elements=["customer_key"],
            set_={name: upsert.excluded[name] for name in _ASSIGNMENT_FIELDS},
            where=text(_REPLACES_LATEST),
        )
        connection.execute(upsert, ordered)
        connection.execute(assignment_history.insert(), params)

    def latest(self, customer_key: str) -> dict[str, Any] | None:
        with self._connection(write=False) as connection:
            row = connection.execute(
                select(latest_assignments).where(latest_assignments.c.customer_key == customer_key)
            ).first()
        return _as_dict(row) if row else None

    def latest_many(self, customer_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
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
        self, segment_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a segment's customers by key, and the cursor of the next page."""
        table = latest_assignments
        query = select(table).where(table.c.segment_id == segment_id)
        if cursor is not None:
            query = query.where(table.c.customer_key > decode_cursor(cursor))
        query = query.order_by(table.c.customer_key).limit(limit + 1)
        with self._connection(write=False) as connection:
            rows = [_as_dict(row) for row in connection.execute(query)]
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, encode_cursor(page[-1]["customer_key"])

    def live_counts(self) -> dict[str, int]:
        table = latest_assignments
        with self._connection(write=False) as connection:
            rows = connection.execute(
                select(table.c.segment_id, func.count()).group_by(table.c.segment_id)
            )
            return {segment_id: int(count) for segment_id, count in rows}


_COLUMNS = ("customer_key", *_ASSIGNMENT_FIELDS)
_COLUMN_LIST = ", ".join(_COLUMNS)
# The order of _copy_rows: what varies per row first, then what the block shares.
_COPY_COLUMNS = {
    "ordinal": "int4",
    "customer_key": "varchar",
    "segment_id": "varchar",
    **dict.fromkeys(FEATURES, "float8"),
    "confidence": "float8",
    "atypical": "bool",
    "model_version": "varchar",
    "source": "varchar",
    "assigned_at": "timestamptz",
}
_UPDATES = ", ".join(f"{name} = EXCLUDED.{name}" for name in _ASSIGNMENT_FIELDS)
# A model's training snapshot never replaces what that same model said of the customer
# since (an import delayed by an outage lands after live answers).
_REPLACES_LATEST = (
    "NOT (excluded.source = 'training' "
    "AND latest_assignments.model_version = excluded.model_version)"
)


def _copy_rows_postgresql(connection: Connection, assignments: Assignments) -> None:
    """Bulk path for PostgreSQL: one COPY into a session-local staging table, then history
    and latest are filled by the server (COPY beats multi-row INSERT several times over).

    The staging rows keep their input order, so that the history keeps it and, for a key
    given twice, the last row is the latest; the upsert runs in key order.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_assignments "
            "(ordinal integer, LIKE latest_assignments) ON COMMIT DELETE ROWS"
        )
        columns = ", ".join(_COPY_COLUMNS)
        statement = f"COPY incoming_assignments ({columns}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(list(_COPY_COLUMNS.values()))
            for row in _copy_rows(assignments):
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO latest_assignments ({_COLUMN_LIST}) "
            f"SELECT DISTINCT ON (customer_key) {_COLUMN_LIST} FROM incoming_assignments "
            "ORDER BY customer_key, ordinal DESC "
            f"ON CONFLICT (customer_key) DO UPDATE SET {_UPDATES} WHERE {_REPLACES_LATEST}"
        )
        cursor.execute(
            f"INSERT INTO assignment_history ({_COLUMN_LIST}) "
            f"SELECT {_COLUMN_LIST} FROM incoming_assignments ORDER BY ordinal"
        )


def _copy_rows(assignments: Assignments) -> Iterator[tuple[Any, ...]]:
    """The block's rows in ``_COPY_COLUMNS`` order, each after its ordinal.

    Binary COPY: the server reads the doubles as they are (no text to format or parse)
    and keys need no escaping; it took half the time of the text format.
    """
    return zip(
        range(len(assignments)),
        assignments.customer_keys,
        assignments.segment_ids,
        *assignments.features.T.tolist(),
        assignments.confidence,
        assignments.atypical,
        repeat(assignments.model_version),
        repeat(assignments.source),
        repeat(assignments.assigned_at),
    )


def _create_engine(url: str, connect_timeout_seconds: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=8,
            connect_args={"connect_timeout": connect_timeout_seconds},
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy issues BEGIN itself (below); the driver must not start its own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue on the busy timeout
        # instead of failing when both try to upgrade a read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _as_dict(row: Any) -> dict[str, Any]:
    # Column names come back as str subclasses, which orjson refuses as keys.
    return {str(name): value for name, value in row._mapping.items()}


def _reason(error: Exception) -> str:
    origin = getattr(error, "orig", None) or error
    return f"{type(origin).__name__}: {str(origin).strip().splitlines()[0] if str(origin) else ''}"


def _is_refusal(error: Exception) -> bool:
    """The database answered and refused the statement: not a connection or lock problem."""
    if isinstance(error, DBAPIError):
        return not error.connection_invalidated and not isinstance(
            error, OperationalError | InterfaceError
        )
    return False


def _is_lock_conflict(error: BaseException | None) -> bool:
    origin = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(origin, "sqlstate", None)
    return code in {"40P01", "40001", "55P03"} or "database is locked" in str(origin)
