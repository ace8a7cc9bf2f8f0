"""The one place where errors become HTTP responses with the contract's error shape."""

from __future__ import annotations

import csv
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import compile_path

from service import errors
from service.api.responses import JSONBytesResponse

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.ServiceError], int] = {
    errors.MalformedBody: 400,
    errors.SegmentNotFound: 404,
    errors.CustomerNotFound: 404,
    errors.VersionNotFound: 404,
    errors.VersionRejected: 409,
    errors.VersionConflict: 409,
    errors.BatchTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.ModelUnavailable: 503,
    errors.StoreUnavailableError: 503,
    errors.LifecycleUnavailable: 503,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": errors.capped_details(details or [])}
    }


def service_error_response(error: errors.ServiceError) -> Response:
    """The answer to a domain error: its status, and its own error body."""
    return JSONBytesResponse(error.as_body(), status_code=STATUS_BY_ERROR.get(type(error), 400))


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, errors.ServiceError)
    return service_error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = _CODE_BY_STATUS.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    if error.status_code == 404:
        message = f"no route {request.url.path}"
    headers = error.headers
    if error.status_code == 405:
        allowed = _methods_allowed(request)
        message = (
            f"method {request.method} is not allowed on {request.url.path}; "
            f"allowed: {', '.join(allowed)}"
        )
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return JSONBytesResponse(
        error_body(code, message), status_code=error.status_code, headers=headers
    )


def _methods_allowed(request: Request) -> list[str]:
    """Every method the API document gives this path. (Each method of a path is a route of
    its own, and the router's 405 names only the first route's methods.)"""
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].fullmatch(request.url.path):
            return sorted(method.upper() for method in operations)
    return []


async def _request_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    details = [
        errors.detail(
            ".".join(str(part) for part in item.get("loc", ())) or None,
            str(item.get("type", "invalid")),
            str(item.get("msg", "invalid value")),
        )
        for item in error.errors()
    ]
    return JSONBytesResponse(
        error_body(
            "invalid_input", f"the request is invalid: {errors.field_list(details)}", details
        ),
        status_code=422,
    )


async def _unreadable_csv(request: Request, error: Exception) -> Response:
    # The only CSV the service reads over HTTP is the client's upload, and the csv module
    # refuses some of it outright (a field past its size limit, say): the client's fault.
    return JSONBytesResponse(
        error_body(
            "malformed_body",
            f"the CSV could not be read: {error}",
            [errors.detail(None, "csv_invalid", str(error))],
        ),
        status_code=400,
    )


async def _unexpected_error(request: Request, error: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONBytesResponse(
        error_body("internal_error", "the service failed to answer; the error was logged"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(csv.Error, _unreadable_csv)
    app.add_exception_handler(Exception, _unexpected_error)
