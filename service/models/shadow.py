"""Shadow scoring: a second verified version scores live traffic beside the active one.

The answer always comes from the active model alone; the shadow scores the same customers
afterwards and only counts, per (active segment, shadow segment), how they would have
been assigned. Which version shadows is one small document in the workers' shared state
(a file on one machine, fresh per start; a key in Redis across replicas, where a shadow
survives a rolling restart: :mod:`service.shared_state`); every worker follows it as it
follows `latest`, publishes its own tally there once a second, and a report adds up all
of them. Promoting any version stops the shadow, and the report says why.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.lifecycle import now
from service import metrics
from service.errors import VersionConflict, detail
from service.models.active_model import ActiveModel
from service.shared_state import SharedState

logger = logging.getLogger(__name__)

SHADOW_FILE = "shadow.json"
"""The shared document naming the shadow."""
TALLY = "shadow-tally"
"""Each worker's counts, as pieces of the shared state."""


class Shadow:
    """This worker's shadow model (if any) and what it has counted."""

    def __init__(self, state: SharedState, load: Callable[[str], ActiveModel]) -> None:
        self._state = state
        self._load = load
        self._lock = threading.Lock()
        self._model: ActiveModel | None = None
        """The shadow model while it runs (None once stopped)."""
        self._version: str | None = None
        self._started_at: str | None = None
        """Which shadow the counts belong to (kept after it stops)."""
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._requests = 0
        self._changes = 0
        self._shared = -1
        self._unloadable: tuple[Any, Any] | None = None
        """The shadow this worker could not load: not tried again every second."""

    @property
    def version(self) -> str | None:
        """The version this worker shadows with right now."""
        model = self._model
        return model.version if model else None

    def start(self, version: str, *, active: str) -> dict[str, Any]:
        """Verify and load ``version``, then shadow ``active`` with it on every worker; any
        shadow before is replaced and its counts dropped.

        Raises
        ------
        VersionConflict
            ``version`` is the active version.
        InvalidInput, VersionNotFound, VersionRejected
            As a reload raises them.
        """
        if version == active:
            raise VersionConflict(
                f"version {version!r} is the active version: shadow another one",
                details=[detail("version", "not_active", "is the active version")],
            )
        model = self._load(version)
        started_at = now()
        self._write_state({"version": version, "started_at": started_at, "stopped": None})
        self._adopt(model, version, started_at)
        return self.report()

    def stop(self, reason: str) -> None:
        """Stop shadowing on every worker; the report keeps the counts and says why."""
        state = self._read_state()
        if state.get("version") is None or state.get("stopped"):
            return
        self._write_state({**state, "stopped": reason})
        self._adopt(None, state["version"], state.get("started_at"))

    def follow(self) -> None:
        """Take up (or drop) what the shared state names; called off the request path."""
        state = self._read_state()
        version, started_at = state.get("version"), state.get("started_at")
        running = version is not None and not state.get("stopped")
        if (version, started_at) == (self._version, self._started_at) and running == (
            self._model is not None
        ):
            return
        if not running:
            self._adopt(None, version, started_at)
            return
        if self._unloadable == (version, started_at):
            return
        try:
            self._adopt(self._load(str(version)), version, started_at)
        except Exception:  # a version that no longer verifies: this worker does not shadow
            logger.exception("shadow version %s could not be loaded", version)
            self._unloadable = (version, started_at)
            self._adopt(None, version, started_at)

    def observe(self, active_ids: Sequence[str], features: npt.NDArray[np.float64]) -> None:
        """Score customers the active model has already answered, and count the pairs."""
        model = self._model
        if model is None or len(active_ids) == 0:
            return
        shadow_ids = model.segment_ids_of(model.scorer.score(features).labels)
        pairs = Counter(zip(active_ids, shadow_ids, strict=True))
        with self._lock:
            if self._model is not model:  # replaced meanwhile: these counts are not its
                return
            self._pairs.update(pairs)
            self._requests += 1
            self._changes += 1
        for (active, shadow), count in pairs.items():
            metrics.record_shadow(active, shadow, count)

    def share(self) -> None:
        """Write this worker's counts for the others, if they changed (atomically)."""
        with self._lock:
            if self._changes == self._shared:
                return
            tally = self._tally()
            changes = self._changes
        self._state.publish(TALLY, json.dumps(tally).encode())
        self._shared = changes

    def close(self) -> None:
        self._state.withdraw(TALLY)

    def report(self) -> dict[str, Any]:
        """Over every worker since the shadow started: requests and customers seen,
        agreement, transitions; ``stopped`` says why a shadow no longer runs."""
        state = self._read_state()
        version, started_at = state.get("version"), state.get("started_at")
        requests, pairs = 0, Counter[tuple[str, str]]()
        with self._lock:
            own = self._tally()
        tallies = [own]
        for piece in self._state.pieces(TALLY):
            try:
                tallies.append(json.loads(piece))
            except ValueError:  # a worker that was stopping
                continue
        for tally in tallies:
            if tally["version"] == version and tally["started_at"] == started_at:
                requests += tally["requests"]
                pairs.update({(a, s): n for a, s, n in tally["pairs"]})
        customers = sum(pairs.values())
        agreed = sum(count for (active, shadow), count in pairs.items() if active == shadow)
        return {
            "version": version,
            "started_at": started_at,
            "stopped": state.get("stopped"),
            "requests": requests,
            "customers": customers,
            "agreement": agreed / customers if customers else None,
            "transitions": [
                {"from": active, "to": shadow, "count": count}
                for (active, shadow), count in sorted(pairs.items(), key=lambda i: (-i[1], i[0]))
            ],
        }

    def _tally(self) -> dict[str, Any]:
        return {
            "version": self._version,
            "started_at": self._started_at,
            "requests": self._requests,
            "pairs": [[active, shadow, n] for (active, shadow), n in self._pairs.items()],
        }

    def _adopt(
        self, model: ActiveModel | None, version: str | None, started_at: str | None
    ) -> None:
        """Shadow with ``model`` (None: not, or no longer); counts start afresh only for
        another shadow than the one they belong to."""
        with self._lock:
            if (version, started_at) != (self._version, self._started_at):
                self._pairs, self._requests = Counter(), 0
            self._model, self._version, self._started_at = model, version, started_at
            self._changes += 1
        if model is not None:
            logger.info("shadow scoring with %s", model.version)

    def _read_state(self) -> dict[str, Any]:
        document = self._state.read(SHADOW_FILE)
        try:
            state: dict[str, Any] = json.loads(document) if document is not None else {}
        except ValueError:
            return {}
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        self._state.write(SHADOW_FILE, json.dumps(state).encode())
