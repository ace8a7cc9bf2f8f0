"""Body size and time limits: 413 without reading a body that is too large, 504 on time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from starlette.responses import StreamingResponse

from service.api.app import create_app
from service.api.middleware.limits import RequestTimeout
from tests.service.conftest import serve, settings_for
from tests.service.helpers import GENERATED_ID, assert_error, customer, serve_app

LIMIT = 4096
CHUNK = 1024


class CountingBody:
    """A streamed request body of ``chunks`` chunks that counts how many were pulled."""

    def __init__(self, chunks: int, chunk: bytes = b" " * CHUNK) -> None:
        self.chunks = chunks
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield self.chunk


def batch_body(size: int) -> bytes:
    return orjson.dumps({"customers": [customer()] * size})


async def test_declared_length_over_the_limit_is_413_before_reading(models_dir: Path) -> None:
    body = CountingBody(10)
    async with serve(settings_for(models_dir, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/segment",
            content=body,
            headers={"content-type": "application/json", "content-length": str(10 * CHUNK)},
        )
    error = assert_error(response, 413, "body_too_large")
    assert str(LIMIT) in error["message"]
    assert error["details"][0]["rule"] == "max_body_bytes"
    assert body.pulled == 0
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_declared_length_within_the_limit_is_served(models_dir: Path) -> None:
    content = batch_body(10)
    assert len(content) < LIMIT
    async with serve(settings_for(models_dir, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/segment/batch", content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 10


async def test_chunked_body_over_the_limit_is_413_as_soon_as_it_passes(models_dir: Path) -> None:
    body = CountingBody(1000)
    async with serve(settings_for(models_dir, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/segment/batch", content=body, headers={"content-type": "application/json"}
        )
    error = assert_error(response, 413, "body_too_large")
    assert "streamed body" in error["message"]
    # Refused on the first chunk past the limit, not after the whole megabyte.
    assert body.pulled == LIMIT // CHUNK + 1
    assert "x-request-id" in response.headers


async def test_chunked_body_over_the_limit_is_413_on_a_csv_upload(models_dir: Path) -> None:
    header = b"Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    body = CountingBody(500, chunk=header + b"Total_visits_online,Total_calls_made\n" * 10)
    async with serve(settings_for(models_dir, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/segment/batch", content=body, headers={"content-type": "text/csv"}
        )
    assert_error(response, 413, "body_too_large")
    assert body.pulled < 20


async def test_chunked_body_within_the_limit_is_served(models_dir: Path) -> None:
    content = batch_body(5)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 100):
            yield content[start : start + 100]

    async with serve(settings_for(models_dir, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            "/segment/batch", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert [result["index"] for result in response.json()["results"]] == list(range(5))


@pytest.fixture
def slow_app(models_dir: Path) -> FastAPI:
    """The real app with a slow route and a slowly streaming one, added for the test."""
    app = create_app(settings_for(models_dir, request_timeout_seconds=0.2))

    @app.get("/test-slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {"status": "finally"}

    @app.get("/test-slow-stream")
    async def slow_stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            yield b"first\n"
            await asyncio.sleep(0.5)
            yield b"second\n"

        return StreamingResponse(lines(), media_type="text/plain")

    return app


async def test_no_answer_in_time_is_504(slow_app: FastAPI) -> None:
    async with serve_app(slow_app) as client:
        started = asyncio.get_running_loop().time()
        response = await client.get("/test-slow")
        elapsed = asyncio.get_running_loop().time() - started
        error = assert_error(response, 504, "request_timeout")
        assert "0.2 seconds" in error["message"]
        assert elapsed < 2
        assert "x-request-id" in response.headers
        # The service goes on answering.
        assert (await client.get("/segments")).status_code == 200


async def test_started_response_is_not_cut_by_the_timeout(slow_app: FastAPI) -> None:
    async with serve_app(slow_app) as client:
        response = await client.get("/test-slow-stream")
    assert response.status_code == 200
    assert response.text == "first\nsecond\n"


async def test_fast_answers_are_untouched_by_the_timeout(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, request_timeout_seconds=5)) as client:
        response = await client.post("/segment", json=customer())
    assert response.status_code == 200
    assert response.json()["segment_id"]


async def test_a_timeout_the_application_swallows_leaves_no_cancellation_pending() -> None:
    async def swallowing_app(scope: Any, receive: Any, send: Any) -> None:
        # An application that ignores the cancellation and answers anyway.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    middleware = RequestTimeout(swallowing_app, seconds=0.05)
    await middleware({"type": "http", "method": "GET", "path": "/"}, receive, send)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert [message.get("status") for message in sent][:1] == [200]
