"""Batches parsed, scored and rendered on a few threads at a time, the others waiting.

A batch's work is mostly Python under the GIL, with numpy steps outside it: a worker can
use about two cores for it. Through the framework's thread pool (40 threads), 16
concurrent 10,000-row batches all ran at once: each held its buffers (some 30 MB) sixteen
times as long, the threads took the GIL from one another, and the allocator kept mapping
fresh memory for them. Two at a time, the others waiting their turn on the event loop,
a worker answered more batches a second in less memory (README, tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


class BatchThreads:
    """At most ``threads`` batch steps running at once in this worker (one event loop)."""

    def __init__(self, threads: int) -> None:
        self._limiter = anyio.CapacityLimiter(threads)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` on a worker thread, once one of the batch threads
        is free."""
        return await anyio.to_thread.run_sync(
            partial(function, *args, **kwargs), limiter=self._limiter
        )
