"""Publishing a trained model: an immutable version directory, then `latest`, both atomic.

Files are written into a hidden temporary directory beside the versions, the manifest
last (it carries every other file's sha256), and the directory is renamed into place in
one step. Only then is `latest` repointed. A failure or interruption anywhere before that
removes the temporary directory and leaves the previous version and `latest` untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib

from segmentation import lifecycle
from segmentation.artifact import (
    ASSIGNMENTS_FILE,
    MANIFEST_FILE,
    PIPELINE_FILE,
    REPORT_FILE,
    ArtifactError,
    point_latest,
    read_latest,
    sha256_file,
    sign_manifest,
)
from segmentation.assignments_file import VersionAssignments, write_assignments
from segmentation.lifecycle import Transition, now
from segmentation.manifest import FileEntry, Manifest

logger = logging.getLogger(__name__)


def version_name(created_at: datetime, data_sha256: str) -> str:
    """When it was trained and on which data, e.g. ``20261123T184512Z-d20d9222``."""
    return f"{created_at:%Y%m%dT%H%M%SZ}-{data_sha256[:8]}"


PUBLISHED_BY = "python -m training"
"""Who the version history says published (and, with ``--promote``, promoted) a version."""


@dataclass(frozen=True)
class PublishedVersion:
    path: Path
    manifest: Manifest
    """As written: under the name actually used, listing its files, signed when a key was given."""
    promoted: bool
    """Whether `latest` now names it; otherwise it is a candidate."""


def publish_version(
    models_dir: Path,
    manifest: Manifest,
    *,
    pipeline: Any,
    assignments: VersionAssignments,
    report_html: str,
    signing_key: str | None,
    promote: bool = False,
) -> PublishedVersion:
    """Write a new version under ``models_dir`` as a candidate, or as the active version.

    The version becomes the one `latest` names with ``promote``, or when no version is
    active yet (so a fresh models directory serves its first model). A version name
    already taken gets a numbered suffix, and the manifest records the name actually used.
    Either way the version history (:mod:`segmentation.lifecycle`) records what happened.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    final: PublishedVersion | None = None
    try:
        joblib.dump(pipeline, staging / PIPELINE_FILE)
        write_assignments(staging / ASSIGNMENTS_FILE, assignments)
        (staging / REPORT_FILE).write_text(report_html, encoding="utf-8")
        final = _rename_into_place(staging, models_dir, manifest, signing_key)
        _sync_directory(models_dir)
        final = _enter_lifecycle(models_dir, final, promote=promote)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if final is not None:
            _discard_unpublished(models_dir, final.path)
        raise
    logger.info("published %s", final.path)
    return final


def _rename_into_place(
    staging: Path, models_dir: Path, manifest: Manifest, signing_key: str | None
) -> PublishedVersion:
    base = manifest.version
    for attempt in range(1, 100):
        version = base if attempt == 1 else f"{base}-{attempt}"
        if (models_dir / version).exists():
            continue
        written = _write_manifest(staging, manifest, version, signing_key)
        _sync_directory(staging)
        try:
            # rename() refuses a non-empty target: a concurrent job cannot be overwritten.
            staging.rename(models_dir / version)
        except OSError:
            if (models_dir / version).exists():
                continue
            raise
        return PublishedVersion(path=models_dir / version, manifest=written, promoted=False)
    raise RuntimeError(f"no free version name for {base} in {models_dir}")


def _enter_lifecycle(
    models_dir: Path, published: PublishedVersion, *, promote: bool
) -> PublishedVersion:
    """Record the candidate; make it active when asked to or when nothing is active yet.

    A failure before the version is active raises (and the version is discarded) with the
    history untouched; once `latest` names it, the version is active whatever the history
    says, so a history that cannot be written then is logged, not raised.
    """
    version = published.path.name
    trained = f"trained on {published.manifest.data_source}"
    candidate = (version, Transition("candidate", now(), PUBLISHED_BY, trained))
    previous = lifecycle.active_version(models_dir)
    if not promote and previous is not None:
        lifecycle.record(models_dir, [candidate])
        return published
    point_latest(models_dir, version)
    reason = "--promote" if previous is not None else "the first version of this models directory"
    lifecycle.record_activation(
        models_dir, version, previous, by=PUBLISHED_BY, reason=reason, preceded_by=[candidate]
    )
    return replace(published, promoted=True)


def _discard_unpublished(models_dir: Path, version_dir: Path) -> None:
    """Remove a version renamed into place whose `latest` repointing did not happen."""
    try:
        if read_latest(models_dir) == version_dir.name:
            return
    except ArtifactError:
        pass
    shutil.rmtree(version_dir, ignore_errors=True)


def _write_manifest(
    staging: Path, manifest: Manifest, version: str, signing_key: str | None
) -> Manifest:
    files = {
        name: FileEntry(sha256=sha256_file(staging / name), bytes=(staging / name).stat().st_size)
        for name in (PIPELINE_FILE, ASSIGNMENTS_FILE, REPORT_FILE)
    }
    complete = manifest.with_files(version, files)
    if signing_key:
        complete = sign_manifest(complete, signing_key)
    (staging / MANIFEST_FILE).write_text(complete.to_json(), encoding="utf-8")
    return complete


def _sync_directory(path: Path) -> None:
    """Flush a directory's entries so a rename survives a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
