"""The store follows the active model: after a switch, known customers are assigned again.

After a promotion, a rollback or a reload, the customers whose latest assignment another
version made are rescored by the active one from their stored features, a page at a time,
off the request path, each page in one transaction. One worker of the service does it (the
one holding a lock in the workers' state directory and, on PostgreSQL, the store's lock
that one process of all the replicas holds; every worker tries once a second, so another
takes over when it stops) and writes its progress in the shared state
(:mod:`service.shared_state`), so that every worker's ``/ready`` and ``/metrics`` report it.

Nothing needs remembering to resume: what is left is whatever another version assigned
last, which the store finds with a few seeks in its version index. A restart, a crash, a
store outage or a worker still answering with the previous version for a moment all end
the same way: the next check finds those customers and rescores them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from segmentation.lifecycle import now
from service import metrics
from service.customer_records import CustomerRecords, to_keep
from service.models.active_model import ActiveModel
from service.shared_state import SharedState
from service.store.assignments import Assignments

logger = logging.getLogger(__name__)

PROGRESS_FILE = "rescoring.json"
LOCK_FILE = "rescoring.lock"
STORE_LOCK = "segmentation-rescoring"
PAGE_SIZE = 1_000
"""Customers rescored per transaction: a few milliseconds of locks on their rows."""
_PROGRESS_SECONDS = 0.5
"""How often a run under way writes its progress (and always at its end)."""

RescoringState = Literal["running", "finished"]


@dataclass(frozen=True)
class RescoringProgress:
    """Where rescoring the store to ``version`` stands (``/ready`` shows it as is)."""

    version: str
    state: RescoringState
    rescored: int
    """Customers rescored since the run started."""
    remaining: int
    """Customers another version assigned last, as of the latest page."""
    started_at: str
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StoreRescoring:
    """Rescores the store to the active model, on whichever worker holds the lock."""

    def __init__(
        self,
        records: CustomerRecords,
        active: Callable[[], ActiveModel | None],
        state_dir: Path,
        shared: SharedState,
    ) -> None:
        self._records = records
        self._active = active
        self._shared = shared
        self._lock_file = state_dir / LOCK_FILE
        self._stopping = threading.Event()

    def progress(self) -> RescoringProgress | None:
        """The latest progress any worker wrote, or None when no rescoring was needed yet."""
        document = self._shared.read(PROGRESS_FILE)
        if document is None:
            return None
        try:
            return RescoringProgress(**json.loads(document))
        except (ValueError, TypeError) as error:
            logger.warning("rescoring progress unreadable: %s", error)
            return None

    def stop(self) -> None:
        """Make a run under way end after its current page (the service is stopping)."""
        self._stopping.set()

    def check(self) -> None:
        """Rescore what another version assigned, if any and if no other worker is at it.

        Raises
        ------
        StoreUnavailable
            The store could not be read or written; the next check carries on.
        """
        model = self._active()
        if model is None or self._stopping.is_set():
            return
        with self._lock() as held:
            if not held:
                return
            with self._records.store.exclusively(STORE_LOCK) as held_across_replicas:
                if held_across_replicas:
                    self._run(model)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        """Whether this worker holds the lock among the workers of its machine (asked
        first: it costs no round trip to the database)."""
        descriptor = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(descriptor)  # releases the lock too

    def _run(self, model: ActiveModel) -> None:
        store, version = self._records.store, model.version
        progress = self.progress()
        assign = _assigner(model)
        while left := store.versions_other_than(version):
            if progress is None or progress.version != version or progress.state != "running":
                progress = RescoringProgress(
                    version=version, state="running", rescored=0, remaining=0, started_at=now()
                )
                logger.info("rescoring the customers %s assigned with %s", ", ".join(left), version)
            progress = replace(progress, remaining=sum(left.values()))
            self._publish(progress)
            published = time.monotonic()
            for old_version in left:
                after: tuple[str, str] | None = None
                while page := store.keys_assigned_by(old_version, after=after, limit=PAGE_SIZE):
                    if self._stopping.is_set() or self._serves_another_than(version):
                        self._publish(progress)
                        return
                    done = store.rescore([key for _, key in page], version, assign)
                    metrics.record_rescored(done)
                    progress = replace(
                        progress,
                        rescored=progress.rescored + done,
                        remaining=max(progress.remaining - done, 0),
                    )
                    after = page[-1]
                    if time.monotonic() - published >= _PROGRESS_SECONDS:
                        self._publish(progress)
                        published = time.monotonic()
            # Round again: a worker still on the previous version may have assigned some.
        if progress is not None and progress.version == version and progress.state == "running":
            self._publish(replace(progress, state="finished", remaining=0, finished_at=now()))
            logger.info("rescored %d customers with %s", progress.rescored, version)

    def _serves_another_than(self, version: str) -> bool:
        model = self._active()
        return model is None or model.version != version

    def _publish(self, progress: RescoringProgress) -> None:
        self._shared.write(PROGRESS_FILE, json.dumps(progress.as_dict()).encode())
        metrics.set_rescoring_remaining(progress.remaining)


def _assigner(model: ActiveModel) -> Callable[[list[str], npt.NDArray[np.float64]], Assignments]:
    """What ``model`` says of customers, from their keys and stored features, to keep."""

    def assign(keys: list[str], features: npt.NDArray[np.float64]) -> Assignments:
        kept = to_keep(model, model.scorer.score(features), features, keys, source="rescore")
        assert kept is not None  # every row has a key
        return kept

    return assign
