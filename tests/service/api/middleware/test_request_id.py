"""X-Request-ID on every response, and unexpected errors answered with the error shape."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import RFC_4122, UUID

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from tests.service.conftest import serve, settings_for
from tests.service.helpers import GENERATED_ID, KEYS, assert_error, customer, serve_app


@pytest.fixture
def failing_app(models_dir: Path) -> FastAPI:
    app = create_app(settings_for(models_dir))

    @app.get("/test-failure")
    async def fail() -> None:
        raise RuntimeError("a bug the client must not see")

    return app


async def every_kind_of_answer(client: httpx.AsyncClient) -> list[httpx.Response]:
    return [
        await client.get("/health"),
        await client.post("/segment", json=customer()),
        await client.get("/no-such-route"),
        await client.get("/segments/no-such-segment"),
        await client.post("/segment", json={"avg_credit_limit": "lots"}),
        await client.delete("/segments"),
    ]


async def test_every_answer_gets_a_generated_id(client: httpx.AsyncClient) -> None:
    responses = await every_kind_of_answer(client)
    assert [r.status_code for r in responses] == [200, 200, 404, 404, 422, 405]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(GENERATED_ID.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)
    assert {(UUID(hex=i).version, UUID(hex=i).variant) for i in ids} == {(4, RFC_4122)}


async def test_client_id_is_echoed_on_every_answer(client: httpx.AsyncClient) -> None:
    client.headers["X-Request-ID"] = "crm-batch-2026-11-23/00042"
    for response in await every_kind_of_answer(client):
        assert response.headers["x-request-id"] == "crm-batch-2026-11-23/00042"


@pytest.mark.parametrize(
    "given", [b"x" * 129, b"has space", b"tab\there", "caf\u00e9".encode(), b""]
)
async def test_insane_client_id_is_replaced(client: httpx.AsyncClient, given: bytes) -> None:
    response = await client.get("/health", headers={"X-Request-ID": given})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_id_is_on_answers_made_by_the_middleware(models_dir: Path) -> None:
    settings = settings_for(models_dir, max_body_bytes=1024, rate_limit_per_minute=1, **KEYS)
    async with serve(settings) as client:
        unauthorized = await client.get("/segments")
        too_large = await client.post("/segment", content=b"x" * 2048)
        key = {"X-API-Key": KEYS["api_keys"].split(",")[0].split(":")[1]}
        await client.get("/model", headers=key)
        limited = await client.get("/model", headers=key | {"X-Request-ID": "mine-1"})
    assert_error(unauthorized, 401, "unauthorized")
    assert_error(too_large, 413, "body_too_large")
    assert_error(limited, 429, "rate_limited")
    assert GENERATED_ID.fullmatch(unauthorized.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(too_large.headers["x-request-id"])
    assert limited.headers["x-request-id"] == "mine-1"


async def test_unexpected_error_is_500_with_the_error_shape_and_the_id(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_app(failing_app) as client:
        response = await client.get("/test-failure", headers={"X-Request-ID": "trace-me"})
        assert (await client.get("/health")).status_code == 200
    error = assert_error(response, 500, "internal_error")
    assert "bug" not in error["message"]
    assert response.headers["x-request-id"] == "trace-me"
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert logged
    assert "RuntimeError" in caplog.text


async def test_id_is_in_the_access_log(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        await client.get("/segments", headers={"X-Request-ID": "find-me-in-logs"})
    (line,) = [r for r in caplog.records if getattr(r, "request_id", None) == "find-me-in-logs"]
    assert line.route == "/segments"  # type: ignore[attr-defined]
    assert line.status == 200  # type: ignore[attr-defined]
    assert line.method == "GET"  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
