"""Unexpected errors become the contract's 500 here, inside the request-id and metrics layers.

FastAPI answers an unhandled exception from its outermost layer, outside every added
middleware; answering here instead means that a 500 carries its ``X-Request-ID``, is
counted by route, and its traceback is logged with the request id and the client.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import send_error

logger = logging.getLogger(__name__)


class UnexpectedErrors:
    """Log any exception escaping the application and answer 500 if nothing was sent yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception:
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if response_started:
                raise  # too late for a 500: let the server close the connection
            await send_error(
                send, 500, "internal_error", "the service failed to answer; the error was logged"
            )
