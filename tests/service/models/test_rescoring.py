"""Rescoring the store after a switch: stale answers say so, a stopped run resumes."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from service.customer_records import CustomerRecords
from service.models import rescoring as rescoring_module
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.models.rescoring import LOCK_FILE, STORE_LOCK, StoreRescoring
from service.models.snapshot import TrainingSnapshot
from service.shared_state import DirectoryState
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from tests.service.store.conftest import fresh_postgres_database


@pytest.fixture
def records(tmp_path: Path) -> Iterator[CustomerRecords]:
    records = CustomerRecords(CustomerStore(f"sqlite:///{tmp_path / 'store.db'}"))
    yield records
    records.close()


@dataclass(frozen=True)
class Switch:
    """A store that the first version filled with its training customers, and the second
    version, now active."""

    first: str
    second: str
    new: ActiveModel
    snapshot: TrainingSnapshot

    @property
    def known(self) -> int:
        return len(set(self.snapshot.keys))


@pytest.fixture
def switch(versions: tuple[Path, str, str], records: CustomerRecords) -> Switch:
    models, first, second = versions
    old, snapshot = load_model(models, first, self_test_rows=100)
    new, _ = load_model(models, second, self_test_rows=100)
    records.import_snapshot(old, snapshot)
    return Switch(first, second, new, snapshot)


def history_sources(records: CustomerRecords) -> dict[str, int]:
    with records.store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT source, COUNT(*) FROM assignment_history GROUP BY source")
        )
        return {str(source): int(count) for source, count in rows}


def test_a_stopped_rescoring_resumes_where_it_was_and_assigns_everyone_once(
    switch: Switch,
    records: CustomerRecords,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = switch.snapshot.keys[0]
    known = switch.known
    monkeypatch.setattr(rescoring_module, "PAGE_SIZE", 100)

    # Until the rescoring reaches a customer, a look-up says which version answered.
    stale = records.customer(switch.new, switch.snapshot, key)
    assert (stale["model_version"], stale["current"]) == (switch.first, False)

    # A worker stops after two pages (its model changed under it, as when it shuts down).
    answers = iter([switch.new, switch.new, switch.new, None])
    stopping = StoreRescoring(
        records, lambda: next(answers, None), tmp_path, DirectoryState(tmp_path)
    )
    stopping.check()
    progress = stopping.progress()
    assert progress is not None
    assert (progress.version, progress.state, progress.rescored) == (switch.second, "running", 200)
    assert progress.remaining == known - 200
    assert records.store.versions_other_than(switch.second) == {switch.first: known - 200}

    # Another worker (or the same, restarted) carries on and finishes.
    resumed = StoreRescoring(records, lambda: switch.new, tmp_path, DirectoryState(tmp_path))
    resumed.check()
    progress = resumed.progress()
    assert progress is not None
    assert (progress.state, progress.rescored, progress.remaining) == ("finished", known, 0)
    assert records.store.versions_other_than(switch.second) == {}
    assert history_sources(records) == {"training": len(switch.snapshot), "rescore": known}
    current = records.customer(switch.new, switch.snapshot, key)
    assert (current["model_version"], current["current"], current["source"]) == (
        switch.second,
        True,
        "rescore",
    )
    resumed.check()  # nothing left: nothing written
    assert history_sources(records)["rescore"] == known


def test_one_worker_rescores_at_a_time(
    switch: Switch, records: CustomerRecords, tmp_path: Path
) -> None:
    rescoring = StoreRescoring(records, lambda: switch.new, tmp_path, DirectoryState(tmp_path))
    descriptor = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # another worker is at it
        rescoring.check()
        assert rescoring.progress() is None
        assert switch.first in records.store.versions_other_than(switch.second)
    finally:
        os.close(descriptor)
    rescoring.check()
    assert records.store.versions_other_than(switch.second) == {}


def test_one_process_of_all_the_replicas_rescores_at_a_time(
    versions: tuple[Path, str, str], tmp_path: Path
) -> None:
    models, first, second = versions
    old, snapshot = load_model(models, first, self_test_rows=100)
    new, _ = load_model(models, second, self_test_rows=100)
    with fresh_postgres_database() as url:
        records, other_replica = CustomerRecords(CustomerStore(url)), CustomerStore(url)
        try:
            records.import_snapshot(old, snapshot)
            rescoring = StoreRescoring(records, lambda: new, tmp_path, DirectoryState(tmp_path))
            with other_replica.exclusively(STORE_LOCK) as held:
                assert held  # another replica is at it: this one leaves the store alone
                rescoring.check()
                assert rescoring.progress() is None
                assert first in records.store.versions_other_than(second)
            rescoring.check()
            assert records.store.versions_other_than(second) == {}
        finally:
            records.close()
            other_replica.dispose()


def test_a_failed_page_stops_the_check_and_the_next_one_carries_on(
    switch: Switch,
    records: CustomerRecords,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = switch.known
    monkeypatch.setattr(rescoring_module, "PAGE_SIZE", 100)
    refused = sorted(switch.snapshot.keys)[known // 2]
    with records.store.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE ON latest_assignments "
            f"WHEN NEW.customer_key = '{refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    rescoring = StoreRescoring(records, lambda: switch.new, tmp_path, DirectoryState(tmp_path))
    with pytest.raises(StoreUnavailable):
        rescoring.check()
    left = records.store.versions_other_than(switch.second)[switch.first]
    assert 0 < left < known and (known - left) % 100 == 0  # whole pages, the failed one not
    assert history_sources(records)["rescore"] == known - left
    with records.store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER refuse")
    rescoring.check()
    assert records.store.versions_other_than(switch.second) == {}
    assert history_sources(records)["rescore"] == known
