"""A version's ``assignments.csv``: every training customer's key, segment and features.

One writer (training publishes it) and one reader (the service's training snapshot, and
training's own id matching against the previous version), so that the file's columns are
spelled in one place.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import numpy.typing as npt

from segmentation.features import CUSTOMER_KEY, FEATURES

SEGMENT_ID = "segment_id"
COLUMNS: tuple[str, ...] = (CUSTOMER_KEY, SEGMENT_ID, *FEATURES)
"""The file's header, in order."""


@dataclass(frozen=True)
class VersionAssignments:
    """The file's rows, column by column, in file order (a key may appear more than once)."""

    keys: list[str]
    segment_ids: list[str]
    features: npt.NDArray[np.float64]
    """``(n, len(FEATURES))``, in ``FEATURES`` order."""


def write_assignments(path: Path, assignments: VersionAssignments) -> None:
    """Write the file; whole-number features are written as integers (``3``, not ``3.0``)."""
    values = assignments.features
    columns: list[list[int] | list[float]] = []
    for column in range(len(FEATURES)):
        values_of_feature = values[:, column]
        whole = bool(
            np.all(values_of_feature == np.round(values_of_feature))
            and np.all(np.abs(values_of_feature) < 2**53)
        )
        columns.append(
            values_of_feature.astype(np.int64).tolist() if whole else values_of_feature.tolist()
        )
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(zip(assignments.keys, assignments.segment_ids, *columns, strict=True))


def read_assignments(
    path: Path, *, rows: int | None = None, with_features: bool = True
) -> VersionAssignments:
    """Read the file (its first ``rows`` rows, if given); without features when not needed.

    Raises
    ------
    OSError, ValueError, KeyError
        The file is missing, unreadable or lacks a column (or a row a value).
    """
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader, [])
        where = {name: position for position, name in enumerate(header)}
        wanted = COLUMNS if with_features else (CUSTOMER_KEY, SEGMENT_ID)
        positions = [where[name] for name in wanted]  # KeyError names a missing column
        try:
            table = [[row[position] for position in positions] for row in islice(reader, rows)]
        except IndexError:
            raise ValueError(f"line {reader.line_num} has fewer values than the header") from None
    features = (
        np.array([row[2:] for row in table], dtype=np.float64).reshape(len(table), len(FEATURES))
        if with_features
        else np.empty((len(table), 0))
    )
    return VersionAssignments(
        keys=[row[0] for row in table],
        segment_ids=[row[1] for row in table],
        features=features,
    )
