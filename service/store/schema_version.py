"""Where the store's schema stands among its migrations, read without importing Alembic.

Alembic, with Mako and Pygments behind it, costs a worker some 12 MB and a tenth of a
second to import; a store already at the newest migration, as on every restart, is told
by one query, and Alembic is imported only when a migration must run.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

HEAD_REVISION = "0004"
"""The newest migration in ``migrations/versions`` (a test holds the two equal)."""

VERSION_TABLE = "alembic_version"
"""Where Alembic keeps the migration the schema is at."""


def current_revision(connection: Connection) -> str | None:
    """The migration the schema is at (None before the first)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if revision is None else str(revision)


def upgrade_to_head(connection: Connection) -> None:
    """Run every migration the schema lacks, on ``connection`` (in its transaction).

    Alembic's ``context`` is one global per process: callers must not run two at once.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
