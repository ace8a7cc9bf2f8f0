"""The CRM's live call, ``POST /segment``, taken straight to its route function.

On the way to a route FastAPI passes its exception middleware, its exit-stack middleware,
its router (matching the path against every route) and its request handler (dependencies,
parameters, response class). For this one call, which the CRM makes while an agent is on
the phone, that machinery cost more than reading, scoring and recording the customer. The
function is the same one FastAPI documents and would call (``routes.scoring``); only the
way to it is shorter. Every layer of the service's own (keys, rate limit, body limit,
timeout, request id, metrics, access log) still applies: this sits inside all of them, and
a domain error gets the same answer as through FastAPI's handlers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.error_handlers import service_error_response
from service.api.middleware.asgi import route_path
from service.api.routes.scoring import LIVE_PATH, router, score_customer
from service.errors import ServiceError


class LivePath:
    """Answer ``POST /segment`` with :func:`score_customer`; pass everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # What the router would have recorded in the scope: the metrics label by it.
        self._route = next(route for route in router.routes if _path(route) == LIVE_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != LIVE_PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route
        try:
            response = await score_customer(Request(scope, receive, send))
        except ServiceError as error:
            response = service_error_response(error)
        await response(scope, receive, send)


def _path(route: Any) -> Any:
    return getattr(route, "path", None)
