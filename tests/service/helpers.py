"""Small factories and assertions shared by the middleware and admin tests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

CRM_KEY = "crm-secret-key-0001"
WEB_KEY = "web-secret-key-0002"
ADMIN_KEY = "admin-secret-key-0003"
KEYS = {"api_keys": f"crm:{CRM_KEY},web:{WEB_KEY}", "admin_api_key": ADMIN_KEY}
"""Settings overrides that turn access control on, with two clients and an admin key."""
ADMIN = {"X-API-Key": ADMIN_KEY}

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def customer(**changes: Any) -> dict[str, Any]:
    """A valid customer body, with ``changes`` applied."""
    return {
        "avg_credit_limit": 50000,
        "total_credit_cards": 3,
        "total_visits_bank": 0,
        "total_visits_online": 10,
        "total_calls_made": 9,
        **changes,
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the contract's error shape and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    error: dict[str, Any] = body["error"]
    return error


@asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``serve``, for an app the test has added routes to."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Poll ``check`` until it says yes; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
