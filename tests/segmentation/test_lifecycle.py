"""The version history: what it records, how statuses follow from it, and that no writer
loses another's entries."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from segmentation import lifecycle
from segmentation.artifact import point_latest
from segmentation.lifecycle import LifecycleError, Transition

VERSION_A = "20261201T090000Z-aaaaaaaa"
VERSION_B = "20261201T100000Z-bbbbbbbb"


def transition(status: lifecycle.Status, reason: str = "because") -> Transition:
    return Transition(status=status, at=lifecycle.now(), by="test", reason=reason)


def test_transitions_are_kept_in_order_per_version(tmp_path: Path) -> None:
    lifecycle.record(tmp_path, [(VERSION_A, transition("candidate", "trained"))])
    lifecycle.record(
        tmp_path,
        [(VERSION_A, transition("active", "promoted")), (VERSION_B, transition("candidate"))],
    )
    histories = lifecycle.read_histories(tmp_path)
    assert [t.status for t in histories[VERSION_A]] == ["candidate", "active"]
    assert [t.reason for t in histories[VERSION_A]] == ["trained", "promoted"]
    assert [t.status for t in histories[VERSION_B]] == ["candidate"]
    assert histories[VERSION_A][0].at.endswith("Z")


def test_no_history_yet_reads_as_empty(tmp_path: Path) -> None:
    assert lifecycle.read_histories(tmp_path) == {}


@pytest.mark.parametrize(
    ("history", "active", "expected"),
    [
        ((), VERSION_A, "active"),
        (("candidate",), VERSION_A, "active"),  # what `latest` names is active, always
        (("candidate",), VERSION_B, "candidate"),
        (("candidate", "rejected"), VERSION_B, "rejected"),
        (("candidate", "active"), VERSION_B, "retired"),  # `latest` moved on
        (("candidate", "active", "retired"), VERSION_B, "retired"),
        ((), VERSION_B, "retired"),  # published before the history existed
        ((), None, "retired"),
    ],
)
def test_status_follows_latest_first_then_the_last_transition(
    history: tuple[lifecycle.Status, ...], active: str | None, expected: str
) -> None:
    transitions = [transition(status) for status in history]
    assert lifecycle.status_of(VERSION_A, transitions, active) == expected


def test_a_damaged_history_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / lifecycle.LIFECYCLE_FILE).write_text('{"versions": {"x": [{"status": "maybe"}]}}')
    with pytest.raises(LifecycleError, match="is not a version history"):
        lifecycle.read_histories(tmp_path)
    with pytest.raises(LifecycleError):
        lifecycle.record(tmp_path, [(VERSION_A, transition("candidate"))])
    assert "maybe" in (tmp_path / lifecycle.LIFECYCLE_FILE).read_text()


def test_a_version_name_that_could_escape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a valid version name"):
        lifecycle.record(tmp_path, [("../etc", transition("candidate"))])
    assert not (tmp_path / lifecycle.LIFECYCLE_FILE).exists()


def test_published_versions_are_the_directories_with_a_manifest(tmp_path: Path) -> None:
    for name in (VERSION_A, VERSION_B, ".staging-123"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    (tmp_path / "20261201T110000Z-cccccccc").mkdir()  # a publication that never finished
    point_latest(tmp_path, VERSION_A)
    assert lifecycle.published_versions(tmp_path) == [VERSION_A, VERSION_B]
    assert lifecycle.active_version(tmp_path) == VERSION_A


def _record_many(models_dir: Path, writer: int, count: int) -> None:
    for number in range(count):
        version = f"20261201T{writer:02d}0000Z-{number:08d}"
        lifecycle.record(models_dir, [(version, transition("candidate", f"{writer}/{number}"))])


def test_writers_in_several_processes_lose_no_entry(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_record_many, args=(tmp_path, w, 40)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    histories = lifecycle.read_histories(tmp_path)
    assert len(histories) == 4 * 40
    assert all(len(history) == 1 for history in histories.values())
