"""The active model's training snapshot: every training customer's features and segment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from segmentation.assignments_file import read_assignments

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainingSnapshot:
    """``assignments.csv`` as arrays, with a key index where the last record wins."""

    keys: list[str]
    segment_ids: list[str]
    features: FloatArray
    row_by_key: dict[str, int]

    @classmethod
    def read(cls, path: Path, *, rows: int | None = None) -> TrainingSnapshot:
        """The version's ``assignments.csv`` (its first ``rows`` rows, if given).

        Raises
        ------
        OSError, ValueError, KeyError
            The file is missing, unreadable or lacks a column.
        """
        assignments = read_assignments(path, rows=rows)
        keys = assignments.keys
        return cls(
            keys=keys,
            segment_ids=assignments.segment_ids,
            features=assignments.features,
            row_by_key={key: row for row, key in enumerate(keys)},
        )

    def __len__(self) -> int:
        return len(self.keys)
