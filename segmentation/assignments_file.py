"""A version's ``assignments.csv``: every training customer's key, segment and features.

One writer (training publishes it) and one reader (the service's training snapshot, and
training's own id matching against the previous version), so that the file's columns are
spelled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

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
    table = pd.DataFrame({CUSTOMER_KEY: assignments.keys, SEGMENT_ID: assignments.segment_ids})
    for column, feature in enumerate(FEATURES):
        values_of_feature = values[:, column]
        whole = bool(
            np.all(values_of_feature == np.round(values_of_feature))
            and np.all(np.abs(values_of_feature) < 2**53)
        )
        table[feature] = values_of_feature.astype(np.int64) if whole else values_of_feature
    table.to_csv(path, index=False)


def read_assignments(
    path: Path, *, rows: int | None = None, with_features: bool = True
) -> VersionAssignments:
    """Read the file (its first ``rows`` rows, if given); without features when not needed.

    Raises
    ------
    OSError, ValueError, KeyError
        The file is missing, unreadable or lacks a column.
    """
    columns = list(COLUMNS) if with_features else [CUSTOMER_KEY, SEGMENT_ID]
    table = pd.read_csv(
        path, usecols=columns, dtype={CUSTOMER_KEY: str, SEGMENT_ID: str}, nrows=rows
    )
    features = (
        table[list(FEATURES)].to_numpy(dtype=np.float64)
        if with_features
        else np.empty((len(table), 0))
    )
    return VersionAssignments(
        keys=table[CUSTOMER_KEY].tolist(),
        segment_ids=table[SEGMENT_ID].tolist(),
        features=features,
    )
