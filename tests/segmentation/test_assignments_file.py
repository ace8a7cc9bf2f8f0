"""A version's assignments.csv: what training writes is what the service and training read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segmentation.assignments_file import (
    COLUMNS,
    VersionAssignments,
    read_assignments,
    write_assignments,
)


def test_assignments_round_trip_with_counts_as_whole_numbers(tmp_path: Path) -> None:
    written = VersionAssignments(
        keys=["87073", "38414", "87073"],
        segment_ids=["branch-loyal", "support-seeking", "digital-affluent"],
        features=np.array([[100000.0, 2, 1, 1, 0], [50000.5, 3, 0, 10, 9], [75000.0, 5, 2, 3, 1]]),
    )
    path = tmp_path / "assignments.csv"
    write_assignments(path, written)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == "87073,branch-loyal,100000.0,2,1,1,0"  # one fractional limit: floats
    read = read_assignments(path)
    assert read.keys == written.keys  # both records of a repeated key, in file order
    assert read.segment_ids == written.segment_ids
    np.testing.assert_array_equal(read.features, written.features)
    assert read_assignments(path, rows=1).keys == ["87073"]
    without = read_assignments(path, with_features=False)
    assert without.keys == written.keys and without.features.shape == (3, 0)


def test_keys_that_need_quoting_and_short_rows(tmp_path: Path) -> None:
    written = VersionAssignments(
        keys=["a,b", 'say "hi"', "plain"],
        segment_ids=["one", "two", "three"],
        features=np.array([[1.5, 2, 3, 4, 5], [2.5, 2, 3, 4, 5], [3.5, 2, 3, 4, 5]]),
    )
    path = tmp_path / "assignments.csv"
    write_assignments(path, written)
    assert read_assignments(path).keys == written.keys
    path.write_text(path.read_text() + "cut,short,1\n")
    with pytest.raises(ValueError, match="line 5"):
        read_assignments(path)
    path.write_text("customer_key,segment_id\nk,s\n")
    with pytest.raises(KeyError):
        read_assignments(path)
