"""The schema's migration is read without Alembic, which a store already at the newest
migration never imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from service.store.customer_store import CustomerStore
from service.store.schema_version import HEAD_REVISION, current_revision
from tests.service.processes import ROOT


def test_the_head_revision_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_the_schema_version_is_none_before_the_first_migration_then_the_head(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    with store.engine.connect() as connection:
        assert current_revision(connection) is None
    store.migrate()
    assert store.schema_version() == HEAD_REVISION
    store.dispose()


# In a fresh interpreter: this one has Alembic loaded by the other tests.
MIGRATE = """
import sys
from service.store.customer_store import CustomerStore

CustomerStore(sys.argv[1]).migrate()
print("alembic" in sys.modules)
"""


def test_a_store_at_the_newest_migration_is_migrated_without_importing_alembic(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    imported = []
    for _ in ("empty", "at the newest migration"):
        finished = subprocess.run(
            [sys.executable, "-c", MIGRATE, url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
        imported.append(finished.stdout.strip())
    assert imported == ["True", "False"]
