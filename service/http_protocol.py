"""uvicorn's httptools protocol, with bounds on what a client may make a request's head cost.

uvicorn (with httptools) bounds neither the size of a request's line and headers nor the
time a client takes to send them: a 16 MB header was read whole, and connections trickling
header lines stayed open for ever. Here a request's head may be at most ``MAX_HEAD_BYTES``
(beyond it: 431 and the connection closed) and must arrive within
``HEADER_TIMEOUT_SECONDS`` of the connection opening or of the request's first byte (beyond
it: 408 and the connection closed). A reverse proxy in front should bound both more tightly
(see the README); these hold when there is none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import get_settings

MAX_HEAD_BYTES = 1 << 20
"""A request line and headers of at most 1 MiB. Counted by what each read brings while a
head is incomplete, so the body bytes read with its start may count too: far below this."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a size and a time bound on each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_seconds = get_settings().header_timeout_seconds
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(
                431, "Request Header Fields Too Large", "the request's headers are too large"
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", "the request's headers came too slowly")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._stop_head_timer()
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason.encode(), len(body), body)
        )
        self.transport.close()
