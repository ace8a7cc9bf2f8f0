"""The request pipeline around the routes: pure ASGI layers, one module per concern.

From the outside in: request id, metrics and access log, unexpected errors, body size,
timeout, keys, rate limit, then the application.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.api.middleware.access import ApiKeyAccess, wrong_key_budget
from service.api.middleware.limits import BodySizeLimit, RequestTimeout
from service.api.middleware.metrics import RequestMetrics
from service.api.middleware.rate_limit import Budget, RateLimit, RequestBudget
from service.api.middleware.request_id import RequestId
from service.api.middleware.server_errors import UnexpectedErrors
from service.api.middleware.shared_budget import SharedBudget
from service.config import Settings


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add every layer; each one added wraps those added before it, so innermost first."""
    if settings.rate_limit_per_minute is not None:
        app.add_middleware(RateLimit, budget=rate_limit_budget(app, settings))
    app.add_middleware(
        ApiKeyAccess,
        client_keys=settings.api_keys,
        admin_key=settings.admin_api_key,
        failures=wrong_key_budget(),  # one count for both chains (see routes.live_path)
    )
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout_seconds)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestId)


def rate_limit_budget(app: FastAPI, settings: Settings) -> Budget:
    """Where clients' requests are counted: in Redis when ``REDIS_URL`` is set (one limit
    across every worker and replica), else in each process. A shared one is kept in
    ``app.state.shared_budget``, for ``/ready`` to report on and the lifespan to close."""
    assert settings.rate_limit_per_minute is not None
    if settings.redis_url is None:
        return RequestBudget(settings.rate_limit_per_minute)
    budget = SharedBudget(settings.rate_limit_per_minute, settings.redis_url)
    app.state.shared_budget = budget
    return budget
