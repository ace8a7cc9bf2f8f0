"""Dashboard sessions: sign in once with an API key, then carry a signed, expiring cookie.

A browser cannot send ``X-API-Key`` with a page load, so the sign-in form takes a key (a
client key from ``API_KEYS``, or ``ADMIN_API_KEY``) and the answer sets a cookie naming
the client and when the session ends, signed with HMAC-SHA256. The signing secret is
derived from the configured keys (an HMAC of a fixed label under them), never drawn at
random: every worker and replica with the same settings accepts a cookie another one
signed, nothing has to be shared between them, and changing or revoking any key ends
every session. The cookie is only ever read by the dashboard's own routes: it opens
nothing else (the admin endpoints still need the admin key in ``X-API-Key``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.client_keys import client_with_key, key_digest
from service.config import RESERVED_CLIENT_NAME

SESSION_COOKIE = "dashboard_session"
SESSION_SECONDS = 8 * 60 * 60
"""A working day: a session signed in in the morning ends by the evening."""
ADMIN_CLIENT = RESERVED_CLIENT_NAME
"""The client name a session signed in with the admin key carries (as in the API's logs)."""
_LABEL = b"customer-segmentation dashboard session v1"
_MAX_COOKIE_CHARACTERS = 1024
"""Anything longer is not a cookie this module wrote; refused before any work."""


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who it signed in as, and when the session ends (Unix seconds)."""

    client: str
    expires: int


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DashboardKeys:
    """Who may sign in to the dashboard, and the sessions it hands out.

    Parameters
    ----------
    client_keys
        Client name -> key, as ``API_KEYS`` gives them; empty: the dashboard is open, as
        the API is.
    admin_key
        ``ADMIN_API_KEY``, if set: its holder may sign in too (and sees what a client sees).
    clock
        Unix time in seconds (tests move it).
    """

    def __init__(
        self,
        client_keys: Mapping[str, str],
        admin_key: str | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = dict(client_keys)
        if admin_key is not None and keys:
            keys[ADMIN_CLIENT] = admin_key
        # Compared as the API's key check compares them (service.client_keys).
        self._digests = tuple((name, key_digest(key)) for name, key in sorted(keys.items()))
        material = json.dumps(sorted(keys.items()), ensure_ascii=False).encode()
        self._secret = hmac.new(material, _LABEL, hashlib.sha256).digest()
        self._clock = clock

    @property
    def required(self) -> bool:
        """Whether a session is needed (client keys are configured)."""
        return bool(self._digests)

    def client_of(self, given: str) -> str | None:
        """The client whose key ``given`` is, or None."""
        return client_with_key(given, self._digests)

    def issue(self, client: str) -> tuple[str, Session]:
        """A new session for ``client`` and its cookie value."""
        session = Session(client=client, expires=int(self._clock()) + SESSION_SECONDS)
        payload = f"{_encode(client.encode())}.{session.expires}"
        return f"{payload}.{_encode(self._sign(payload))}", session

    def check(self, cookie: str | None) -> Session | None:
        """The session ``cookie`` carries, or None when it is absent, malformed, signed
        with another secret (tampered with, or from before a key changed) or expired."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARACTERS:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        encoded_client, expires, signature = parts
        try:
            given = _decode(signature)
            client = _decode(encoded_client).decode()
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._sign(f"{encoded_client}.{expires}")):
            return None
        if int(expires) <= self._clock():
            return None
        if all(name != client for name, _ in self._digests):
            return None
        return Session(client=client, expires=int(expires))

    def _sign(self, payload: str) -> bytes:
        return hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest()
