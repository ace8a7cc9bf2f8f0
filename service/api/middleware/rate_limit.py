"""``RATE_LIMIT_PER_MINUTE`` per client: GCRA (a token bucket kept as one timestamp).

Every limited response says where the client stands, in the fields of the IETF httpapi
draft: ``RateLimit-Policy: "per-client";q=<per minute>;w=60`` and
``RateLimit: "per-client";r=<requests left now>;t=<seconds until the bucket is full>``;
a 429 adds ``Retry-After``.

Each client has a bucket of ``per_minute`` requests that refills continuously at
``per_minute`` a minute: a quiet client may send a whole minute's worth at once, a busy
one is held to the rate. A bucket is one float; a client is its name from ``API_KEYS``
(or ``admin``), the client a dashboard session was signed in as, or its remote address
when keys are off (and for the dashboard's pages before signing in). The table is an LRU
of at most ``max_clients`` entries, so memory stays bounded whatever the number of
addresses; forgetting a client is the same as giving it a full bucket. This table is per process:
with N workers a client can get up to N times the limit. With ``REDIS_URL`` set the buckets
live in Redis instead (:mod:`service.api.middleware.shared_budget`) and the limit holds
across every worker and replica.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import (
    OPEN_PATHS,
    client_address,
    route_path,
    scope_state,
    send_error,
)

DEFAULT_MAX_CLIENTS = 10_000
POLICY = "per-client"
"""The policy's name in the RateLimit and RateLimit-Policy fields (IETF httpapi draft)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What a budget decided for one request."""

    wait: float
    """Seconds the client must wait (0.0: admitted, and counted)."""
    ahead: float
    """How far the client's schedule runs ahead of now (after this request, if admitted)."""


class Budget(Protocol):
    """Where the buckets are kept: this process (:class:`RequestBudget`) or Redis."""

    per_minute: int

    async def take(self, client: str) -> Admission: ...


def standing(per_minute: int, ahead: float) -> tuple[int, int]:
    """How many requests a client ``ahead`` seconds ahead of its schedule could send at once
    now, and the whole seconds until its bucket is full again."""
    interval = 60.0 / per_minute
    remaining = math.floor((60.0 - interval - ahead) / interval) + 1
    return max(min(remaining, per_minute), 0), math.ceil(ahead)


class RequestBudget:
    """Per-client GCRA state in this process: admit a request now, or say how long to wait."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute={per_minute} should be >= 1")
        self.per_minute = per_minute
        self._interval = 60.0 / per_minute
        # How far ahead of now a client's schedule may run: a full minute's burst.
        self._tolerance = 60.0 - self._interval
        self._max_clients = max_clients
        self._clock = clock
        self._next_free: OrderedDict[str, float] = OrderedDict()

    def wait(self, client: str) -> float:
        """The seconds ``client`` must wait before its next request (0.0: none), without
        counting anything."""
        now = self._clock()
        scheduled = max(self._next_free.get(client, now), now)
        return max(scheduled - now - self._tolerance, 0.0)

    def admit(self, client: str) -> float:
        """0.0 if ``client`` may go ahead (and count it), else the seconds to wait."""
        now = self._clock()
        table = self._next_free
        scheduled = max(table.get(client, now), now)
        if scheduled - now > self._tolerance:
            table.move_to_end(client)
            return scheduled - now - self._tolerance
        table[client] = scheduled + self._interval
        table.move_to_end(client)
        if len(table) > self._max_clients:
            table.popitem(last=False)
        return 0.0

    async def take(self, client: str) -> Admission:
        """:meth:`admit`, with where the client stands afterwards."""
        return Admission(self.admit(client), self._ahead(client))

    def standing(self, client: str) -> tuple[int, int]:
        """How many requests ``client`` could send at once now, and the whole seconds until
        its bucket is full again."""
        return standing(self.per_minute, self._ahead(client))

    def _ahead(self, client: str) -> float:
        now = self._clock()
        return max(self._next_free.get(client, now) - now, 0.0)

    def __len__(self) -> int:
        return len(self._next_free)


class RateLimit:
    """Answer 429 (``rate_limited``) with ``Retry-After`` when a client is over its budget.

    Sits inside the key check, so the client is known; probes (``/health``, ``/ready``,
    ``/metrics``) are never limited.
    """

    def __init__(self, app: ASGIApp, *, budget: Budget) -> None:
        self.app = app
        self.budget = budget
        self._policy = (b"ratelimit-policy", f'"{POLICY}";q={budget.per_minute};w=60'.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        admission = await self.budget.take(_client_of(scope))
        if admission.wait > 0:
            limit = f"more than {self.budget.per_minute} requests a minute (RATE_LIMIT_PER_MINUTE)"
            await too_many(send, admission.wait, limit, policy=self._policy)
            return
        remaining, reset = standing(self.budget.per_minute, admission.ahead)
        standing_field = (b"ratelimit", f'"{POLICY}";r={remaining};t={reset}'.encode())

        async def send_with_standing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self._policy, standing_field]
            await send(message)

        await self.app(scope, receive, send_with_standing)


async def too_many(
    send: Send, wait: float, limit: str, *, policy: tuple[bytes, bytes] | None = None
) -> None:
    """Answer 429 (``rate_limited``) saying which ``limit`` was passed, with ``Retry-After``
    (and, for the request budget's ``policy``, the draft RateLimit fields)."""
    retry_after = max(1, math.ceil(wait))
    headers = [(b"retry-after", str(retry_after).encode())]
    if policy is not None:
        headers += [policy, (b"ratelimit", f'"{POLICY}";r=0;t={retry_after}'.encode())]
    await send_error(
        send, 429, "rate_limited", f"{limit}; retry in {retry_after} s", headers=headers
    )


def _client_of(scope: Scope) -> str:
    name = scope_state(scope).get("client_name")
    if name is not None:
        return f"client:{name}"
    return f"address:{client_address(scope)}"
