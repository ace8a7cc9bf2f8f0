"""A block of assignments to keep: what one model said of some customers, column by column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES

ASSIGNMENT_FIELDS: tuple[str, ...] = (
    "segment_id",
    "model_version",
    *FEATURES,
    "confidence",
    "atypical",
    "source",
    "assigned_at",
)
"""The columns of an assignment, in the tables' order, after the customer key."""

COLUMNS: tuple[str, ...] = ("customer_key", *ASSIGNMENT_FIELDS)


@dataclass(frozen=True, eq=False)
class Assignments:
    """Assignments to keep, column by column: what one model said of these customers, from
    one source, at one moment.

    A batch is kept as one block: a Python object per customer (a frozen dataclass, then
    even a named tuple) cost as much as writing the rows to PostgreSQL.
    """

    customer_keys: Sequence[str]
    segment_ids: Sequence[str]
    features: npt.NDArray[np.float64]
    """``(n, len(FEATURES))``, in ``FEATURES`` order."""
    confidence: Sequence[float]
    atypical: Sequence[bool]
    model_version: str
    source: str
    assigned_at: datetime

    def __post_init__(self) -> None:
        lengths = {
            len(self.customer_keys),
            len(self.segment_ids),
            len(self.features),
            len(self.confidence),
            len(self.atypical),
        }
        if len(lengths) != 1:
            raise ValueError(f"assignment columns differ in length: {sorted(lengths)}")
        if self.features.ndim != 2 or self.features.shape[1] != len(FEATURES):
            raise ValueError(f"features must be (n, {len(FEATURES)}), not {self.features.shape}")

    def __len__(self) -> int:
        return len(self.customer_keys)

    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple per row, in ``COLUMNS`` order."""
        shared = (self.model_version,)
        last = (self.source, self.assigned_at)
        return [
            (key, segment_id, *shared, *features, confidence, atypical, *last)
            for key, segment_id, features, confidence, atypical in zip(
                self.customer_keys,
                self.segment_ids,
                self.features.tolist(),
                self.confidence,
                self.atypical,
                strict=True,
            )
        ]

    def as_params(self) -> list[dict[str, Any]]:
        """One parameter dict per row, for INSERT statements."""
        return [dict(zip(COLUMNS, row, strict=True)) for row in self.rows()]
