"""A version's training report (``report.html``, its model card), served only once verified."""

from __future__ import annotations

import hmac
from pathlib import Path

from segmentation.artifact import (
    MAX_FILE_BYTES,
    REPORT_FILE,
    ArtifactError,
    check_version_name,
    read_regular_file,
    sha256_bytes,
    verify_version,
)
from service.errors import InvalidInput, VersionNotFound, VersionRejected, detail


def training_report(models_dir: Path, version: str, *, signing_keys: tuple[str, ...]) -> bytes:
    """The bytes of ``version``'s model card, as training wrote it.

    The version is verified as a reload verifies it (manifest, signature when keys are
    given, every file's sha256), and the bytes answered are the ones hashed here against
    the manifest: a report changed on disk after training is refused, never shown.

    Raises
    ------
    InvalidInput
        ``version`` is not a valid version name.
    VersionNotFound
        No such version, or its manifest lists no report.
    VersionRejected
        The version does not verify.
    """
    try:
        check_version_name(version)
    except ArtifactError as error:
        raise InvalidInput(
            error.message, details=[detail("version", error.code, error.message)]
        ) from None
    try:
        verified = verify_version(models_dir, version, signing_keys=signing_keys)
        expected = verified.manifest.files.get(REPORT_FILE)
        if expected is None:
            raise VersionNotFound(
                f"version {version!r} has no training report (its manifest lists no {REPORT_FILE})",
                details=[detail("version", "has_report", f"no {REPORT_FILE}")],
            )
        content = read_regular_file(verified.path / REPORT_FILE, limit=MAX_FILE_BYTES)
    except FileNotFoundError:  # removed since verify_version found it
        raise VersionRejected(
            f"version {version!r} does not verify: {REPORT_FILE} is missing",
            details=[detail("version", "file_missing", f"{REPORT_FILE} is missing")],
        ) from None
    except ArtifactError as error:
        if error.code == "model_missing":
            raise VersionNotFound(
                f"version {version!r} does not exist",
                details=[detail("version", "exists", "no such version")],
            ) from None
        raise VersionRejected(
            f"version {version!r} does not verify: {error.message}",
            details=[detail("version", error.code, error.message)],
        ) from None
    # Hashed again as read: the file could have been replaced since verify_version hashed it.
    if not hmac.compare_digest(sha256_bytes(content), expected.sha256):
        raise VersionRejected(
            f"version {version!r} does not verify: {REPORT_FILE} changed since it was published",
            details=[detail("version", "hash_mismatch", f"{REPORT_FILE} changed")],
        )
    return content
