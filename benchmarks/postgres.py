"""A scratch PostgreSQL database for a benchmark run: created empty, dropped afterwards."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server to benchmark against."""


def admin_url() -> str:
    """The server to create scratch databases on: ``BENCH_POSTGRES_URL``, else the tests'
    ``TEST_POSTGRES_URL``, else the development machine's."""
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
        "TEST_POSTGRES_URL", DEFAULT_ADMIN_URL
    )


@contextmanager
def scratch_database(prefix: str = "segmentation_bench") -> Iterator[str]:
    """The URL of a new, empty database, dropped on the way out."""
    admin = admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise PostgresUnavailable(f"no PostgreSQL at {admin}: {error}".strip()) from None
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
