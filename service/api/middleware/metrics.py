"""Request metrics and the access log: one counter, one histogram and one log line per request.

Routes are labelled by their template (``/segments/{segment_id}``), never by the raw path,
so that the number of series stays bounded; a path that matches no route is ``unmatched``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client.metrics import Counter, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.api.middleware.asgi import route_path, scope_state
from service.logging_setup import ACCESS_LOGGER, log_access

access_logger = logging.getLogger(ACCESS_LOGGER)


def route_template(scope: Scope, known: Sequence[tuple[re.Pattern[str], str]]) -> str:
    """The template of the route that answered, or would have answered, this request.

    ``known`` pairs each route's path regex with its template; it is searched only for
    requests that never reached a route (refused by a layer, or matching nothing).
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    path = route_path(scope)
    for pattern, candidate in known:
        if pattern.match(path):
            return candidate
    return metrics.UNMATCHED_ROUTE


def known_routes(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """Every route template of a FastAPI app (its OpenAPI paths and its docs pages)."""
    try:
        templates = list(app.openapi().get("paths", {}))
        templates += [url for url in (app.openapi_url, app.docs_url, app.redoc_url) if url]
    except Exception:  # counting a request must never break its response
        access_logger.exception("route templates unavailable; refused requests are 'unmatched'")
        templates = []
    return [(compile_path(template)[0], template) for template in templates]


class RequestMetrics:
    """Count and time every HTTP request by method, route template and status; log it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Label lookups cost more than the increments; the key space is bounded.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._timers: dict[tuple[str, str], Histogram] = {}
        self._known_routes: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = metrics.method_label(scope["method"])
        if self._known_routes is None and "route" not in scope:
            self._known_routes = known_routes(scope.get("app"))
        route = route_template(scope, self._known_routes or ())
        self._counter(method, route, str(status)).inc()
        self._timer(method, route).observe(seconds)
        if access_logger.isEnabledFor(logging.INFO):
            state = scope_state(scope)
            fields = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "request_id": state.get("request_id"),
                "client": state.get("client_name"),
            }
            trace = state.get("trace")
            if trace is not None:  # the caller's W3C trace, to find this line from it
                fields["trace_id"], fields["parent_id"] = trace
            message = f"{method} {route} {status} {seconds * 1000:.1f}ms"
            log_access(message, fields)

    def _counter(self, method: str, route: str, status: str) -> Counter:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(method, route, status)
        return counter

    def _timer(self, method: str, route: str) -> Histogram:
        key = (method, route)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = metrics.HTTP_REQUEST_DURATION.labels(method, route)
        return timer
