"""Where the store's schema stands among its migrations, and bringing it to the newest.

Alembic, with Mako and Pygments behind it, costs a worker some 12 MB and a tenth of a
second to import. A store already at the newest migration, as on every restart, is told by
one query; an empty database is given the tables as they stand after every migration
(:mod:`service.store.tables`, which a test holds equal to what the migrations build) and
marked as migrated; Alembic is imported only to migrate a store from an older migration.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)

from service.store.tables import metadata

HEAD_REVISION = "0004"
"""The newest migration in ``migrations/versions`` (a test holds the two equal)."""

VERSION_TABLE = "alembic_version"
"""Where Alembic keeps the migration the schema is at."""

_version_table = Table(
    VERSION_TABLE,
    MetaData(),
    # As Alembic creates it, constraint name included.
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def bring_to_head(connection: Connection) -> None:
    """Give the schema every migration it lacks, on ``connection`` (in its transaction).

    Alembic's ``context`` is one global per process: callers must not run two at once.
    """
    revision = current_revision(connection)
    if revision == HEAD_REVISION:
        return
    if revision is None and not inspect(connection).get_table_names():
        metadata.create_all(connection)
        _version_table.create(connection)
        connection.execute(_version_table.insert().values(version_num=HEAD_REVISION))
        return
    upgrade_to_head(connection)


def current_revision(connection: Connection) -> str | None:
    """The migration the schema is at (None before the first)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if revision is None else str(revision)


def upgrade_to_head(connection: Connection) -> None:
    """Run every migration the schema lacks with Alembic, as :func:`bring_to_head` does
    for a store that has some of them."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
