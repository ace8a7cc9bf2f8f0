"""The outermost layer: every request gets an id, and every response carries it back."""

from __future__ import annotations

import re
from random import getrandbits

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware.asgi import header, scope_state
from service.request_context import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"
TRACEPARENT_HEADER = b"traceparent"

# W3C Trace Context: version-traceid-parentid-flags, lower-case hex; a later version may
# append fields, version ff is invalid, and all-zero ids are invalid.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")

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
        state = scope_state(scope)
        state["request_id"] = request_id
        traceparent = header(scope, TRACEPARENT_HEADER)
        if traceparent is not None:
            state["trace"] = parse_traceparent(traceparent)
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


def parse_traceparent(value: bytes) -> tuple[str, str] | None:
    """The trace id and parent id of a W3C ``traceparent`` header, or None when it is not
    one (a tracer that sent a broken header must not break the request)."""
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, parent_id, more = found.groups()
    if (
        version == b"ff"
        or (version == b"00" and more)
        or not int(trace_id, 16)
        or not int(parent_id, 16)
    ):
        return None
    return trace_id.decode(), parent_id.decode()
