"""The model artifact on disk: layout, hashes, signatures, the `latest` pointer and safe loading.

The service scores from the manifest alone and never unpickles. ``pipeline.joblib`` is
kept for analysts and the benchmarks' peers: :func:`load_pipeline` unpickles it only after
the manifest, its signature and the file's hash checked out, from the very bytes that were
hashed (unpickling runs code).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from segmentation.manifest import Manifest, ManifestError, Signature

MANIFEST_FILE = "manifest.json"
PIPELINE_FILE = "pipeline.joblib"
ASSIGNMENTS_FILE = "assignments.csv"
REPORT_FILE = "report.html"
LATEST_FILE = "latest"
SIGNATURE_ALGORITHM = "hmac-sha256"

VERSION_NAME_MAX_LENGTH = 128
"""Characters in a version name at most: what the admin API accepts and the store keeps."""
# fullmatch, not `$`, which would let a trailing newline through.
VERSION_NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{VERSION_NAME_MAX_LENGTH - 1}}}$"
"""What a version name may be, as a JSON Schema pattern too (``$`` ends the text there)."""
_VERSION_NAME = re.compile(VERSION_NAME_PATTERN[1:-1])


class ArtifactError(Exception):
    """A model version that cannot be used, with a stable code and a readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VerifiedVersion:
    """A version whose manifest (and signature, when required) and file hashes all checked out."""

    version: str
    path: Path
    manifest: Manifest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MAX_POINTER_BYTES = 4 << 10
MAX_MANIFEST_BYTES = 16 << 20
MAX_FILE_BYTES = 2 << 30
"""The largest `latest`, manifest and other version file read (each far above real ones)."""


def shown(path: Path) -> str:
    """A file as messages name it: its version folder and name, never the absolute path
    (which would tell any client how the server's disks are laid out)."""
    return f"{path.parent.name}/{path.name}"


@contextlib.contextmanager
def open_regular_file(path: Path, *, limit: int) -> Iterator[BinaryIO]:
    """``path`` open for reading, once it is known to be a regular file of at most ``limit``
    bytes.

    It is opened without blocking and checked before anything is read: a FIFO (which would
    wait for a writer for ever), a device such as ``/dev/zero`` (endless) or a directory is
    refused, not read, so a tampered models folder can neither hang nor exhaust a reader.

    Raises
    ------
    FileNotFoundError
        There is no such file (or a part of its path is not a folder).
    ArtifactError
        ``file_unreadable``: not a regular file, too large, or unreadable.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except NotADirectoryError:
        raise FileNotFoundError(path) from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ArtifactError(
            "file_unreadable", f"{shown(path)} cannot be read: {error.strerror or error}"
        ) from None
    with os.fdopen(descriptor, "rb") as stream:
        facts = os.fstat(descriptor)
        if not stat.S_ISREG(facts.st_mode):
            raise ArtifactError("file_unreadable", f"{shown(path)} is not a regular file")
        if facts.st_size > limit:
            raise ArtifactError(
                "file_unreadable", f"{shown(path)} holds {facts.st_size:,} bytes; at most {limit:,}"
            )
        yield stream


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular_file`)."""
    with open_regular_file(path, limit=limit) as stream:
        content = stream.read(limit + 1)
    if len(content) > limit:  # it grew since it was checked
        raise ArtifactError("file_unreadable", f"{shown(path)} holds more than {limit:,} bytes")
    return content


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular_file(path, limit=MAX_FILE_BYTES) as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_version_name(version: str) -> str:
    """Refuse version names that could escape the models directory."""
    if not _VERSION_NAME.fullmatch(version) or version in {".", ".."}:
        raise ArtifactError(
            "invalid_version_name",
            f"version={version!r} is not a valid version name (letters, digits, '.', '_' "
            f"and '-', at most {VERSION_NAME_MAX_LENGTH} characters)",
        )
    return version


def canonical_manifest_bytes(document: dict[str, Any]) -> bytes:
    """A manifest's JSON data without its signature, serialised one way only, for signing."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def manifest_signature(document: dict[str, Any], key: str) -> str:
    """The HMAC-SHA256 (hex) of a manifest's canonical bytes under ``key``."""
    return hmac.new(key.encode(), canonical_manifest_bytes(document), hashlib.sha256).hexdigest()


def sign_manifest(manifest: Manifest, key: str) -> Manifest:
    """The manifest carrying its HMAC-SHA256 signature (over everything else in it)."""
    value = manifest_signature(manifest.to_document(), key)
    return manifest.with_signature(Signature(algorithm=SIGNATURE_ALGORITHM, value=value))


def _check_signature(document: dict[str, Any], keys: tuple[str, ...]) -> None:
    # On the JSON data as read: the signature covers every byte's meaning, known fields or not.
    signature = document.get("signature")
    if not isinstance(signature, dict) or "value" not in signature:
        raise ArtifactError("signature_missing", "the manifest is not signed")
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise ArtifactError(
            "signature_invalid",
            f"signature algorithm {signature.get('algorithm')!r} is not {SIGNATURE_ALGORITHM!r}",
        )
    # As bytes: compare_digest refuses str with non-ASCII characters, and whoever wrote
    # the manifest chose these characters.
    given = str(signature["value"]).encode("utf-8")
    if not any(
        hmac.compare_digest(given, manifest_signature(document, key).encode("ascii"))
        for key in keys
    ):
        raise ArtifactError("signature_invalid", "the manifest signature does not match")


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old content or the new, never a part."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp creates 0600; the service may run as another user than training.
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_latest(models_dir: Path) -> str:
    """The version name that `latest` points at."""
    pointer = models_dir / LATEST_FILE
    try:
        content = read_regular_file(pointer, limit=MAX_POINTER_BYTES)
    except FileNotFoundError:
        raise ArtifactError(
            "model_missing",
            f"no trained model: there is no `{LATEST_FILE}` in the models folder "
            "(run the training job)",
        ) from None
    try:
        version = content.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ArtifactError("invalid_version_name", f"`{LATEST_FILE}` is not text") from None
    return check_version_name(version)


def point_latest(models_dir: Path, version: str) -> None:
    """Make `latest` name ``version``, atomically."""
    write_bytes_atomically(models_dir / LATEST_FILE, f"{check_version_name(version)}\n".encode())


def read_manifest(version_dir: Path) -> Manifest:
    """A version's manifest, read and type-checked (neither signature nor files checked).

    Raises
    ------
    ArtifactError
        ``model_missing`` when there is no manifest, ``manifest_invalid`` when it is not one.
    """
    return _typed(version_dir, _read_document(version_dir))


def _read_document(version_dir: Path) -> dict[str, Any]:
    path = version_dir / MANIFEST_FILE
    try:
        content = read_regular_file(path, limit=MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ArtifactError(
            "model_missing",
            f"version {version_dir.name!r} does not exist (no {MANIFEST_FILE} in its folder)",
        ) from None
    try:
        document = json.loads(content, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        # RecursionError: nesting deeper than the parser goes is not a manifest either.
        raise ArtifactError(
            "manifest_invalid", f"{shown(path)} is not valid JSON: {error}"
        ) from None
    if not isinstance(document, dict):
        raise ArtifactError("manifest_invalid", f"{shown(path)} does not hold a JSON object")
    return document


def _typed(version_dir: Path, document: dict[str, Any]) -> Manifest:
    try:
        return Manifest.from_document(document)
    except ManifestError as error:
        raise ArtifactError(
            "manifest_invalid", f"{shown(version_dir / MANIFEST_FILE)}: {error}"
        ) from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and the canonical form a signature covers refuses them.
    raise ValueError(f"{name} is not a JSON value")


def _check_hash(name: str, actual: str, expected: str) -> None:
    if not hmac.compare_digest(actual, expected):
        raise ArtifactError(
            "hash_mismatch", f"{name} does not match the sha256 recorded in the manifest"
        )


def _missing(path: Path) -> ArtifactError:
    return ArtifactError("file_missing", f"{shown(path)} is missing")


def verify_version(
    models_dir: Path, version: str, *, signing_keys: tuple[str, ...] = ()
) -> VerifiedVersion:
    """Check a version's manifest, signature (when keys are given) and every file's sha256.

    Raises
    ------
    ArtifactError
        With code ``model_missing``, ``manifest_invalid``, ``signature_missing``,
        ``signature_invalid``, ``file_missing`` or ``hash_mismatch``.
    """
    version_dir = models_dir / check_version_name(version)
    document = _read_document(version_dir)
    if signing_keys:
        _check_signature(document, signing_keys)
    manifest = _typed(version_dir, document)
    if manifest.version != version:
        raise ArtifactError(
            "manifest_invalid",
            f"the manifest names version {manifest.version!r}, not {version!r}",
        )
    files = manifest.files
    if PIPELINE_FILE not in files:
        raise ArtifactError("manifest_invalid", "the manifest does not list its files")
    for name, expected in files.items():
        try:
            actual = sha256_file(version_dir / check_version_name(name))
        except FileNotFoundError:
            raise _missing(version_dir / name) from None
        _check_hash(name, actual, expected.sha256)
    return VerifiedVersion(version=version, path=version_dir, manifest=manifest)


def read_pipeline_bytes(
    models_dir: Path, version: str, *, signing_keys: tuple[str, ...] = ()
) -> bytes:
    """The bytes of a verified version's ``pipeline.joblib``, hashed as they were read.

    Raises
    ------
    ArtifactError
        As :func:`verify_version`.
    """
    verified = verify_version(models_dir, version, signing_keys=signing_keys)
    path = verified.path / PIPELINE_FILE
    try:
        content = read_regular_file(path, limit=MAX_FILE_BYTES)
    except FileNotFoundError:
        raise _missing(path) from None
    _check_hash(PIPELINE_FILE, sha256_bytes(content), verified.manifest.files[PIPELINE_FILE].sha256)
    return content


def load_pipeline(models_dir: Path, version: str, *, signing_keys: tuple[str, ...] = ()) -> Any:
    """Unpickle a verified version's fitted scikit-learn pipeline (for analysts and the
    benchmarks' peers; the service never does)."""
    import joblib  # here only: whoever does not unpickle does not load joblib

    content = read_pipeline_bytes(models_dir, version, signing_keys=signing_keys)
    return joblib.load(io.BytesIO(content))
