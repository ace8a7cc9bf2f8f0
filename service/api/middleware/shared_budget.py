"""Request budgets kept in Redis, so that a client's limit holds across workers and replicas.

The same GCRA as :class:`~service.api.middleware.rate_limit.RequestBudget`, run by Redis in
one Lua script: reading a client's schedule, deciding and moving it on happen atomically,
whichever worker or replica asks, and the clock is Redis's own (replicas whose clocks
disagree still count against one schedule). A client's key expires once its bucket is full
again, so Redis holds only the clients that are using their budget.

When Redis cannot be reached the service keeps answering: each process counts in its own
table again (a client may then get the limit once per process) and ``/ready`` says so;
Redis is tried again a second later. A lost Redis costs a request at most the short
timeout below, once a second per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from service.api.middleware.rate_limit import Admission, RequestBudget

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "segmentation:rate:"
TIMEOUT_SECONDS = 0.25
"""Longest wait for Redis on one request (a round trip takes a fraction of a millisecond)."""
RETRY_SECONDS = 1.0
"""How long the per-process count stands in after Redis failed, before Redis is tried again."""

# KEYS[1]: the client's key. ARGV: the emission interval and the burst tolerance, in
# microseconds. Returns the microseconds to wait (0: admitted) and how far the client's
# schedule runs ahead of now afterwards. Whole microseconds: Redis truncates Lua numbers
# to integers in replies, and 2^53 microseconds is 285 years.
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local scheduled = tonumber(redis.call('GET', KEYS[1])) or now
if scheduled < now then scheduled = now end
if scheduled - now > tolerance then
    return {scheduled - now - tolerance, scheduled - now}
end
scheduled = scheduled + interval
redis.call('SET', KEYS[1], scheduled, 'PX', math.ceil((scheduled - now) / 1000) + 1)
return {0, scheduled - now}
"""


class SharedBudget:
    """``per_minute`` requests per client, counted in Redis at ``url``.

    Parameters
    ----------
    per_minute
        Requests a minute per client.
    url
        Redis's address (``redis://host:6379/0``, ``rediss://`` for TLS).
    """

    def __init__(self, per_minute: int, url: str) -> None:
        # redis is imported here, by the workers that count in it alone: this module is
        # loaded by every worker, and redis costs one some 6 MB of memory.
        from redis.exceptions import RedisError

        self._failures: tuple[type[Exception], ...] = (TimeoutError, RedisError, OSError)
        """What a request that Redis did not count raises."""
        self.per_minute = per_minute
        interval = 60.0 / per_minute
        self._arguments = (round(interval * 1e6), round((60.0 - interval) * 1e6))
        self._url = url
        self._fallback = RequestBudget(per_minute)
        self._redis: Redis | None = None
        self._script: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed_at: float | None = None
        self.failure: str | None = None
        """Why Redis was last unreachable (None while it answers)."""

    async def take(self, client: str) -> Admission:
        """Count one request of ``client`` in Redis, or in this process while Redis is away."""
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            return await self._fallback.take(client)
        try:
            wait, ahead = await self._script_for_this_loop()(
                keys=[KEY_PREFIX + client], args=self._arguments
            )
        except self._failures as error:
            self._lost(error)
            return await self._fallback.take(client)
        if self._failed_at is not None:
            logger.warning("Redis answers again: rate limits are shared again")
            self._failed_at = self.failure = None
        return Admission(int(wait) / 1e6, int(ahead) / 1e6)

    @property
    def state(self) -> str:
        """``shared``, or why limits are counted per process for now."""
        if self.failure is None:
            return "shared"
        return f"per process: Redis is unreachable ({self.failure})"

    async def close(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    def _script_for_this_loop(self) -> Any:
        """The script, on a client of the running event loop (a Redis client's connections
        belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            from redis.asyncio import Redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._redis = Redis.from_url(
                self._url,
                socket_timeout=TIMEOUT_SECONDS,
                socket_connect_timeout=TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),  # a slow Redis must not slow every request
            )
            self._script = self._redis.register_script(_GCRA)
            self._loop = loop
        return self._script

    def _lost(self, error: BaseException) -> None:
        if self._failed_at is None:
            logger.warning(
                "Redis is unreachable, rate limits are counted per process until it answers: %s",
                error,
            )
        self._failed_at = time.monotonic()
        self.failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
