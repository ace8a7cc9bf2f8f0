"""The drift window: the newest customers, wrapped around, shared between workers (on one
machine through a directory, across replicas through Redis)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from service.scoring.drift_window import DriftWindow
from service.shared_state import DirectoryState
from tests.service.conftest import NewWorker


def customers(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=float)[:, None].repeat(5, axis=1)


def test_the_window_keeps_the_newest_customers_in_order(worker: NewWorker) -> None:
    window = DriftWindow(10, worker())
    window.add("v1", customers(0, 7), ["a"] * 7, [False] * 7)
    window.add("v1", customers(7, 6), ["b"] * 6, [True] * 6)
    rows = window.rows("v1")
    assert rows.features[:, 0].tolist() == list(range(3, 13))
    assert rows.segment_ids.tolist() == ["a"] * 4 + ["b"] * 6
    assert rows.atypical.tolist() == [False] * 4 + [True] * 6
    window.add("v1", customers(100, 25), ["c"] * 25, [False] * 25)  # more than fits
    assert window.rows("v1").features[:, 0].tolist() == list(range(115, 125))


def test_a_new_model_starts_a_new_window(worker: NewWorker) -> None:
    window = DriftWindow(10, worker())
    window.add("v1", customers(0, 5), ["a"] * 5, [False] * 5)
    window.add("v2", customers(5, 2), ["x"] * 2, [False] * 2)
    assert len(window.rows("v1")) == 0
    assert window.rows("v2").features[:, 0].tolist() == [5.0, 6.0]


def test_workers_see_each_others_customers_once_shared(worker: NewWorker) -> None:
    first, second = DriftWindow(6, worker()), DriftWindow(6, worker())
    first.add("v1", customers(0, 4), ["a"] * 4, [False] * 4)
    time.sleep(0.01)
    second.add("v1", customers(10, 4), ["b"] * 4, [False] * 4)
    assert len(first.rows("v1")) == 4  # nothing shared yet
    second.share()
    first.share()
    merged = first.rows("v1")
    # The newest six over both workers, oldest first.
    assert merged.features[:, 0].tolist() == [2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    assert second.rows("v1").features[:, 0].tolist() == merged.features[:, 0].tolist()
    assert len(second.rows("v2")) == 0


def test_a_damaged_piece_of_another_worker_is_skipped(worker: NewWorker) -> None:
    window = DriftWindow(6, worker())
    window.add("v1", customers(0, 3), ["a"] * 3, [False] * 3)
    worker().publish("drift", b"half a file")
    assert len(window.rows("v1")) == 3


def test_on_one_machine_the_pieces_are_files_in_the_state_directory(tmp_path: Path) -> None:
    window = DriftWindow(6, DirectoryState(tmp_path))
    window.add("v1", customers(0, 3), ["a"] * 3, [False] * 3)
    window.share()
    (piece,) = tmp_path.glob("drift-*.piece")
    with np.load(piece) as shared:
        assert shared["features"][:, 0].tolist() == [0.0, 1.0, 2.0]
    window.close()
    assert not piece.exists()


def test_a_new_model_is_shared_even_when_its_count_matches_the_old_one(worker: NewWorker) -> None:
    first, second = DriftWindow(10, worker()), DriftWindow(10, worker())
    first.add("v1", customers(0, 2), ["a"] * 2, [False] * 2)
    first.share()
    first.add("v2", customers(5, 2), ["x"] * 2, [False] * 2)
    first.share()
    assert second.rows("v2").features[:, 0].tolist() == [5.0, 6.0]
    assert len(second.rows("v1")) == 0


def test_a_stopping_worker_takes_its_customers_out(worker: NewWorker) -> None:
    first, second = DriftWindow(10, worker()), DriftWindow(10, worker())
    first.add("v1", customers(0, 3), ["a"] * 3, [False] * 3)
    first.share()
    assert len(second.rows("v1")) == 3
    first.close()
    assert len(second.rows("v1")) == 0
