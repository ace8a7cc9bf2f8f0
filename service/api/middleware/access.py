"""Who may call what: client keys (``API_KEYS``) and the admin key (``ADMIN_API_KEY``).

Keys are compared in constant time against every configured key (no early exit on the
first match), as SHA-256 digests so that not even their lengths show in the timing. Only
the digests are kept; a key is never logged, only the name of the client it belongs to.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from pydantic import SecretStr
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.middleware.asgi import (
    OPEN_PATHS,
    client_address,
    header,
    is_documentation,
    route_path,
    scope_state,
    send_error,
)
from service.api.middleware.rate_limit import RequestBudget, too_many
from service.client_keys import client_with_key, key_digest
from service.config import RESERVED_CLIENT_NAME, Settings
from service.dashboard.sessions import SESSION_COOKIE, DashboardKeys
from service.request_context import CLIENT_NAME

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin"
ADMIN_CLIENT = RESERVED_CLIENT_NAME
"""The client name recorded for requests made with the admin key."""

FAILED_KEYS_PER_MINUTE = 10
"""Wrong keys an address may send a minute (in a burst, then at that rate) before every
key it sends is refused with 429 unread: guessing keys stays slow."""

API_KEY_HEADER_NAME = "X-API-Key"
API_KEY_HEADER = API_KEY_HEADER_NAME.lower().encode()


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def wrong_key_budget() -> RequestBudget:
    """How many wrong keys an address may send before it must wait."""
    return RequestBudget(FAILED_KEYS_PER_MINUTE)


DASHBOARD_PREFIX = "/dashboard"


def is_dashboard(path: str) -> bool:
    """Whether ``path`` is the operations dashboard: a browser cannot send ``X-API-Key``, so
    its routes check their own signed session cookie (``service.dashboard.sessions``)."""
    return path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")


class ApiKeyAccess:
    """Check ``X-API-Key``: 401 when missing, 403 when wrong, with the error shape.

    With client keys, every path except OPEN_PATHS and the documentation (``/docs``, its
    assets, ``/openapi.json``: see ``api.docs``) needs one of them. ``/admin/*`` always
    needs exactly the admin key: a
    client key gets 403, and with no admin key configured every admin call gets 403.
    Without client keys the rest of the API is open. The client's name goes into
    ``scope["state"]["client_name"]`` and the ``CLIENT_NAME`` context variable. Wrong keys
    are counted by address in ``failures`` (one budget for every chain of layers of an
    application; a fresh one when not given).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        client_keys: Mapping[str, SecretStr],
        admin_key: SecretStr | None,
        failures: RequestBudget | None = None,
    ) -> None:
        self.app = app
        self._clients = tuple(
            (name, key_digest(key.get_secret_value())) for name, key in client_keys.items()
        )
        self._admin = key_digest(admin_key.get_secret_value()) if admin_key is not None else None
        self._failures = wrong_key_budget() if failures is None else failures
        self._sessions = (
            DashboardKeys(
                {name: key.get_secret_value() for name, key in client_keys.items()},
                admin_key.get_secret_value() if admin_key is not None else None,
            )
            if client_keys
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path in OPEN_PATHS or is_documentation(path):
            await self.app(scope, receive, send)
            return
        if is_dashboard(path):
            # Its routes check the session themselves; the client it names is recorded here
            # so that the rate limit counts a signed-in colleague as that client, not by
            # address (an office behind one proxy would share one budget).
            session = (
                self._sessions.check(_cookie(scope, SESSION_COOKIE)) if self._sessions else None
            )
            if session is not None:
                scope_state(scope)["client_name"] = session.client
            await self.app(scope, receive, send)
            return
        admin = is_admin_path(path)
        if not admin and not self._clients:
            await self.app(scope, receive, send)
            return
        if admin and self._admin is None:
            await send_error(
                send, 403, "forbidden", "admin endpoints are disabled: ADMIN_API_KEY is not set"
            )
            return
        given = header(scope, API_KEY_HEADER)
        if not given:
            await send_error(send, 401, "unauthorized", "this endpoint needs an X-API-Key header")
            return
        address = client_address(scope)
        wait = self._failures.wait(address)
        if wait > 0:
            await too_many(send, wait, f"more than {FAILED_KEYS_PER_MINUTE} wrong keys a minute")
            return
        client = self._admin_client(given) if admin else self._client_of(given)
        if client is None:
            self._failures.admit(address)
            message = (
                "this endpoint needs the admin key (ADMIN_API_KEY)"
                if admin
                else "the X-API-Key is not a valid key"
            )
            await send_error(send, 403, "forbidden", message)
            return
        scope_state(scope)["client_name"] = client
        token = CLIENT_NAME.set(client)
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT_NAME.reset(token)

    def _client_of(self, given: bytes) -> str | None:
        return client_with_key(given, self._clients)

    def _admin_client(self, given: bytes) -> str | None:
        assert self._admin is not None
        return ADMIN_CLIENT if hmac.compare_digest(key_digest(given), self._admin) else None


def warn_if_open(settings: Settings) -> None:
    """Say loudly at start-up when the API needs no key."""
    if not settings.api_keys:
        logger.warning(
            "API_KEYS is not set: the API is OPEN, every endpoint but /admin/* answers "
            "anyone who can reach this service; set API_KEYS=client:key,... to require keys"
        )
    else:
        logger.info("API keys required for clients: %s", ", ".join(sorted(settings.api_keys)))
    if settings.admin_api_key is None:
        logger.info("ADMIN_API_KEY is not set: /admin/* refuses every call")


def _cookie(scope: Scope, name: str) -> str | None:
    """A cookie of the request, as ``request.cookies`` reads it."""
    cookies = header(scope, b"cookie")
    return cookie_parser(cookies.decode("latin-1")).get(name) if cookies else None
