"""What the service scored lately, for drift: the last N customers, across every worker.

Each worker keeps its own ring of the last N customers it scored (features, segment,
atypical flag, when), all by the model it serves; a change of model starts a new ring.
Once a second each worker publishes its ring in the shared state (a file of its own on
one machine, a key in Redis across replicas: :mod:`service.shared_state`), and a report
reads every worker's (its own ring live), keeps the customers scored by the active model,
and takes the newest N of them: whichever worker answers, it reports all of them, at most
a second behind the others.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from service.shared_state import SharedState

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
KIND = "drift"
"""The drift window's pieces in the shared state."""


@dataclass(frozen=True)
class WindowRows:
    """Customers in the window, oldest first."""

    times: FloatArray
    features: FloatArray
    segment_ids: npt.NDArray[np.str_]
    atypical: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.times)

    def with_text_ids(self) -> WindowRows:
        """The same rows with the segment ids as a text array (as files hold them)."""
        return WindowRows(
            self.times, self.features, self.segment_ids.astype(np.str_), self.atypical
        )

    @classmethod
    def empty(cls) -> WindowRows:
        return cls(
            times=np.empty(0),
            features=np.empty((0, len(FEATURES))),
            segment_ids=np.empty(0, dtype=np.str_),
            atypical=np.empty(0, dtype=np.bool_),
        )


class DriftWindow:
    """This worker's last ``size`` scored customers, shared with the other workers."""

    def __init__(self, size: int, state: SharedState) -> None:
        self.size = size
        self._state = state
        self._lock = threading.Lock()
        self._version: str | None = None
        self._times = np.zeros(size)
        self._features = np.zeros((size, len(FEATURES)))
        self._segment_ids = np.empty(size, dtype=object)
        self._atypical = np.zeros(size, dtype=np.bool_)
        self._added = 0
        self._changes = 0
        """Grows with every add, across model changes: what share() compares with."""
        self._shared = -1

    def add(
        self,
        version: str,
        features: FloatArray,
        segment_ids: Sequence[str],
        atypical: Sequence[bool] | npt.NDArray[np.bool_],
    ) -> None:
        """Keep customers ``version`` scored (called from the loop and from batch threads)."""
        count = len(segment_ids)
        if count == 0:
            return
        start = max(count - self.size, 0)
        with self._lock:
            if version != self._version:
                self._version, self._added = version, 0
            first, kept = self._added % self.size, count - start
            # A slice when the rows do not wrap around (always, for one customer): on the
            # live path, fancy indexing cost several times more.
            rows: slice | npt.NDArray[np.intp] = (
                slice(first, first + kept)
                if first + kept <= self.size
                else (first + np.arange(kept)) % self.size
            )
            self._times[rows] = time.time()
            self._features[rows] = features[start:]
            self._segment_ids[rows] = segment_ids[start:]
            self._atypical[rows] = atypical[start:]
            self._added += count - start
            self._changes += 1

    def share(self) -> None:
        """Write this worker's ring for the others, if it changed (atomically)."""
        with self._lock:
            if self._changes == self._shared or self._version is None:
                return
            version, rows, changes = self._version, self._own(), self._changes
        rows = rows.with_text_ids()
        document = io.BytesIO()
        np.savez(
            document,
            version=np.array(version),
            times=rows.times,
            features=rows.features,
            segment_ids=rows.segment_ids,
            atypical=rows.atypical,
        )
        self._state.publish(KIND, document.getvalue())
        self._shared = changes

    def close(self) -> None:
        """Take this worker's customers out of the other workers' reports (it is stopping)."""
        self._state.withdraw(KIND)

    def rows(self, version: str) -> WindowRows:
        """The newest ``size`` customers ``version`` scored, over every worker, oldest first."""
        with self._lock:
            own = self._own() if self._version == version else None
        parts = [own.with_text_ids()] if own is not None else []
        for piece in self._state.pieces(KIND):
            # A worker that was stopping may have left a piece that cannot be read: skipped.
            with (
                contextlib.suppress(OSError, ValueError, KeyError),
                np.load(io.BytesIO(piece)) as shared,
            ):
                if str(shared["version"]) == version:
                    parts.append(
                        WindowRows(
                            times=shared["times"],
                            features=shared["features"],
                            segment_ids=shared["segment_ids"],
                            atypical=shared["atypical"],
                        )
                    )
        if not parts:
            return WindowRows.empty()
        times = np.concatenate([part.times for part in parts])
        newest = np.argsort(times, kind="stable")[-self.size :]
        return WindowRows(
            times=times[newest],
            features=np.concatenate([part.features for part in parts])[newest],
            segment_ids=np.concatenate([part.segment_ids for part in parts])[newest],
            atypical=np.concatenate([part.atypical for part in parts])[newest],
        )

    def _own(self) -> WindowRows:
        filled = min(self._added, self.size)
        order = (self._added - filled + np.arange(filled)) % self.size
        # Copies only: turning the ids into text happens outside the lock.
        return WindowRows(
            times=self._times[order],
            features=self._features[order],
            segment_ids=self._segment_ids[order],
            atypical=self._atypical[order],
        )
