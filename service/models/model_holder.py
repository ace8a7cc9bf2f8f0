"""The one place that knows which model version this process serves, and swaps it safely.

A request takes the current :class:`Serving` once and uses it to the end, so a swap never
changes the model under a request in flight; the swap itself is one reference assignment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segmentation.artifact import ArtifactError, point_latest, read_latest
from service import metrics
from service.config import Settings
from service.errors import (
    InvalidInput,
    ModelUnavailable,
    ServiceError,
    VersionNotFound,
    VersionRejected,
    detail,
)
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.models.snapshot import TrainingSnapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Serving:
    model: ActiveModel
    snapshot: TrainingSnapshot


class ModelHolder:
    """Holds the serving model, or the reason there is none."""

    def __init__(
        self, settings: Settings, *, on_swap: Callable[[Serving], None] | None = None
    ) -> None:
        self._settings = settings
        # Called in the loading thread after each swap (e.g. to import the snapshot).
        self._on_swap = on_swap
        self._serving: Serving | None = None
        self._failure: str | None = "no model loaded yet"
        self._swap_lock = threading.Lock()
        # What `latest` said when it was last acted on: a bad version is tried once, not
        # on every poll, and a vanished `latest` leaves the served model in place.
        self._last_seen: str | None = None

    @property
    def models_dir(self) -> Path:
        return self._settings.models_dir

    @property
    def failure(self) -> str | None:
        """Why no model is served, or why the last attempt to change it failed."""
        return self._failure

    @property
    def serving(self) -> Serving | None:
        return self._serving

    def current(self) -> Serving:
        """The model being served with its snapshot.

        Raises
        ------
        ModelUnavailable
            No model is served (none could be loaded); says why.
        """
        serving = self._serving
        if serving is None:
            raise ModelUnavailable(f"no model is being served: {self._failure}")
        return serving

    def _load(self, version: str | None) -> Serving:
        settings = self._settings
        model, snapshot = load_model(
            settings.models_dir,
            version,
            signing_keys=settings.signing_keys,
            self_test_rows=settings.self_test_rows,
        )
        return Serving(model=model, snapshot=snapshot)

    def load_latest(self) -> bool:
        """Serve what `latest` names; on failure keep serving what was served, if anything."""
        try:
            self._last_seen = read_latest(self._settings.models_dir)
            serving = self._load(self._last_seen)
        except ArtifactError as error:
            self._failure = f"{error.code}: {error.message}"
            logger.error("model not loaded: %s", self._failure)
            return False
        self._swap(serving)
        return True

    def activate(self, version: str | None) -> tuple[str, str | None]:
        """Verify ``version`` (default: what `latest` names), repoint `latest`, swap it in.

        Returns (new version, previous version); the current model keeps serving when not.

        Raises
        ------
        InvalidInput
            ``version`` is not a valid version name.
        VersionNotFound
            There is no such version.
        VersionRejected
            The version does not verify, or `latest` cannot be written.
        """
        try:
            return self._activate(version)
        except ArtifactError as error:
            raise self._refusal(error, version) from None

    def verified_model(self, version: str) -> ActiveModel:
        """``version`` loaded exactly as a reload would load it, without serving it.

        Raises
        ------
        InvalidInput, VersionNotFound, VersionRejected
            As :meth:`activate`.
        """
        try:
            return self._load(version).model
        except ArtifactError as error:
            raise self._refusal(error, version) from None

    def _activate(self, version: str | None) -> tuple[str, str | None]:
        with self._swap_lock:
            try:
                serving = self._load(version)
            except ArtifactError as error:
                self._failure = f"{error.code}: {error.message}"
                raise
            previous = self._previous_to(serving.model.version)
            try:
                point_latest(self._settings.models_dir, serving.model.version)
            except OSError as error:
                # A read-only or full models volume: the current model keeps serving.
                self._failure = f"latest_unwritable: {error.strerror or error}"
                raise ArtifactError(
                    "latest_unwritable",
                    f"could not point `latest` at {serving.model.version}: "
                    f"{error.strerror or error}",
                ) from None
            self._last_seen = serving.model.version
            self._swap(serving)
            return serving.model.version, previous

    def _previous_to(self, version: str) -> str | None:
        """The version ``version`` replaces: what `latest` names (this worker may not have
        followed it yet), or, when `latest` already names ``version``, what this worker serves."""
        served = self._serving.model.version if self._serving else None
        try:
            named = read_latest(self._settings.models_dir)
        except ArtifactError:
            return served
        return served if named == version else named

    def _refusal(self, error: ArtifactError, version: str | None) -> ServiceError:
        """The core's refusal as the service's own error, saying what keeps serving."""
        named = f"version {version!r}" if version else "the version `latest` names"
        still = f"; {self._serving.model.version} keeps serving" if self._serving else ""
        details = [detail("version", error.code, error.message)]
        if error.code == "invalid_version_name":
            return InvalidInput(f"{error.message}{still}", details=details)
        if error.code == "model_missing":
            message = f"{error.message}{still}"
            return VersionNotFound(message, details=details)
        message = f"{named} was not activated: {error.message}{still}"
        return VersionRejected(message, details=details)

    def _swap(self, serving: Serving) -> None:
        previous = self._serving
        self._serving = serving
        self._failure = None
        if previous is None or previous.model.version != serving.model.version:
            logger.info("serving model %s", serving.model.version)
            metrics.set_active_version(
                serving.model.version, previous.model.version if previous else None
            )
            if self._on_swap is not None:
                try:
                    self._on_swap(serving)
                except Exception:  # the swap stands; a follower's failure is only logged
                    logger.exception(
                        "after serving %s, the swap hook failed", serving.model.version
                    )

    def latest_changed(self) -> bool:
        """Whether `latest` names a version not yet acted on (a tiny file read)."""
        try:
            named = read_latest(self._settings.models_dir)
        except ArtifactError:
            return False
        return named != self._last_seen

    async def follow_latest(self, interval: float) -> None:
        """Poll `latest` off the request path and load what it names when it changes."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self.latest_changed():
                    await asyncio.to_thread(self._follow)
            except Exception:  # the watcher must outlive any one bad version
                logger.exception("following latest failed")

    def _follow(self) -> None:
        with self._swap_lock:
            if self.latest_changed():
                loaded = self.load_latest()
                metrics.record_reload("watcher", "success" if loaded else "refused")
