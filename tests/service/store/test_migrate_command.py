"""`python -m service.store`: migrations applied by a command, and undone."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from service.store.__main__ import main
from service.store.customer_store import CustomerStore


def test_command_migrates_an_empty_database_and_says_where_it_is(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database-url", database_url]) == 0
    assert main(["--database-url", database_url]) == 0  # already there: nothing to do
    out = capsys.readouterr().out.splitlines()
    assert out == ["customer store at migration 0004"] * 2
    store = CustomerStore(database_url)
    assert {"latest_assignments", "assignment_history"} <= set(
        inspect(store.engine).get_table_names()
    )
    store.dispose()


def test_command_fails_with_one_line_when_the_database_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--database-url", "postgresql://postgres@127.0.0.1:1/none"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: the customer store could not be migrated: ")
    assert err.count("\n") == 1


def test_postgresql_tuning_migrations_go_down_and_up_again(postgres_url: str) -> None:
    store = CustomerStore(postgres_url)
    store.migrate()
    config = Config()
    config.set_main_option("script_location", "service.store:migrations")

    def key_collation_and_options() -> tuple[str | None, list[str] | None]:
        with store.engine.connect() as connection:
            columns = inspect(connection).get_columns("latest_assignments")
            options = connection.exec_driver_sql(
                "SELECT reloptions FROM pg_class WHERE relname = 'latest_assignments'"
            ).scalar_one()
        key = next(column for column in columns if column["name"] == "customer_key")
        return key["type"].collation, options

    assert key_collation_and_options() == ("C", ["fillfactor=50"])
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert key_collation_and_options() == (None, None)
    store.migrate()
    assert key_collation_and_options() == ("C", ["fillfactor=50"])
    store.dispose()
