"""Where each model version stands (candidate, active, retired, rejected) and how it got there.

The history of every version's transitions (when, by whom, why) is one JSON file beside
the versions, ``DIR/lifecycle.json``, changed under an exclusive lock and replaced
atomically, so two writers (a training run and an admin call, or two workers) never lose
each other's entries.

Which version is *active* is what ``latest`` names, always: the history says how it got
there, ``latest`` says what is served. A version whose last recorded status is ``active``
but which ``latest`` no longer names is ``retired``. A version with no history at all was
published before this file existed, when every version was promoted at once: it is
``retired`` unless ``latest`` names it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from segmentation.artifact import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    ArtifactError,
    check_version_name,
    read_latest,
    read_regular_file,
    write_bytes_atomically,
)

logger = logging.getLogger(__name__)

LIFECYCLE_FILE = "lifecycle.json"
_LOCK_FILE = ".lifecycle.lock"

Status = Literal["candidate", "active", "retired", "rejected"]


class LifecycleError(Exception):
    """The history file cannot be read or written; says which file and why."""


@dataclass(frozen=True)
class Transition:
    """One change of a version's status."""

    status: Status
    at: str
    """ISO 8601 in UTC, to the millisecond."""
    by: str
    """Who made it: a client name of the API, or the command that did."""
    reason: str


@dataclass(frozen=True)
class _Document:
    versions: dict[str, tuple[Transition, ...]]


def now() -> str:
    """The time a transition is recorded with."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_histories(models_dir: Path) -> dict[str, tuple[Transition, ...]]:
    """Every version's transitions, oldest first (none recorded yet: an empty dict).

    Raises
    ------
    LifecycleError
        The file exists but is not a history this code wrote.
    """
    path = models_dir / LIFECYCLE_FILE
    try:
        content = read_regular_file(path, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        return {}
    except ArtifactError as error:
        raise LifecycleError(error.message) from None
    try:
        return msgspec.json.decode(content, type=_Document).versions
    except msgspec.DecodeError as error:
        raise LifecycleError(f"{LIFECYCLE_FILE} is not a version history: {error}") from None


def record(models_dir: Path, changes: Sequence[tuple[str, Transition]]) -> None:
    """Append each ``(version, transition)`` to the history, all or none.

    Raises
    ------
    LifecycleError
        The history cannot be read or written (nothing is changed).
    """
    with locked(models_dir):
        histories = dict(read_histories(models_dir))
        for version, transition in changes:
            histories[check_version_name(version)] = (*histories.get(version, ()), transition)
        content = msgspec.json.format(msgspec.json.encode(_Document(versions=histories)))
        try:
            write_bytes_atomically(models_dir / LIFECYCLE_FILE, content + b"\n")
        except OSError as error:
            raise LifecycleError(
                f"{models_dir / LIFECYCLE_FILE} cannot be written: {error.strerror or error}"
            ) from None


def record_activation(
    models_dir: Path,
    version: str,
    previous: str | None,
    *,
    by: str,
    reason: str,
    preceded_by: Sequence[tuple[str, Transition]] = (),
) -> None:
    """Put a switch of the active version in the history, after ``preceded_by`` (if any).

    Called once `latest` names ``version``: the version is active whatever the history
    says, so a history that cannot be written is logged as an error, not raised.
    """
    changes = [*preceded_by]
    if version != previous:
        changes.append((version, Transition("active", now(), by, reason)))
        if previous is not None:
            replaced = f"replaced by {version}: {reason}"
            changes.append((previous, Transition("retired", now(), by, replaced)))
    try:
        record(models_dir, changes)
    except LifecycleError as error:
        logger.error("%s is active, but the version history says otherwise: %s", version, error)


def status_of(version: str, history: Sequence[Transition], active_version: str | None) -> Status:
    """The version's status, from its history and the version ``latest`` names."""
    if version == active_version:
        return "active"
    if not history or history[-1].status == "active":
        return "retired"
    return history[-1].status


def active_version(models_dir: Path) -> str | None:
    """What ``latest`` names, or None when nothing is active yet."""
    try:
        return read_latest(models_dir)
    except ArtifactError:
        return None


def published_versions(models_dir: Path) -> list[str]:
    """Every version directory that holds a manifest (a publication finished), by name."""
    if not models_dir.is_dir():
        return []
    names = []
    for entry in models_dir.iterdir():
        try:
            check_version_name(entry.name)
        except ArtifactError:
            continue
        if (entry / MANIFEST_FILE).is_file():
            names.append(entry.name)
    return sorted(names)


_held = threading.local()


@contextmanager
def locked(models_dir: Path) -> Iterator[None]:
    """Hold the history's lock: a check of a version's status and the change that depends
    on it (a promotion, a rejection) then see no other writer in between, in any process.

    Re-entrant within a thread (:func:`record` takes it too).
    """
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    try:
        # Read-only is enough for flock, and lets training and the service run as different
        # users (the umask decides who may create it).
        descriptor = os.open(models_dir / _LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as error:
        raise LifecycleError(
            f"{models_dir / _LOCK_FILE} cannot be opened: {error.strerror or error}"
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
    finally:
        os.close(descriptor)  # closing releases the lock
