"""Matching a presented key against the configured ones, for the API and the dashboard alike.

Keys are compared as SHA-256 digests, in constant time against every key: neither which
key matched nor a key's length shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def key_digest(key: str | bytes) -> bytes:
    """What a key is kept and compared as (never the key itself)."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


def client_with_key(given: str | bytes, digests: Iterable[tuple[str, bytes]]) -> str | None:
    """The client whose key digest (of ``(client, digest)`` pairs) ``given`` matches, or
    None; every digest is compared, whichever matches."""
    digest = key_digest(given)
    found = None
    for name, key in digests:
        if hmac.compare_digest(digest, key):
            found = name
    return found
