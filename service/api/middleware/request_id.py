"""The outermost layer: every request gets an id, and every response carries it back."""

from __future__ import annotations

import re
from random import getrandbits

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import header, scope_state
from service.request_context import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"

# A client's id is kept only if it is short and printable: it goes into every log line.
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")


_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant


def new_request_id() -> str:
    """A random UUID4 in hex (32 characters).

    An id only has to be unique, not secret: the process's own generator (seeded from the
    system at start, and again in a forked child) makes it without a system call, which on
    the live path also means without letting go of the GIL to the store's writer thread
    and waiting to get it back.
    """
    return f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


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
