"""The CRM's live call, ``POST /segment``, taken straight from the server to its route.

Every request to a FastAPI application passes FastAPI's own layers (its server-error,
telemetry and body-limit middleware), then the service's, then FastAPI's exception
middleware, its router (matching the path against every route) and its request handler
(dependencies, parameters, response class). For this one call, which the CRM makes while
an agent is on the phone, that machinery cost more than reading, scoring and recording the
customer. Here the application answers it before any of FastAPI's layers, through a second
chain of the service's own layers (keys, rate limit, body limit, timeout, request id,
metrics, access log: the same classes, with the same settings and shared counters) around
the same domain call as the route FastAPI documents (``routes.scoring.score_customer``),
on the ASGI messages themselves. Only the way to it is shorter; a domain error gets the
same answer as through FastAPI's handlers.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.error_handlers import service_error_response
from service.api.media_types import JSON_TYPES, body_media_type, unsupported
from service.api.middleware.asgi import route_path
from service.api.query_parameters import refuse_unknown
from service.api.routes.scoring import LIVE_PATH, router
from service.errors import ServiceError
from service.scoring.single_scoring import score_one


class ServiceApi(FastAPI):
    """FastAPI, with ``POST /segment`` answered ahead of FastAPI's own layers.

    The service's middleware is added as usual (``add_middleware``); the live call goes
    through a chain of its own built from the same list, so it gets every layer too.
    Layers that count across requests (failed keys, rate limits) take their counters as
    arguments, shared by both chains.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live_chain: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            if self.root_path:
                scope["root_path"] = self.root_path
            if route_path(scope) == LIVE_PATH:
                scope["app"] = self  # what FastAPI would set: routes and metrics read it
                chain = self._live_chain
                if chain is None:
                    chain = self._live_chain = self._build_live_chain()
                await chain(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _build_live_chain(self) -> ASGIApp:
        chain: ASGIApp = LiveRoute()
        for middleware in reversed(self.user_middleware):
            chain = middleware.cls(chain, *middleware.args, **middleware.kwargs)
        return chain


class LiveRoute:
    """The end of the live chain: what :func:`score_customer` does, on the ASGI messages.

    Starlette's request and response objects (headers parsed into a mapping, the body read
    through a generator, a response rendered and its headers built) were a tenth of the
    call; here the body is read and the answer sent as the ASGI messages they come down to,
    with the same headers in the same order.
    """

    def __init__(self) -> None:
        # What the router would have recorded in the scope: the metrics label by it.
        self._route = next(route for route in router.routes if _path(route) == LIVE_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route
        state = scope["app"].state
        try:
            if scope.get("query_string"):  # the route takes none, as FastAPI's dependency checks
                refuse_unknown(QueryParams(scope["query_string"]), frozenset())
            body_type = body_media_type(scope)
            if body_type not in JSON_TYPES:
                raise unsupported(body_type, "application/json")
            model = state.holder.current().model  # one model for the whole request
            body = await _body(receive)
            answer = await score_one(
                model, state.records, state.drift_window, body, shadow=state.shadow
            )
        except ServiceError as error:
            await service_error_response(error)(scope, receive, send)
            return
        content = orjson.dumps(answer)
        headers = [(b"content-length", str(len(content)).encode()), _JSON_CONTENT]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


_JSON_CONTENT = (b"content-type", b"application/json")


async def _body(receive: Receive) -> bytes:
    """The request's whole body, as ``Request.body`` reads it (a client gone: ClientDisconnect)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _path(route: Any) -> Any:
    return getattr(route, "path", None)
