"""The outermost layer: every request gets an id, and every response carries it back."""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import header, scope_state
from service.request_context import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"

# A client's id is kept only if it is short and printable: it goes into every log line.
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")


def new_request_id() -> str:
    """A random UUID4 in hex (32 characters); five times cheaper than ``uuid.uuid4().hex``."""
    value = bytearray(os.urandom(16))
    value[6] = (value[6] & 0x0F) | 0x40  # version 4
    value[8] = (value[8] & 0x3F) | 0x80  # RFC 4122 variant
    return value.hex()


class RequestId:
    """Take the client's ``X-Request-ID`` (if sane) or make one; echo it on every response.

    The id is put in ``scope["state"]["request_id"]`` and in the ``REQUEST_ID`` context
    variable, which the JSON log formatter reads. Being outermost, this layer also stamps
    the responses that the other layers produce themselves (401, 404, 413, 429, 504...).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, REQUEST_ID_HEADER)
        if given is not None and _SANE_ID.fullmatch(given):
            request_id = given.decode("ascii")
        else:
            request_id = new_request_id()
        scope_state(scope)["request_id"] = request_id
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
