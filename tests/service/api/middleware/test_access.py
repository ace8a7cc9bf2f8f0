"""Access control: client keys, the admin key, and what stays open."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from service.api.middleware import access
from service.api.middleware.access import FAILED_KEYS_PER_MINUTE
from service.config import Settings
from tests.service.conftest import serve, settings_for
from tests.service.helpers import (
    ADMIN_KEY,
    CRM_KEY,
    KEYS,
    WEB_KEY,
    assert_error,
    customer,
)

PROTECTED = [
    ("GET", "/segments"),
    ("GET", "/model"),
    ("GET", "/customers/12345"),
    ("POST", "/segment"),
    ("GET", "/docs/assets"),  # only the files under it are open, not the prefix itself
]


async def call(
    client: httpx.AsyncClient, method: str, path: str, key: str | None = None
) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    body = customer() if method == "POST" else None
    return await client.request(method, path, json=body, headers=headers)


@pytest.fixture
async def keyed(models_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_key_is_401_when_keys_are_set(
    keyed: httpx.AsyncClient, method: str, path: str
) -> None:
    error = assert_error(await call(keyed, method, path), 401, "unauthorized")
    assert "X-API-Key" in error["message"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_wrong_key_is_403_when_keys_are_set(
    keyed: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_error(await call(keyed, method, path, "not-a-key"), 403, "forbidden")


async def test_empty_key_counts_as_missing(keyed: httpx.AsyncClient) -> None:
    assert_error(await call(keyed, "GET", "/segments", ""), 401, "unauthorized")


async def test_key_that_extends_a_valid_key_is_403(keyed: httpx.AsyncClient) -> None:
    assert_error(await call(keyed, "GET", "/segments", CRM_KEY + "x"), 403, "forbidden")
    assert_error(await call(keyed, "GET", "/segments", CRM_KEY[:-1]), 403, "forbidden")


@pytest.mark.parametrize("key", [CRM_KEY, WEB_KEY])
async def test_every_client_key_opens_the_api(keyed: httpx.AsyncClient, key: str) -> None:
    scored = await call(keyed, "POST", "/segment", key)
    assert scored.status_code == 200
    assert scored.json()["segment_id"]
    catalog = await call(keyed, "GET", "/segments", key)
    assert catalog.status_code == 200
    assert catalog.json()["segments"]
    docs = await call(keyed, "GET", "/openapi.json", key)
    assert docs.status_code == 200
    assert "/segment" in docs.json()["paths"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_probes_and_metrics_are_open_without_a_key(
    keyed: httpx.AsyncClient, path: str
) -> None:
    response = await keyed.get(path)
    assert response.status_code == 200
    assert response.text


async def test_probes_ignore_a_wrong_key(keyed: httpx.AsyncClient) -> None:
    response = await call(keyed, "GET", "/health", "not-a-key")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    ready = await call(keyed, "GET", "/ready", "not-a-key")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    scraped = await call(keyed, "GET", "/metrics", "not-a-key")
    assert scraped.status_code == 200
    assert "http_requests_total" in scraped.text


@pytest.mark.parametrize("path", ["/health/", "/healthz", "/health/../segments", "/metrics/x"])
async def test_paths_near_the_open_ones_still_need_a_key(
    keyed: httpx.AsyncClient, path: str
) -> None:
    assert_error(await keyed.get(path), 401, "unauthorized")


class CompareDigestSpy:
    """Records the lengths of what ``hmac.compare_digest`` is asked to compare."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self._compare = hmac.compare_digest

    def __call__(self, given: bytes, expected: bytes) -> bool:
        self.calls.append((len(given), len(expected)))
        return self._compare(given, expected)


@pytest.mark.parametrize(
    "key", [CRM_KEY, WEB_KEY, "x", "not-a-key" * 100], ids=["first", "last", "short", "long"]
)
async def test_client_key_is_compared_with_every_key_as_equal_length_digests(
    keyed: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Constant time, structurally: no early exit on a match, and no length to time."""
    spy = CompareDigestSpy()
    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    response = await call(keyed, "GET", "/segments", key)
    assert response.status_code == (200 if key in (CRM_KEY, WEB_KEY) else 403)
    assert spy.calls == [(32, 32), (32, 32)]  # both clients, SHA-256 digests


@pytest.mark.parametrize("key", [ADMIN_KEY, CRM_KEY, "x"])
async def test_admin_key_is_compared_as_an_equal_length_digest(
    keyed: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    spy = CompareDigestSpy()
    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    response = await keyed.post("/admin/reload", headers={"X-API-Key": key})
    assert response.status_code == (200 if key == ADMIN_KEY else 403)
    assert spy.calls[0] == (32, 32)


async def test_refusals_never_echo_the_key_sent(keyed: httpx.AsyncClient) -> None:
    wrong = "wrong-key-that-must-not-come-back"
    refusals = [
        await call(keyed, "GET", "/segments", wrong),
        await call(keyed, "POST", "/segment", wrong),
        await keyed.post("/admin/reload", headers={"X-API-Key": wrong}),
        await keyed.post("/admin/reload", headers={"X-API-Key": CRM_KEY}),
    ]
    for response, sent in zip(refusals, [wrong, wrong, wrong, CRM_KEY], strict=True):
        assert_error(response, 403, "forbidden")
        assert sent not in response.text
        assert all(sent not in value for value in response.headers.values())


async def test_admin_with_a_client_key_is_403(keyed: httpx.AsyncClient) -> None:
    response = await keyed.post("/admin/reload", headers={"X-API-Key": CRM_KEY})
    error = assert_error(response, 403, "forbidden")
    assert "ADMIN_API_KEY" in error["message"]


async def test_admin_without_a_key_is_401(keyed: httpx.AsyncClient) -> None:
    assert_error(await keyed.post("/admin/reload"), 401, "unauthorized")


async def test_admin_with_the_admin_key_is_answered(keyed: httpx.AsyncClient) -> None:
    response = await keyed.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200
    assert response.json()["model_version"] == response.json()["previous_version"]


async def test_admin_key_is_not_a_client_key(keyed: httpx.AsyncClient) -> None:
    assert_error(await call(keyed, "GET", "/segments", ADMIN_KEY), 403, "forbidden")


async def test_unknown_admin_path_needs_the_admin_key_too(keyed: httpx.AsyncClient) -> None:
    assert_error(await call(keyed, "GET", "/admin/anything", CRM_KEY), 403, "forbidden")
    assert_error(await call(keyed, "GET", "/admin/anything", ADMIN_KEY), 404, "not_found")


@pytest.mark.parametrize("key", [None, CRM_KEY, "anything"])
async def test_admin_is_refused_when_no_admin_key_is_configured(
    models_dir: Path, key: str | None
) -> None:
    settings = settings_for(models_dir, api_keys=f"crm:{CRM_KEY}")
    async with serve(settings) as client:
        response = await call(client, "POST", "/admin/reload", key)
    error = assert_error(response, 403, "forbidden")
    assert "ADMIN_API_KEY is not set" in error["message"]


async def test_admin_is_refused_on_an_open_api_without_admin_key(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        assert (await client.get("/segments")).status_code == 200
        assert_error(await client.post("/admin/reload"), 403, "forbidden")


async def test_admin_key_alone_protects_admin_on_an_open_api(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, admin_api_key=ADMIN_KEY)) as client:
        assert (await client.get("/segments")).status_code == 200
        assert_error(await client.post("/admin/reload"), 401, "unauthorized")
        reloaded = await client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
        assert reloaded.status_code == 200


async def test_open_api_warns_loudly_at_start_up(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with serve(settings_for(models_dir)) as client:
            assert (await client.get("/segments")).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("API_KEYS is not set" in r.getMessage() for r in warnings)


async def test_keys_are_never_logged_but_client_names_are(
    models_dir: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with serve(settings_for(models_dir, **KEYS)) as client:
            await call(client, "POST", "/segment", CRM_KEY)
            await call(client, "GET", "/segments", "wrong-key-value")
            await client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    written = caplog.text + capsys.readouterr().err
    for secret in (CRM_KEY, WEB_KEY, ADMIN_KEY, "wrong-key-value"):
        assert secret not in written
        assert all(secret not in str(record.__dict__) for record in caplog.records)
    access = [r for r in caplog.records if r.name == "service.access"]
    assert {getattr(r, "client", None) for r in access} == {"crm", None, "admin"}


async def test_wrong_keys_from_one_address_are_slowed_to_a_few_a_minute(
    keyed: httpx.AsyncClient,
) -> None:
    wrong = [
        await keyed.post("/segment", json=customer(), headers={"X-API-Key": f"guess-{n}"})
        for n in range(FAILED_KEYS_PER_MINUTE + 3)
    ]
    assert [r.status_code for r in wrong] == [403] * FAILED_KEYS_PER_MINUTE + [429] * 3
    refused = assert_error(wrong[-1], 429, "rate_limited")
    assert "wrong keys a minute" in refused["message"]
    assert int(wrong[-1].headers["retry-after"]) >= 1
    # Once over, even a right key from that address waits: guessing cannot test keys.
    right = await keyed.post("/segment", json=customer(), headers={"X-API-Key": CRM_KEY})
    assert right.status_code == 429
    # Probes stay open.
    assert (await keyed.get("/ready")).status_code == 200


async def test_wrong_keys_are_counted_together_on_the_live_call_and_every_other_route(
    keyed: httpx.AsyncClient,
) -> None:
    # POST /segment goes through a chain of layers of its own (routes.live_path): guessing
    # keys there and elsewhere in turn must not double the guesses an address is allowed.
    statuses = []
    for n in range(FAILED_KEYS_PER_MINUTE + 2):
        headers = {"X-API-Key": f"guess-{n}"}
        if n % 2:
            response = await keyed.post("/segment", json=customer(), headers=headers)
        else:
            response = await keyed.get("/segments", headers=headers)
        statuses.append(response.status_code)
    assert statuses == [403] * FAILED_KEYS_PER_MINUTE + [429] * 2


def test_no_client_may_take_the_admin_key_s_name() -> None:
    with pytest.raises(ValidationError, match="may not name a client 'admin'"):
        Settings(api_keys=f"crm:{CRM_KEY},admin:another-key")
