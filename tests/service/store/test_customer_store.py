"""CustomerStore on a real database: schema, writes, history, imports, pages, failures."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from service.store.customer_store import (
    AssignmentRow,
    CustomerStore,
    InvalidCursor,
    StoreUnavailable,
)

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def row(
    key: str,
    segment: str = "branch-loyal",
    *,
    version: str = "v1",
    minute: int = 0,
    source: str = "batch",
) -> AssignmentRow:
    return AssignmentRow(
        customer_key=key,
        segment_id=segment,
        model_version=version,
        features=(30000.0, 4.0, 3.0, 1.0, 2.0),
        confidence=0.4,
        atypical=False,
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
    store.dispose()


def test_record_keeps_latest_and_full_history_newest_first(database_url: str) -> None:
    store = CustomerStore(database_url)
    store.record([row("1", "branch-loyal", minute=0, source="training")])
    store.record([row("1", "support-seeking", minute=5, source="single")])
    store.record([row("1", "digital-affluent", version="v2", minute=9), row("2")])
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
    rows = [
        row(str(i % 300), "branch-loyal" if i < 300 else "support-seeking", minute=i)
        for i in range(600)
    ]
    store.record(rows)
    assert count(store, "latest_assignments") == 300
    assert count(store, "assignment_history") == 600
    latest = store.latest("7")
    assert latest is not None and latest["segment_id"] == "support-seeking"
    store.dispose()


def test_failed_write_leaves_nothing_half_written(database_url: str) -> None:
    store = CustomerStore(database_url)
    good = [row(str(i)) for i in range(250)]
    broken = row("x")._replace(segment_id=None)
    with pytest.raises(StoreUnavailable):
        store.record([*good, broken])
    assert count(store, "assignment_history") == 0
    assert count(store, "latest_assignments") == 0
    store.dispose()


def test_import_snapshot_happens_once_per_model_version(database_url: str) -> None:
    store = CustomerStore(database_url)
    rows = [row(str(i), source="training") for i in range(50)]
    assert store.import_snapshot("v1", rows) is True
    assert store.import_snapshot("v1", rows) is False
    assert store.is_imported("v1")
    assert count(store, "assignment_history") == 50
    assert store.import_snapshot("v2", rows) is True
    assert count(store, "assignment_history") == 100
    store.dispose()


@pytest.mark.parametrize("size", [50, 500], ids=["insert", "bulk"])
def test_a_late_snapshot_import_keeps_what_the_same_model_said_since(
    database_url: str, size: int
) -> None:
    """An import delayed by an outage lands after live answers; those stay the latest."""
    store = CustomerStore(database_url)
    store.record([row("live", "support-seeking", minute=5, source="single")])
    training = [row(str(i), source="training", minute=9) for i in range(size)]
    store.import_snapshot("v1", [*training, row("live", source="training", minute=9)])
    latest = store.latest("live")
    assert latest is not None
    assert (latest["segment_id"], latest["source"]) == ("support-seeking", "single")
    assert len(store.history("live")) == 2
    # A newer model's snapshot does replace it.
    store.import_snapshot("v2", [row("live", "digital-affluent", version="v2", source="training")])
    latest = store.latest("live")
    assert latest is not None
    assert (latest["model_version"], latest["segment_id"]) == ("v2", "digital-affluent")
    store.dispose()


def _import_in_process(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = CustomerStore(url)
    store.migrate()
    rows = [row(str(i), source="training") for i in range(2000)]
    barrier.wait()
    store.import_snapshot("v1", rows)
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
    store.record(
        [row(f"{i:05d}", "branch-loyal" if i % 3 else "support-seeking") for i in range(1000)]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = store.members("branch-loyal", limit=70, cursor=cursor)
        assert len(page) <= 70
        seen += [member["customer_key"] for member in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 666
    assert seen == sorted(seen)
    assert store.live_counts() == {"branch-loyal": 666, "support-seeking": 334}
    store.dispose()


def test_members_refuses_a_cursor_it_did_not_hand_out(database_url: str) -> None:
    store = CustomerStore(database_url)
    with pytest.raises(InvalidCursor):
        store.members("branch-loyal", limit=10, cursor="%%%")
    store.dispose()


def test_unreachable_database_raises_store_unavailable() -> None:
    store = CustomerStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout_seconds=1)
    with pytest.raises(StoreUnavailable):
        store.record([row("1")])
    with pytest.raises(StoreUnavailable):
        store.latest("1")


def test_postgresql_urls_with_and_without_driver_both_work() -> None:
    from service.store.customer_store import sqlalchemy_url

    assert sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert sqlalchemy_url("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert sqlalchemy_url("sqlite:///data/x.db") == "sqlite:///data/x.db"


def test_bulk_write_keeps_keys_with_backslashes_quotes_and_unicode(database_url: str) -> None:
    store = CustomerStore(database_url)
    odd = ["a\\b", 'quote"d', "it's", "ümlaut-ключ", "tab\\tnot-a-tab", "\\N"]
    store.record([row(key) for key in odd] + [row(f"filler-{i}") for i in range(300)])
    for key in odd:
        stored = store.latest(key)
        assert stored is not None and stored["customer_key"] == key
    assert store.latest("N") is None
    store.dispose()
