"""The store's tests run twice: on SQLite and on the PostgreSQL at TEST_POSTGRES_URL.

Each PostgreSQL test gets a database of its own, created empty and dropped afterwards. On
a machine without PostgreSQL those runs are skipped with the reason; in CI (``CI`` set)
an unreachable PostgreSQL fails them instead, so they can never be skipped silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """An empty database on the test server, dropped afterwards (skip or fail without one)."""
    admin = postgres_admin_url()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {admin} is required in CI: {error}")
        pytest.skip(f"no PostgreSQL at {admin} ({error}); set TEST_POSTGRES_URL to run these")
    name = f"segmentation_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as cleanup:
            cleanup.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_connections(database_url: str, *, allowed: bool) -> None:
    """Let the database take connections, or refuse new ones and drop the open ones."""
    database = make_url(database_url).database
    assert database is not None
    with psycopg.connect(postgres_admin_url(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


@contextmanager
def database_gone(database_url: str) -> Iterator[None]:
    """The database refuses every connection (and drops the open ones) until the end."""
    set_connections(database_url, allowed=False)
    try:
        yield
    finally:
        set_connections(database_url, allowed=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, for what only a database server can do."""
    with fresh_postgres_database() as url:
        yield url


def store_at_migration(url: str, revision: str) -> None:
    """Make the store at ``url`` as the migrations up to ``revision`` leave it (created at the
    newest, then migrated down with Alembic), so that the next start has to migrate it."""
    from alembic import command
    from alembic.config import Config

    from service.store.customer_store import CustomerStore

    store = CustomerStore(url)
    store.migrate()
    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    store.dispose()
