"""Refusing query parameters that a route does not take.

A misspelt parameter (``?limt=10``, ``?fromat=csv``) would otherwise be ignored without a
word, and the client would get an answer to another question than the one it asked.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.routing import APIRoute

from service.errors import InvalidInput, detail

_KNOWN: dict[tuple[str, str], frozenset[str]] = {}
"""Query parameter names by (path template, method), as the API document gives them."""


async def refuse_unknown_query_parameters(request: Request) -> None:
    """A dependency of every route: 422 naming any query parameter the route does not take."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    operation = (route.path_format, request.method.lower())
    known = _KNOWN.get(operation)
    if known is None:
        document = request.app.openapi().get("paths", {}).get(operation[0], {})
        parameters = document.get(operation[1], {}).get("parameters", [])
        known = _KNOWN[operation] = frozenset(
            parameter["name"] for parameter in parameters if parameter["in"] == "query"
        )
    refuse_unknown(request.query_params, known)


def refuse_unknown(names: Iterable[str], known: frozenset[str]) -> None:
    """422 naming each of the query parameters ``names`` that is not one of ``known``."""
    unknown = sorted(set(names) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        message = (
            f"unknown query parameter {', '.join(map(repr, unknown))}; this route takes: {takes}"
        )
        raise InvalidInput(
            message, details=[detail(name, "unknown_parameter", message) for name in unknown]
        )
