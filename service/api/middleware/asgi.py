"""What the middleware layers share: a request's headers, path and state; error answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import Scope, Send

from service.api.error_handlers import error_body


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole error response: ``{"error": {"code", "message", "details"}}``."""
    body = orjson.dumps(error_body(code, message, details))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"})
"""Probes and scraping: open to all, whatever the keys, and never rate-limited."""

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"


def is_documentation(path: str) -> bool:
    """Whether ``path`` is the API's documentation, which needs no key (see api.docs)."""
    return path in (DOCS_PATH, OPENAPI_PATH) or path.startswith(ASSETS_PATH + "/")


def client_address(scope: Scope) -> str:
    """The address the request came from (``unknown`` when the server did not say)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def scope_state(scope: Scope) -> dict[str, Any]:
    """The request's ``state`` (what ``request.state`` reads), created if absent."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def route_path(scope: Scope) -> str:
    """The path the router matches: without the ``root_path`` a proxy mounted us under."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path
