"""Batches are parsed and scored BATCH_THREADS at a time; the others wait their turn."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from service.api.routes import scoring
from tests.service.conftest import serve, settings_for
from tests.service.helpers import customer


class Overlap:
    """Wraps a batch step: records how many calls run at once, and makes every call wait
    for ``together`` of them to be inside (a limit lower than that fails the request)."""

    def __init__(self, step: Any, together: int) -> None:
        self._step = step
        self._inside = 0
        self._lock = threading.Lock()
        self._together = threading.Barrier(together, timeout=10)
        self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._inside += 1
            self.most = max(self.most, self._inside)
        try:
            self._together.wait()
            time.sleep(0.1)  # long enough for any call let in beside them to be counted
            return self._step(*args, **kwargs)
        finally:
            with self._lock:
                self._inside -= 1


@pytest.mark.parametrize("threads", [1, 2])
async def test_concurrent_batches_are_parsed_batch_threads_at_a_time(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    overlap = Overlap(scoring.parse_json_batch, together=threads)
    monkeypatch.setattr(scoring, "parse_json_batch", overlap)
    body = {"customers": [customer(), customer(avg_credit_limit=90_000)]}
    async with serve(settings_for(models_dir, batch_threads=threads)) as client:
        answers = await asyncio.gather(
            *(client.post("/segment/batch", json=body) for _ in range(3 * threads))
        )
    assert [answer.status_code for answer in answers] == [200] * (3 * threads)
    assert all(answer.json()["n_errors"] == 0 for answer in answers)
    assert overlap.most == threads
