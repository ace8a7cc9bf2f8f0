"""What the current request is known by in logs: its id and its client's name."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The request's ``X-Request-ID``; set by the outermost middleware."""

CLIENT_NAME: ContextVar[str | None] = ContextVar("client_name", default=None)
"""The name of the authenticated client (``API_KEYS``), ``admin``, or None when anonymous."""
