"""The schema's migration is read without Alembic; an empty store is given the tables of
the newest migration without Alembic too, exactly as the migrations build them; Alembic
is imported only to migrate a store from an older migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from service.store.customer_store import CustomerStore
from service.store.schema_version import HEAD_REVISION, current_revision, upgrade_to_head
from tests.fresh_interpreter import last_line_of
from tests.service.store.conftest import fresh_postgres_database, store_at_migration


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    return config


def test_the_head_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_the_schema_version_is_none_before_the_first_migration_then_the_head(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    with store.engine.connect() as connection:
        assert current_revision(connection) is None
    store.migrate()
    assert store.schema_version() == HEAD_REVISION
    store.dispose()


@contextmanager
def another_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'by_alembic.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def schema_of(store: CustomerStore) -> dict[str, Any]:
    """Every table's columns (type, collation, nullability, default), keys, indexes, and
    on PostgreSQL its storage options, as the database reports them."""
    described: dict[str, Any] = {}
    with store.engine.connect() as connection:
        inspector = inspect(connection)
        for table in sorted(inspector.get_table_names()):
            columns = [
                (
                    column["name"],
                    str(column["type"]),
                    getattr(column["type"], "collation", None),
                    column["nullable"],
                    str(column.get("default")),
                )
                for column in inspector.get_columns(table)
            ]
            indexes = sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            )
            options = None
            if store.dialect == "postgresql":
                options = connection.exec_driver_sql(
                    "SELECT reloptions FROM pg_class WHERE relname = %(name)s", {"name": table}
                ).scalar_one()
            described[table] = {
                "columns": columns,
                "primary_key": inspector.get_pk_constraint(table),
                "unique": inspector.get_unique_constraints(table),
                "foreign_keys": inspector.get_foreign_keys(table),
                "indexes": indexes,
                "options": options,
            }
        described["revision"] = current_revision(connection)
    return described


def test_an_empty_store_gets_the_schema_the_migrations_build(
    database_url: str, tmp_path: Path
) -> None:
    created = CustomerStore(database_url)
    created.migrate()
    with another_database(database_url, tmp_path) as other_url:
        migrated = CustomerStore(other_url)
        with migrated.engine.begin() as connection:
            upgrade_to_head(connection)
        try:
            assert schema_of(created) == schema_of(migrated)
        finally:
            migrated.dispose()
    created.dispose()


def test_a_store_created_at_the_head_migrates_down_and_up_with_alembic(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    with store.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert store.schema_version() == "0001"
    store.migrate()
    assert store.schema_version() == HEAD_REVISION
    store.dispose()


# In a fresh interpreter: this one has Alembic loaded by the other tests.
MIGRATE = """
import json, sys
from service.store.customer_store import CustomerStore

CustomerStore(sys.argv[1]).migrate()
print(json.dumps("alembic" in sys.modules))
"""


def alembic_imported_by_migrating(url: str) -> bool:
    imported: bool = last_line_of(MIGRATE, url, timeout=120)
    return imported


@pytest.mark.parametrize("older", [False, True])
def test_alembic_is_imported_only_to_migrate_a_store_from_an_older_migration(
    tmp_path: Path, older: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert not alembic_imported_by_migrating(url)  # empty
    assert not alembic_imported_by_migrating(url)  # at the newest migration
    if older:
        store_at_migration(url, "0003")
    assert alembic_imported_by_migrating(url) is older
