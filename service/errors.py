"""Domain errors of the service: a stable code, a message naming the field and the rule."""

from __future__ import annotations

from typing import Any

MAX_DETAILS = 20
"""At most this many details in one error; the rest are counted in a last one.

A body of many unknown fields would otherwise get an answer ten times its own size.
"""


class ServiceError(Exception):
    """Base of every error a client can be told about; mapped to HTTP in one place."""

    code = "error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = capped_details(details or [])

    def as_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ModelUnavailable(ServiceError):
    code = "model_unavailable"


class StoreUnavailableError(ServiceError):
    code = "store_unavailable"


class VersionNotFound(ServiceError):
    code = "version_not_found"


class VersionRejected(ServiceError):
    code = "version_rejected"


class VersionConflict(ServiceError):
    """The version's status does not allow the change (promote the active one, say)."""

    code = "version_conflict"


class LifecycleUnavailable(ServiceError):
    code = "lifecycle_unavailable"


class SegmentNotFound(ServiceError):
    code = "segment_not_found"


class CustomerNotFound(ServiceError):
    code = "customer_not_found"


class InvalidInput(ServiceError):
    code = "invalid_input"


class MalformedBody(ServiceError):
    code = "malformed_body"


class BatchTooLarge(ServiceError):
    code = "batch_too_large"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


MAX_NAMED_FIELDS = 5
"""An error message names at most this many fields; its details list the rest."""


def field_list(details: list[dict[str, Any]]) -> str:
    """The fields the details name, for a message: sorted, shortened, at most a few."""
    fields = sorted({str(item["field"]) for item in details})
    named = ", ".join(name[:64] for name in fields[:MAX_NAMED_FIELDS])
    left_out = len(fields) - MAX_NAMED_FIELDS
    return f"{named} and {left_out} more" if left_out > 0 else named


def detail(field: str | None, rule: str, message: str) -> dict[str, Any]:
    return {"field": field, "rule": rule, "message": message}


def capped_details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_DETAILS details, and one saying how many more were left out."""
    if len(details) <= MAX_DETAILS:
        return details
    left_out = len(details) - MAX_DETAILS
    return [
        *details[:MAX_DETAILS],
        detail(None, "truncated", f"{left_out} more problems of the same request are not listed"),
    ]
