"""Switching a running service between two model versions, back and forth, on a fixed beat.

Every beat changes the version; the way alternates every two beats between
``POST /admin/reload {"version": ...}`` (one worker loads it at once and repoints
`latest`) and repointing `latest` on disk (every worker's poller follows it), so each
way switches to each version.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.service_probes import request
from segmentation.artifact import point_latest

ADMIN = "admin"
LATEST = "latest"


@dataclass(frozen=True)
class Flip:
    """One switch: when, how, to which version, and what came of it."""

    at_seconds: float
    method: str
    version: str
    ok: bool
    seconds: float
    detail: str = ""


class VersionFlipper:
    """A thread that flips the served version every ``every`` seconds while in its ``with``."""

    def __init__(
        self,
        *,
        base_url: str,
        admin_key: str,
        models_dir: Path,
        versions: tuple[str, str],
        every: float,
    ) -> None:
        self._base_url = base_url
        self._admin_key = admin_key
        self._models_dir = models_dir
        self._versions = versions
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="version-flipper", daemon=True)
        self.flips: list[Flip] = []

    def __enter__(self) -> VersionFlipper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def last_version(self) -> str | None:
        return self.flips[-1].version if self.flips else None

    def _run(self) -> None:
        started = time.monotonic()
        beat = 0
        while not self._stop.wait(max(0.0, started + (beat + 1) * self._every - time.monotonic())):
            # The first version is the one served at the start: the first beat moves away.
            version = self._versions[(beat + 1) % 2]
            method = ADMIN if (beat // 2) % 2 == 0 else LATEST
            self.flips.append(self._flip(method, version, time.monotonic() - started))
            beat += 1

    def _flip(self, method: str, version: str, at: float) -> Flip:
        begun = time.perf_counter()
        if method == LATEST:
            point_latest(self._models_dir, version)
            return Flip(at, method, version, True, time.perf_counter() - begun)
        try:
            answer = request(
                self._base_url + "/admin/reload",
                method="POST",
                body={"version": version},
                headers={"X-API-Key": self._admin_key},
            )
        except OSError as error:
            return Flip(at, method, version, False, time.perf_counter() - begun, str(error))
        ok = answer.status == 200 and _served(answer.json()) == version
        detail = "" if ok else f"{answer.status} {answer.body[:200].decode(errors='replace')}"
        return Flip(at, method, version, ok, answer.seconds, detail)

    def summary(self) -> dict[str, Any]:
        """Flips by way, failures, and how long admin reloads took to answer."""
        admin = sorted(flip.seconds for flip in self.flips if flip.method == ADMIN)
        failed = [flip for flip in self.flips if not flip.ok]
        return {
            "flips": len(self.flips),
            "admin_reloads": len(admin),
            "latest_repoints": sum(flip.method == LATEST for flip in self.flips),
            "failed": len(failed),
            "failures": [asdict(flip) for flip in failed[:10]],
            "admin_reload_ms_median": round(1000 * admin[len(admin) // 2], 1) if admin else None,
            "admin_reload_ms_max": round(1000 * admin[-1], 1) if admin else None,
        }


def _served(answer: object) -> object:
    return answer.get("model_version") if isinstance(answer, dict) else None
