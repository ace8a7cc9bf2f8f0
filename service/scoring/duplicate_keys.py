"""Refusing JSON objects that name the same field twice.

Fast JSON parsers (orjson, pydantic-core) keep the last of duplicated names without a word,
so ``{"total_calls_made": 0, "total_calls_made": 9}`` would be scored on one of two values
the client sent. RFC 8259 leaves such a document's meaning open; the service refuses it.

Checking every document exactly would cost a slow parse on the hot path. Instead the names
the parser kept are compared with an upper bound on the names written in the body: every
name is followed by a colon, so the body's colons are at least as many as its names. When
the two counts agree, nothing was named twice; otherwise (rare: a value holding a colon,
or a real duplicate) the exact, slow check decides.
"""

from __future__ import annotations

import json
from typing import Any

_NAME_SHOWN = 64
"""Characters of a repeated name quoted back: a hostile name may be megabytes long."""


class DuplicateKeyError(ValueError):
    def __init__(self, name: str | None) -> None:
        self.name = name[:_NAME_SHOWN] if name is not None else None
        super().__init__(
            f"the field {self.name!r} appears more than once in one object"
            if self.name is not None
            else "the document is nested too deeply to be checked for repeated fields"
        )


def check_no_duplicate_keys(body: bytes, names_kept: int) -> None:
    """Raise DuplicateKeyError if an object in ``body`` (valid JSON) repeats a name.

    ``names_kept`` is the number of names the parser kept over every object in the body.
    """
    if body.count(b":") == names_kept:
        return
    try:
        json.loads(body, object_pairs_hook=_refuse_repeated_names)
    except RecursionError:
        # Only a document nested far deeper than any customer gets here.
        raise DuplicateKeyError(None) from None


def _refuse_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateKeyError(name)
            seen.add(name)
    return document
