"""What a request's body is said to be (its ``Content-Type``), and the answer to a type the
route does not read."""

from __future__ import annotations

from starlette.types import Scope

from service.api.middleware.asgi import header
from service.errors import UnsupportedMediaType, detail

JSON_TYPES = frozenset({"", "application/json"})
"""A body without a Content-Type is read as JSON; any other type is refused with 415."""


def body_media_type(scope: Scope) -> str:
    """The request's media type, lower case, without parameters (``""`` when not given)."""
    content_type = header(scope, b"content-type") or b""
    return content_type.split(b";")[0].strip().lower().decode("latin-1")


def unsupported(media_type: str, accepted: str) -> UnsupportedMediaType:
    """The 415 for a body of ``media_type``, saying what ``accepted`` would be read."""
    return UnsupportedMediaType(
        f"Content-Type {media_type!r} is not supported: send {accepted}",
        details=[detail("content-type", "media_type", f"{media_type!r} is not supported")],
    )
