"""Keeping and reading existing customers' assignments through the store, degrading safely.

When the database is unreachable, scoring still answers: writes report ``False`` (the
answer says ``"recorded": false``), look-ups fall back to the training snapshot, and every
failure is logged and counted.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from segmentation.features import (
    COUNT_FEATURES,
    CUSTOMER_KEY_MAX_LENGTH,
    FEATURES,
    could_be_customer_key,
)
from segmentation.scoring import FloatArray, ScoredBatch
from service import metrics
from service.errors import CustomerNotFound, InvalidInput, StoreUnavailableError, detail
from service.models.active_model import ActiveModel, rounded
from service.models.snapshot import TrainingSnapshot
from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from service.store.errors import InvalidCursor, StoreUnavailable
from service.store.group_commit import WAIT_SECONDS, group_commit_for

logger = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")

HISTORY_LIMIT = 100
STATUS_SECONDS = 1.0
"""How long a check of the store's status stands for readiness probes."""
STATUS_DEADLINE_SECONDS = 1.0
"""How long a readiness probe waits for the store before it reports it unavailable."""
WRITERS = 8
"""Background writes under way at once (batches, import retries): the store's pool size."""


Recorded = dict[str, bool]
"""The fields of an answer that say what became of its record (see :data:`RECORDED`)."""
RECORDED: Recorded = {"recorded": True}
_NOT_RECORDED: Recorded = {"recorded": False}
_MAYBE_RECORDED: Recorded = {"recorded": False, "recording_unknown": True}
"""The store stopped answering once the row was sent: it may yet be kept."""


def _not_recorded(error: StoreUnavailable) -> Recorded:
    return _MAYBE_RECORDED if error.unknown else _NOT_RECORDED


class CustomerRecords:
    """The service's view of the store: recording answers, importing snapshots, look-ups."""

    def __init__(self, store: CustomerStore, *, record_wait_seconds: float = WAIT_SECONDS) -> None:
        self.store = store
        self.failures = 0
        # A snapshot whose import the store missed (it was down): retried until it lands.
        self._pending_import: tuple[ActiveModel, TrainingSnapshot] | None = None
        # Imports are rare and off the request path; one at a time keeps `pending` right.
        self._import_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="store-writer")
        self._live_writes = group_commit_for(
            store, wait_seconds=record_wait_seconds, on_commit=metrics.record_live_commit
        )
        self._answered_at = -math.inf
        # One check at a time, shared by the probes that come while it runs: a store that
        # hangs must not collect a stuck thread per probe.
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-status")
        self._check: Future[None] | None = None
        self._check_lock = threading.Lock()

    def _failed(self, action: str, error: StoreUnavailable) -> None:
        self.failures += 1
        logger.warning("customer store unavailable while %s: %s", action, error)

    def status(self) -> str:
        """``ok``, or why the store cannot be used right now.

        A store that answered is taken to be fine for ``STATUS_SECONDS``: probes need no
        key, and must not cost a database round trip each at whatever rate they come. A
        failure is not remembered, so that the next probe sees the store come back. A store
        that has not answered within ``STATUS_DEADLINE_SECONDS`` is reported as such (its
        check goes on, and later probes wait for that one instead of starting another).
        """
        if time.monotonic() - self._answered_at < STATUS_SECONDS:
            return "ok"
        with self._check_lock:
            if self._check is None or self._check.done():
                self._check = self._checker.submit(self.store.ping)
            check = self._check
        try:
            check.result(timeout=STATUS_DEADLINE_SECONDS)
        except TimeoutError:
            error = StoreUnavailable(f"no answer within {STATUS_DEADLINE_SECONDS:g} s")
            self._failed("checking readiness", error)
            return f"unavailable: {error}"
        except StoreUnavailable as error:
            self._failed("checking readiness", error)
            return f"unavailable: {error}"
        self._answered_at = time.monotonic()
        return "ok"

    def record(self, assignments: Assignments) -> Recorded:
        """Keep a block (see :func:`to_keep`); what the answer says of it."""
        try:
            self.store.record(assignments)
        except StoreUnavailable as error:
            self._failed(f"recording {len(assignments)} assignments", error)
            return _not_recorded(error)
        return RECORDED

    async def record_answer(self, assignments: Assignments) -> Recorded:
        """Keep a live answer's block with those of concurrent requests (one commit for
        all); what the answer says of it, within the group commit's wait at most."""
        error = await self._live_writes.write(assignments)
        if error is not None:
            self._failed(f"recording {len(assignments)} live assignments", error)
            return _not_recorded(error)
        return RECORDED

    def in_background(
        self, work: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]:
        """Run one of these writes on a writer thread, which :meth:`close` waits for.

        A batch's answer is built meanwhile: most of the write is waiting on the database,
        with the GIL released.
        """
        return self._writer.submit(work, *args, **kwargs)

    def close(self) -> None:
        """Finish the background writes under way, then close the store's connections.

        Requests still in flight (live answers, a model swap's import) are the server's
        to drain before this; the live answers they queued are committed here at the latest.
        """
        self._live_writes.close()
        self._writer.shutdown(wait=True)
        self._checker.shutdown(wait=False, cancel_futures=True)
        self.store.dispose()

    def import_snapshot(self, model: ActiveModel, snapshot: TrainingSnapshot) -> bool:
        """Import the model's training assignments once (other replicas may race: fine).

        When the store is down the import is kept pending; see :meth:`retry_pending_import`.
        """
        with self._import_lock:
            self._pending_import = (model, snapshot)
            return self._import(model, snapshot)

    def _import(self, model: ActiveModel, snapshot: TrainingSnapshot) -> bool:
        try:
            if self.store.is_imported(model.version):
                self._pending_import = None
                return False
            scored = model.scorer.score(snapshot.features)
            keyed = to_keep(
                model,
                scored,
                snapshot.features,
                snapshot.keys,
                source="training",
                assigned_at=_trained_at(model),
            )
            imported = keyed is not None and self.store.import_snapshot(keyed)
        except StoreUnavailable as error:
            self._failed(f"importing the snapshot of {model.version}", error)
            return False
        self._pending_import = None
        if imported:
            logger.info("imported %d training assignments of %s", len(snapshot), model.version)
        return imported

    @property
    def import_pending(self) -> bool:
        """Whether a training snapshot is waiting for the store to come back."""
        return self._pending_import is not None

    def retry_pending_import(self) -> bool:
        """Import the snapshot an outage kept out of the store; True once it is in."""
        with self._import_lock:
            pending = self._pending_import
            return pending is not None and self._import(*pending)

    def stored_features(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Latest stored rows of these customers (raises when the store is unreachable)."""
        try:
            return self.store.latest_many(keys)
        except StoreUnavailable as error:
            self._failed("looking up customers", error)
            raise StoreUnavailableError(f"the customer store is unavailable: {error}") from None

    def known_customers(self, limit: int) -> tuple[list[str], npt.NDArray[np.float64]] | None:
        """Stored customers' keys and latest features (at most ``limit``); None while the
        store is down."""
        try:
            return self.store.known_customers(limit)
        except StoreUnavailable as error:
            self._failed("reading the known customers", error)
            return None

    def live_counts(self, model_version: str) -> dict[str, int] | None:
        """Customers per segment whose latest assignment ``model_version`` made; None while
        the store is down."""
        try:
            return self.store.live_counts(model_version)
        except StoreUnavailable as error:
            self._failed("counting segment members", error)
            return None

    def members(
        self, segment_id: str, *, model_version: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the members ``model_version`` assigned to the segment (by key) and
        the cursor of the next page, if any.

        Raises
        ------
        InvalidInput
            ``cursor`` is not one this service gave out.
        StoreUnavailableError
            The store could not be asked.
        """
        try:
            rows, next_cursor = self.store.members(
                segment_id, model_version=model_version, limit=limit, cursor=cursor
            )
        except InvalidCursor as error:
            message = str(error)
            raise InvalidInput(message, details=[detail("cursor", "cursor", message)]) from None
        except StoreUnavailable as error:
            self._failed("listing segment members", error)
            raise StoreUnavailableError(f"the customer store is unavailable: {error}") from None
        return [_member(row) for row in rows], next_cursor

    def others_assigned_by(
        self, model_version: str, segment_id: str
    ) -> tuple[list[str], list[str], npt.NDArray[np.float64]]:
        """Keys, segments and features of the customers ``model_version`` last put in
        another segment than ``segment_id``.

        Raises
        ------
        StoreUnavailableError
            The store could not be asked.
        """
        try:
            return self.store.others_assigned_by(model_version, segment_id)
        except StoreUnavailable as error:
            self._failed("reading the customers of other segments", error)
            raise StoreUnavailableError(f"the customer store is unavailable: {error}") from None

    def customer(
        self, model: ActiveModel, snapshot: TrainingSnapshot, customer_key: str
    ) -> dict[str, Any]:
        """The customer's latest assignment and history; the snapshot when the store fails.

        Raises
        ------
        InvalidInput
            The key is not one a request may send (so no customer can have it).
        CustomerNotFound
            Neither the store nor the training snapshot knows the customer.
        StoreUnavailableError
            The store could not be asked, and the snapshot does not know the customer.
        """
        key = customer_key.strip()
        if not could_be_customer_key(key):
            message = (
                f"customer_key={customer_key!r} is not a customer key (1 to "
                f"{CUSTOMER_KEY_MAX_LENGTH} characters, no control or invisible formatting "
                "characters)"
            )
            raise InvalidInput(message, details=[detail("customer_key", "pattern", message)])
        try:
            latest = self.store.latest(key)
            history = self.store.history(key, limit=HISTORY_LIMIT) if latest else []
        except StoreUnavailable as error:
            self._failed("looking up a customer", error)
            if key not in snapshot.row_by_key:
                raise StoreUnavailableError(
                    f"the customer store is unavailable ({error}), and customer_key={key!r} "
                    f"is not among the training customers of model {model.version}"
                ) from None
            latest, history = None, []
        if latest is not None:
            return {**_stored_answer(model, latest), "history": [_dated(h) for h in history]}
        return {**_training_answer(model, snapshot, key), "history": []}


def keep_answer(answer: dict[str, Any], features: FloatArray) -> Assignments:
    """One live answer (with its customer key) as the block to keep: exactly what it said.

    For one customer this costs a tenth of :func:`to_keep`'s column-wise selection.
    """
    return Assignments(
        customer_keys=[answer["customer_key"]],
        segment_ids=[answer["segment_id"]],
        features=features,
        confidence=[answer["confidence"]],
        atypical=[answer["atypical"]],
        model_version=answer["model_version"],
        source="single",
        assigned_at=datetime.now(UTC),
    )


def to_keep(
    model: ActiveModel,
    scored: ScoredBatch,
    features: FloatArray,
    keys: Sequence[str | None],
    *,
    source: str,
    rows: Iterable[int] | None = None,
    assigned_at: datetime | None = None,
) -> Assignments | None:
    """What ``model`` said of the rows (default all) that carry a customer key, as one
    block to keep, dated ``assigned_at`` (default now); None when none do."""
    candidates = range(len(keys)) if rows is None else rows
    with_key = [(row, key) for row in candidates if (key := keys[row]) is not None]
    if not with_key:
        return None
    keyed = [row for row, _ in with_key]
    return Assignments(
        customer_keys=[key for _, key in with_key],
        segment_ids=model.segment_ids_of(scored.labels[keyed]),
        features=features[keyed],
        confidence=rounded(scored.confidence[keyed]).tolist(),
        atypical=scored.atypical[keyed].tolist(),
        model_version=model.version,
        source=source,
        assigned_at=assigned_at or datetime.now(UTC),
    )


def _trained_at(model: ActiveModel) -> datetime:
    """When the model was trained: what its training snapshot is dated (now, if unsure)."""
    try:
        moment = datetime.fromisoformat(model.manifest.created_at)
    except ValueError:
        logger.warning("model %s has no readable created_at", model.version)
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    # SQLite hands datetimes back without their zone; everything is stored in UTC.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dated(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "assigned_at": _utc(entry["assigned_at"])}


def _features(row: dict[str, Any]) -> dict[str, Any]:
    """The features as the customer gave them: counts are whole numbers (validated so on
    the way in), though the store and the snapshot keep every feature as a float."""
    return {
        feature: int(row[feature]) if feature in COUNT_FEATURES else row[feature]
        for feature in FEATURES
    }


def _member(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_key": row["customer_key"],
        "segment_id": row["segment_id"],
        "model_version": row["model_version"],
        **_features(row),
        "confidence": row["confidence"],
        "atypical": row["atypical"],
        "source": row["source"],
        "assigned_at": _utc(row["assigned_at"]),
    }


def _stored_answer(model: ActiveModel, row: dict[str, Any]) -> dict[str, Any]:
    card = model.card(row["segment_id"])
    return {
        "customer_key": row["customer_key"],
        "segment_id": row["segment_id"],
        "segment_name": card.name if card else None,
        "recommended_actions": card.recommended_actions if card else None,
        "confidence": row["confidence"],
        "atypical": row["atypical"],
        "model_version": row["model_version"],
        "current": row["model_version"] == model.version,
        "source": row["source"],
        "assigned_at": _utc(row["assigned_at"]),
        "features": _features(row),
    }


def _training_answer(
    model: ActiveModel, snapshot: TrainingSnapshot, customer_key: str
) -> dict[str, Any]:
    row = snapshot.row_by_key.get(customer_key)
    if row is None:
        raise CustomerNotFound(
            f"customer_key={customer_key!r} is not a known customer "
            f"(not in the store, nor among the {len(snapshot)} training customers of "
            f"model {model.version})"
        )
    features = snapshot.features[row : row + 1]
    record = model.assign(features, [snapshot.keys[row]])[0]
    return {
        "customer_key": record["customer_key"],
        "segment_id": record["segment_id"],
        "segment_name": record["segment_name"],
        "recommended_actions": record["recommended_actions"],
        "confidence": record["confidence"],
        "atypical": record["atypical"],
        "model_version": model.version,
        "current": True,
        "source": "training",
        "assigned_at": model.manifest.created_at,
        "features": _features(dict(zip(FEATURES, features[0].tolist(), strict=True))),
    }
