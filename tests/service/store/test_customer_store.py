"""CustomerStore on a real database: schema, writes, history, imports, pages, failures."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text

from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import InvalidCursor, StoreUnavailable

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def block(
    keys: list[str],
    segments: str | list[str] = "branch-loyal",
    *,
    version: str = "v1",
    minute: int = 0,
    source: str = "batch",
) -> Assignments:
    """What one model said of these customers at one moment."""
    return Assignments(
        customer_keys=keys,
        segment_ids=[segments] * len(keys) if isinstance(segments, str) else segments,
        features=np.tile([30000.0, 4.0, 3.0, 1.0, 2.0], (len(keys), 1)),
        confidence=[0.4] * len(keys),
        atypical=[False] * len(keys),
        model_version=version,
        source=source,
        assigned_at=START + timedelta(minutes=minute),
    )


def count(store: CustomerStore, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_migrate_builds_schema_on_empty_database_and_is_idempotent(database_url: str) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"latest_assignments", "assignment_history", "snapshot_imports"} <= tables
    if store.dialect == "postgresql":
        # Keys compare byte by byte, as on SQLite: pages come in the same order on both.
        for table in ("latest_assignments", "assignment_history"):
            columns = {
                column["name"]: column for column in inspect(store.engine).get_columns(table)
            }
            assert columns["customer_key"]["type"].collation == "C"
        with store.engine.connect() as connection:
            options = connection.exec_driver_sql(
                "SELECT reloptions FROM pg_class WHERE relname = 'latest_assignments'"
            ).scalar_one()
        assert options == ["fillfactor=50"]  # room for rescoring to update rows in place
    store.dispose()


def test_record_keeps_latest_and_full_history_newest_first(database_url: str) -> None:
    store = CustomerStore(database_url)
    store.record(block(["1"], "branch-loyal", minute=0, source="training"))
    store.record(block(["1"], "support-seeking", minute=5, source="single"))
    store.record(block(["1"], "digital-affluent", version="v2", minute=9))
    store.record(block(["2"]))
    latest = store.latest("1")
    assert latest is not None
    assert (latest["segment_id"], latest["model_version"]) == ("digital-affluent", "v2")
    history = store.history("1")
    assert [h["segment_id"] for h in history] == [
        "digital-affluent",
        "support-seeking",
        "branch-loyal",
    ]
    assert [h["source"] for h in history] == ["batch", "single", "training"]
    assert count(store, "latest_assignments") == 2
    assert count(store, "assignment_history") == 4
    store.dispose()


def test_record_with_key_repeated_in_one_batch_keeps_last_as_latest(database_url: str) -> None:
    store = CustomerStore(database_url)
    keys = [str(i % 300) for i in range(600)]
    store.record(block(keys, ["branch-loyal"] * 300 + ["support-seeking"] * 300))
    assert count(store, "latest_assignments") == 300
    assert count(store, "assignment_history") == 600
    latest = store.latest("7")
    assert latest is not None and latest["segment_id"] == "support-seeking"
    store.dispose()


def refuse_latest_rows_for(store: CustomerStore, key: str) -> None:
    """A trigger that fails the write's last step (the latest upsert) for one key."""
    with store.engine.begin() as connection:
        if store.dialect == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON latest_assignments FOR EACH ROW "
                f"WHEN (NEW.customer_key = '{key}') EXECUTE FUNCTION refuse()"
            )
        else:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON latest_assignments "
                f"WHEN NEW.customer_key = '{key}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


@pytest.mark.parametrize("size", [50, 500], ids=["insert", "bulk"])
def test_failed_write_leaves_nothing_half_written(database_url: str, size: int) -> None:
    store = CustomerStore(database_url)
    store.migrate()
    refuse_latest_rows_for(store, "poison")
    with pytest.raises(StoreUnavailable):
        store.record(block([*(str(i) for i in range(size)), "poison"]))
    # The history rows went in before the refusal: they were rolled back with it.
    assert count(store, "assignment_history") == 0
    assert count(store, "latest_assignments") == 0
    store.record(block([str(i) for i in range(size)]))
    assert count(store, "assignment_history") == size
    store.dispose()


def test_assignment_columns_must_have_one_length() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Assignments(
            customer_keys=["1", "2"],
            segment_ids=["branch-loyal"],
            features=np.zeros((2, 5)),
            confidence=[0.5, 0.5],
            atypical=[False, False],
            model_version="v1",
            source="batch",
            assigned_at=START,
        )


def test_import_snapshot_happens_once_per_model_version(database_url: str) -> None:
    store = CustomerStore(database_url)
    keys = [str(i) for i in range(50)]
    assert store.import_snapshot(block(keys, source="training")) is True
    assert store.import_snapshot(block(keys, source="training")) is False
    assert store.is_imported("v1")
    assert count(store, "assignment_history") == 50
    assert store.import_snapshot(block(keys, version="v2", source="training")) is True
    assert count(store, "assignment_history") == 100
    store.dispose()


@pytest.mark.parametrize("size", [50, 500], ids=["insert", "bulk"])
def test_a_late_snapshot_import_keeps_what_the_same_model_said_since(
    database_url: str, size: int
) -> None:
    """An import delayed by an outage lands after live answers; those stay the latest.

    A snapshot is dated when its model was trained (minute 0 here), before any answer of
    that model, and replaces only what was said before then.
    """
    store = CustomerStore(database_url)
    store.record(block(["live"], "support-seeking", minute=5, source="single"))
    training = [*(str(i) for i in range(size)), "live"]
    store.import_snapshot(block(training, source="training", minute=0))
    latest = store.latest("live")
    assert latest is not None
    assert (latest["segment_id"], latest["source"]) == ("support-seeking", "single")
    assert len(store.history("live")) == 2
    # Nor does a model trained before the answer replace it, whatever its version...
    store.import_snapshot(block(["live"], "branch-loyal", version="v0", source="training"))
    latest = store.latest("live")
    assert latest is not None and latest["source"] == "single"
    # ...but one trained since then does: its export is the newer word on the customer.
    store.import_snapshot(
        block(["live"], "digital-affluent", version="v2", source="training", minute=7)
    )
    latest = store.latest("live")
    assert latest is not None
    assert (latest["model_version"], latest["segment_id"]) == ("v2", "digital-affluent")
    store.dispose()


def _import_in_process(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = CustomerStore(url)
    store.migrate()
    assignments = block([str(i) for i in range(2000)], source="training")
    barrier.wait()
    store.import_snapshot(assignments)
    store.dispose()


def test_import_snapshot_from_two_processes_imports_once(database_url: str) -> None:
    CustomerStore(database_url).migrate()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_import_in_process, args=(database_url, barrier)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = CustomerStore(database_url)
    assert count(store, "assignment_history") == 2000
    assert count(store, "latest_assignments") == 2000
    assert count(store, "snapshot_imports") == 1
    store.dispose()


def test_members_pages_list_every_member_exactly_once(database_url: str) -> None:
    store = CustomerStore(database_url)
    keys = [f"{'aB_Z'[i % 4]}{i:05d}" for i in range(1000)]  # mixed case: byte order
    store.record(block(keys, ["branch-loyal" if i % 3 else "support-seeking" for i in range(1000)]))
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = store.members("branch-loyal", model_version="v1", limit=70, cursor=cursor)
        assert len(page) <= 70
        seen += [member["customer_key"] for member in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 666
    assert seen == sorted(seen)
    assert store.live_counts("v1") == {"branch-loyal": 666, "support-seeking": 334}
    store.dispose()


def test_sizes_and_members_count_only_what_one_version_said(database_url: str) -> None:
    store = CustomerStore(database_url)
    store.record(block([str(i) for i in range(10)], version="v1"))
    store.record(block(["3", "4", "5"], version="v2"))
    store.record(block(["8"], "support-seeking", version="v2"))
    assert store.live_counts("v1") == {"branch-loyal": 6}
    assert store.live_counts("v2") == {"branch-loyal": 3, "support-seeking": 1}
    members, _ = store.members("branch-loyal", model_version="v2", limit=100)
    assert [member["customer_key"] for member in members] == ["3", "4", "5"]
    assert store.versions_other_than("v2") == {"v1": 6}
    assert store.versions_other_than("v3") == {"v1": 6, "v2": 4}
    store.record(block([str(i) for i in range(10)], version="v2"))
    assert store.versions_other_than("v2") == {}
    store.dispose()


def test_others_of_a_segment_are_every_customer_one_version_put_elsewhere(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    store.record(block(["b", "a", "c"], ["support-seeking", "digital-affluent", "branch-loyal"]))
    store.record(block(["d"], "support-seeking", version="v0"))  # another version's
    moved = block(["e"], "support-seeking")
    moved.features[0] = [50000.0, 3.0, 0.0, 10.0, 9.0]
    store.record(moved)
    keys, segments, features = store.others_assigned_by("v1", "branch-loyal")
    assert keys == ["a", "b", "e"]
    assert segments == ["digital-affluent", "support-seeking", "support-seeking"]
    assert features.tolist()[2] == [50000.0, 3.0, 0.0, 10.0, 9.0]
    assert store.others_assigned_by("v9", "branch-loyal")[2].shape == (0, 5)
    store.dispose()


def test_keys_assigned_by_a_version_come_in_pages_of_segment_then_key(database_url: str) -> None:
    store = CustomerStore(database_url)
    segments = ["support-seeking" if i % 2 else "branch-loyal" for i in range(25)]
    store.record(block([f"k{i:02d}" for i in range(25)], segments, version="old"))
    store.record(block(["other"], version="new"))
    pages, after = [], None
    while page := store.keys_assigned_by("old", after=after, limit=10):
        pages.append(page)
        after = page[-1]
    listed = [entry for page in pages for entry in page]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert listed == sorted((segment, f"k{i:02d}") for i, segment in enumerate(segments))
    store.dispose()


def rescored(model_version: str) -> Callable[[list[str], np.ndarray], Assignments]:
    """An ``assign`` for rescoring: segment by credit limit, as a model of ``model_version``."""

    def assign(keys: list[str], features: np.ndarray) -> Assignments:
        segments = ["high" if limit > 50_000 else "low" for limit in features[:, 0]]
        scored = block(keys, segments, version=model_version, minute=30, source="rescore")
        return replace(scored, features=features)

    return assign


@pytest.mark.parametrize("size", [20, 300], ids=["insert", "bulk"])
def test_rescoring_assigns_again_only_what_another_version_assigned(
    database_url: str, size: int
) -> None:
    store = CustomerStore(database_url)
    keys = [f"c{i:04d}" for i in range(size)]
    old = block(keys, version="v1")
    store.record(
        replace(old, features=np.column_stack([np.arange(size) * 1_000.0, old.features[:, 1:]]))
    )
    store.record(block(["c0001"], "kept", version="v2", minute=20, source="single"))
    assert store.rescore(keys, "v2", rescored("v2")) == size - 1
    counts = store.live_counts("v2")
    assert counts.pop("kept") == 1
    assert counts.get("low", 0) == sum(1 for i in range(size) if i != 1 and i * 1_000 <= 50_000)
    assert counts.get("high", 0) == sum(1 for i in range(size) if i * 1_000 > 50_000)
    latest = store.latest("c0002")
    assert latest is not None
    assert (latest["model_version"], latest["source"], latest["avg_credit_limit"]) == (
        "v2",
        "rescore",
        2_000.0,
    )
    assert [entry["source"] for entry in store.history("c0002")] == ["rescore", "batch"]
    # The live answer by the new version stands: neither overwritten nor assigned twice.
    assert [entry["source"] for entry in store.history("c0001")] == ["single", "batch"]
    assert store.rescore(keys, "v2", rescored("v2")) == 0
    assert count(store, "assignment_history") == 2 * size
    store.dispose()


def test_members_refuses_a_cursor_it_did_not_hand_out(database_url: str) -> None:
    store = CustomerStore(database_url)
    with pytest.raises(InvalidCursor):
        store.members("branch-loyal", model_version="v1", limit=10, cursor="%%%")
    store.dispose()


def test_unreachable_database_raises_store_unavailable() -> None:
    store = CustomerStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout_seconds=1)
    with pytest.raises(StoreUnavailable):
        store.record(block(["1"]))
    with pytest.raises(StoreUnavailable):
        store.latest("1")


def test_postgresql_urls_with_and_without_driver_both_work() -> None:
    from service.store.engine import sqlalchemy_url

    assert sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert sqlalchemy_url("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert sqlalchemy_url("sqlite:///data/x.db") == "sqlite:///data/x.db"


def test_bulk_write_keeps_keys_with_backslashes_quotes_and_unicode(database_url: str) -> None:
    store = CustomerStore(database_url)
    odd = ["a\\b", 'quote"d', "it's", "ümlaut-ключ", "tab\\tnot-a-tab", "\\N"]
    store.record(block(odd + [f"filler-{i}" for i in range(300)]))
    for key in odd:
        stored = store.latest(key)
        assert stored is not None and stored["customer_key"] == key
    assert store.latest("N") is None
    store.dispose()


def test_rescoring_waits_for_a_live_write_under_way_and_leaves_its_answer(
    database_url: str,
) -> None:
    store = CustomerStore(database_url)
    keys = [f"c{i}" for i in range(5)]
    store.record(block(keys, version="v1"))
    finished: list[int] = []
    with store.engine.begin() as live:
        # A live answer by the new version, not yet committed, holds the customer's row.
        live.execute(
            text("UPDATE latest_assignments SET model_version = 'v2' WHERE customer_key = 'c3'")
        )
        rescoring = threading.Thread(
            target=lambda: finished.append(store.rescore(keys, "v2", rescored("v2")))
        )
        rescoring.start()
        rescoring.join(timeout=0.5)
        assert rescoring.is_alive()  # waiting on the row lock
    rescoring.join(timeout=10)
    assert finished == [4]
    assert [entry["source"] for entry in store.history("c3")] == ["batch"]
    assert store.versions_other_than("v2") == {}
    store.dispose()


def test_a_damaged_sqlite_file_is_not_reported_as_fine(tmp_path: Path) -> None:
    """The table of latest assignments damaged (its b-tree roots overwritten), the schema
    and the migrations' own table intact: ``SELECT 1`` still answered."""
    path = tmp_path / "store.db"
    store = CustomerStore(f"sqlite:///{path}")
    store.record(block([f"c{i:05d}" for i in range(5_000)]))
    store.dispose()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
        roots = [
            page
            for (page,) in connection.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'latest_assignments'"
            )
        ]
    with path.open("r+b") as damaged:
        for page in roots:
            damaged.seek((page - 1) * page_size)
            damaged.write(b"\xff" * page_size)
    store = CustomerStore(f"sqlite:///{path}")
    store.ensure_migrated()  # the migrations' table is intact: this works
    with pytest.raises(StoreUnavailable):
        store.ping()
    store.dispose()
