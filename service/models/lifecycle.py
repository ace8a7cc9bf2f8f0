"""The model lifecycle as operators drive it: versions and their status, comparison,
promotion, rejection.

Statuses and their history live beside the versions (:mod:`segmentation.lifecycle`);
switching the served model is the holder's (verify, repoint `latest`, swap), which every
other worker then follows as it follows any change of `latest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation import lifecycle
from segmentation.artifact import ArtifactError, check_version_name, read_manifest
from segmentation.comparison import ComparedVersion, Thresholds, compare
from segmentation.lifecycle import LifecycleError, Transition, now
from service.customer_records import CustomerRecords
from service.errors import (
    InvalidInput,
    LifecycleUnavailable,
    VersionConflict,
    VersionNotFound,
    VersionRejected,
    detail,
)
from service.models.model_holder import ModelHolder


def list_versions(models_dir: Path, shadow: str | None = None) -> dict[str, Any]:
    """Every published version, newest first, with its status, key figures and history.

    Raises
    ------
    LifecycleUnavailable
        The version history cannot be read.
    """
    histories = _histories(models_dir)
    active = lifecycle.active_version(models_dir)
    versions = []
    for version in lifecycle.published_versions(models_dir):
        history = histories.get(version, ())
        entry: dict[str, Any] = {
            "version": version,
            "status": lifecycle.status_of(version, history, active),
            "history": [_transition(transition) for transition in history],
        }
        try:
            manifest = read_manifest(models_dir / version)
        except ArtifactError as error:
            # Listed all the same: an operator must see a broken version to deal with it.
            entry.update(created_at=None, n_rows=None, k=None, silhouette=None)
            entry["problem"] = f"{error.code}: {error.message}"
        else:
            entry.update(
                created_at=manifest.created_at,
                n_rows=manifest.n_rows,
                k=manifest.k,
                silhouette=manifest.metrics.silhouette,
            )
        versions.append(entry)
    versions.sort(key=lambda entry: (entry["created_at"] or "", entry["version"]), reverse=True)
    return {"active": active, "shadow": shadow, "versions": versions}


RELOAD_REASON = "POST /admin/reload"
"""The reason a reload goes into the version history with (the contract's reload has none)."""


def reload(holder: ModelHolder, version: str | None, *, by: str) -> tuple[str, str | None]:
    """Serve ``version`` (default: what `latest` names), whatever its status, as the
    contract's reload does, and put the switch in the version history.

    Returns (the version now served, the version served before).

    Raises
    ------
    InvalidInput, VersionNotFound, VersionRejected
        As :meth:`ModelHolder.activate`; nothing changes.
    """
    activated, previous = holder.activate(version)
    lifecycle.record_activation(holder.models_dir, activated, previous, by=by, reason=RELOAD_REASON)
    return activated, previous


def promote(holder: ModelHolder, version: str, *, reason: str, by: str) -> tuple[str, str | None]:
    """Make a candidate (or a retired version, to roll back) the active version.

    Returns (the version now served, the version served before).

    Raises
    ------
    InvalidInput
        The version name or the reason is not valid.
    VersionNotFound
        No such version.
    VersionConflict
        The version is already active, or was rejected.
    VersionRejected
        The version does not verify, or `latest` cannot be written; nothing changes.
    LifecycleUnavailable
        The version history cannot be read.
    """
    reason = _reason(reason)
    with _locked(holder.models_dir):
        status = _status(holder.models_dir, version)
        if status == "active":
            raise VersionConflict(
                f"version {version!r} is already the active version",
                details=[detail("version", "not_active", "already active")],
            )
        if status == "rejected":
            raise VersionConflict(
                f"version {version!r} was rejected and cannot be promoted",
                details=[detail("version", "not_rejected", "rejected")],
            )
        activated, previous = holder.activate(version)
        lifecycle.record_activation(holder.models_dir, activated, previous, by=by, reason=reason)
    return activated, previous


def reject(models_dir: Path, version: str, *, reason: str, by: str) -> str:
    """Mark a candidate ``rejected``: it can no longer be promoted. Returns the new status.

    Raises
    ------
    InvalidInput
        The version name or the reason is not valid.
    VersionNotFound
        No such version.
    VersionConflict
        The version is not a candidate (active, retired or already rejected).
    LifecycleUnavailable
        The version history cannot be read or written; nothing changes.
    """
    reason = _reason(reason)
    with _locked(models_dir):
        status = _status(models_dir, version)
        if status != "candidate":
            raise VersionConflict(
                f"only a candidate can be rejected; version {version!r} is {status}",
                details=[detail("version", "candidate", f"is {status}")],
            )
        try:
            lifecycle.record(models_dir, [(version, Transition("rejected", now(), by, reason))])
        except LifecycleError as error:
            raise LifecycleUnavailable(str(error)) from None
    return "rejected"


MAX_STORE_CUSTOMERS = 200_000
"""Stored customers a comparison scores at most (the first by key): it runs on a request."""


def comparison(
    models_dir: Path,
    version: str,
    *,
    against: str | None,
    thresholds: Thresholds,
    records: CustomerRecords,
    signing_keys: tuple[str, ...],
) -> dict[str, Any]:
    """``version`` against the active one (or ``against``) on the same customers.

    The customers are ``version``'s training customers and every customer the store knows
    (by the features of their latest assignment); while the store is down, the training
    customers alone, and the answer says so.

    Raises
    ------
    InvalidInput
        A version name is not valid.
    VersionNotFound
        No such version (or no active version to compare with).
    VersionRejected
        A version does not verify.
    """
    _status(models_dir, version)
    against = against or lifecycle.active_version(models_dir)
    if against is None:
        raise VersionNotFound(
            "there is no active version to compare with: name one with ?against=",
            details=[detail("against", "exists", "no active version")],
        )
    _status(models_dir, against)
    try:
        candidate = ComparedVersion.load(models_dir, version, signing_keys=signing_keys)
        previous = ComparedVersion.load(models_dir, against, signing_keys=signing_keys)
    except ArtifactError as error:
        raise VersionRejected(
            f"the versions cannot be compared: {error.message}",
            details=[detail("version", error.code, error.message)],
        ) from None
    trained = candidate.training
    known = records.known_customers(MAX_STORE_CUSTOMERS + 1)
    capped = known is not None and len(known[0]) > MAX_STORE_CUSTOMERS
    if known is not None and capped:
        known = known[0][:MAX_STORE_CUSTOMERS], known[1][:MAX_STORE_CUSTOMERS]
    features, from_store = _customers(trained.keys, trained.features, known)
    document = compare(candidate, previous, features, thresholds).to_document()
    document["customers"] = {
        "training": len(trained.keys),
        "store_only": from_store,
        "store_available": from_store is not None,
        "store_capped": capped,
    }
    return document


def _customers(
    keys: list[str],
    features: npt.NDArray[np.float64],
    known: tuple[list[str], npt.NDArray[np.float64]] | None,
) -> tuple[npt.NDArray[np.float64], int | None]:
    """The training customers, then the store's customers that training did not have."""
    if known is None:
        return features, None
    trained = set(keys)
    extra = [row for row, key in enumerate(known[0]) if key not in trained]
    return np.vstack([features, known[1][extra]]), len(extra)


def _status(models_dir: Path, version: str) -> lifecycle.Status:
    try:
        check_version_name(version)
    except ArtifactError as error:
        details = [detail("version", error.code, error.message)]
        raise InvalidInput(error.message, details=details) from None
    if version not in lifecycle.published_versions(models_dir):
        raise VersionNotFound(
            f"version {version!r} does not exist",
            details=[detail("version", "exists", "no such version")],
        )
    history = _histories(models_dir).get(version, ())
    return lifecycle.status_of(version, history, lifecycle.active_version(models_dir))


@contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    """The history's lock; a history that cannot be locked or read answers 503."""
    try:
        with lifecycle.locked(models_dir):
            yield
    except LifecycleError as error:
        raise LifecycleUnavailable(str(error)) from None


def _histories(models_dir: Path) -> dict[str, tuple[Transition, ...]]:
    try:
        return lifecycle.read_histories(models_dir)
    except LifecycleError as error:
        raise LifecycleUnavailable(str(error)) from None


def _reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidInput(
            "reason must say why (it goes on record)",
            details=[detail("reason", "not_blank", "blank")],
        )
    return cleaned


def _transition(transition: Transition) -> dict[str, str]:
    return {
        "status": transition.status,
        "at": transition.at,
        "by": transition.by,
        "reason": transition.reason,
    }
