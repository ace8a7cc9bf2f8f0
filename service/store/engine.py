"""The store's SQLAlchemy engine: URLs, pools and the SQLite settings that make it a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


def sqlalchemy_url(url: str) -> str:
    """Accept ``postgresql://`` as well as ``postgresql+psycopg://`` (psycopg 3 either way)."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_store_engine(
    url: str, connect_timeout_seconds: int, round_trip_seconds: float
) -> Engine:
    """An engine for ``url`` (a SQLAlchemy URL), with each dialect's pool and timeouts.

    On PostgreSQL nothing waits without end: connecting takes at most
    ``connect_timeout_seconds``, a pool checkout and every round trip (see
    :mod:`service.store.deadlines`) at most ``round_trip_seconds``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Here, not at the top: it loads psycopg, which a store on SQLite never needs.
        from service.store.deadlines import BoundedConnection

        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=8,
            pool_timeout=round_trip_seconds,
            connect_args={"connect_timeout": connect_timeout_seconds},
        )

        @event.listens_for(engine, "do_connect")
        def _bounded(_dialect: Any, _record: Any, args: Any, params: Any) -> BoundedConnection:
            connection = BoundedConnection.connect(*args, **params)
            connection.round_trip_seconds = round_trip_seconds
            return connection

        return engine
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
