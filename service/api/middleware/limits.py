"""Request limits: the body size (``MAX_BODY_BYTES``) and the time to start answering.

Neither limit reads anything ahead of the application: a declared Content-Length that is
too large is refused before the body is read, and a body without one (chunked) is counted
as the application pulls it and refused the moment it passes the limit.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import header, send_error

logger = logging.getLogger(__name__)


class _BodyTooLarge(Exception):
    """Raised into the application from ``receive`` when a streamed body passes the limit."""


class BodySizeLimit:
    """Answer 413 (``body_too_large``) for a request body larger than ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            # The server delivers exactly Content-Length bytes, so nothing to count.
            if declared > self.max_body_bytes:
                await self._refuse(send, f"Content-Length is {declared} bytes")
                return
            await self.app(scope, receive, send)
            return
        await self._call_counting(scope, receive, send)

    async def _call_counting(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large and not response_started:
                return  # whatever the application makes of the error, the answer is 413
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large or response_started:
                raise
        if too_large and not response_started:
            await self._refuse(send, f"the streamed body passed {self.max_body_bytes} bytes")

    async def _refuse(self, send: Send, what: str) -> None:
        await send_error(
            send,
            413,
            "body_too_large",
            f"the request body is too large: {what}, the limit is {self.max_body_bytes} bytes "
            "(MAX_BODY_BYTES)",
            details=[{"field": "body", "rule": "max_body_bytes", "message": what}],
        )


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


class RequestTimeout:
    """Answer 504 (``request_timeout``) when the response has not started within ``seconds``.

    Once the response has started (a long CSV page streaming out, say) the clock stops:
    a half-sent response cannot be turned into an error. Work that the application handed
    to a thread cannot be interrupted; its result is discarded when it finishes.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # What asyncio.timeout does (cancel the task at the deadline, then tell that
        # cancellation from any other), without building its context manager on every
        # request: on the live path that was a few per cent of a request's time.
        task = asyncio.current_task()
        assert task is not None
        response_started = expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        clock = asyncio.get_running_loop().call_later(self.seconds, expire)

        async def send_stopping_clock(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                clock.cancel()
            await send(message)

        try:
            await self.app(scope, receive, send_stopping_clock)
        except asyncio.CancelledError:
            # Too late once the answer has begun; ours only if nobody else cancelled too.
            if not expired or response_started or task.uncancel() > 0:
                raise
            logger.warning(
                "%s %s gave no answer within %s s", scope["method"], scope["path"], self.seconds
            )
            await send_error(
                send,
                504,
                "request_timeout",
                f"the service could not answer within {self.seconds:g} seconds "
                "(REQUEST_TIMEOUT_SECONDS)",
            )
        else:
            if expired:  # the application swallowed our cancellation: do not leave it pending
                task.uncancel()
        finally:
            clock.cancel()
