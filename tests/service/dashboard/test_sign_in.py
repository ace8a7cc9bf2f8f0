"""With keys on, the dashboard needs a session: signing in, out, and what a session opens."""

from __future__ import annotations

import time
from pathlib import Path

from service.dashboard.sessions import SESSION_COOKIE, SESSION_SECONDS, DashboardKeys
from tests.service.conftest import serve, settings_for
from tests.service.dashboard.page_reading import read_page
from tests.service.dashboard.sign_in import session_cookie, signed_in
from tests.service.helpers import ADMIN_KEY, CRM_KEY, KEYS, WEB_KEY, assert_error

CLIENTS = {"crm": CRM_KEY, "web": WEB_KEY}
"""The client keys of ``KEYS``, as the session signer takes them."""


async def test_without_a_session_the_pages_redirect_to_sign_in(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        answers = [await client.get(path) for path in ("/dashboard", "/dashboard/models")]
        report = await client.get("/dashboard/models/anything/report")
        live = await client.get("/dashboard/live")
        form = await client.get("/dashboard/sign-in")
        css = await client.get("/dashboard/static/dashboard.css")
    for answer in [*answers, report]:
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/sign-in"
    assert_error(live, 401, "unauthorized")  # the page's script says "sign in again"
    assert form.status_code == 200
    page = read_page(form.text)
    key_field = page.one("input", name="key")
    assert key_field.attributes["type"] == "password"
    assert page.one("label", for_="key").text() == "API key"
    assert page.one("form").attributes == {"method": "post", "action": "/dashboard/sign-in"}
    assert css.status_code == 200  # the sign-in page's style needs no session


async def test_a_wrong_or_missing_key_is_refused_with_a_readable_page(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        wrong = await client.post("/dashboard/sign-in", data={"key": "not-a-key"})
        empty = await client.post("/dashboard/sign-in", data={"key": "  "})
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("text/html")
    assert read_page(wrong.text).one(role="alert").text() == "That key is not valid."
    assert empty.status_code == 401
    assert read_page(empty.text).one(role="alert").text() == "Enter your API key."
    assert "set-cookie" not in wrong.headers and "set-cookie" not in empty.headers


async def test_a_good_key_sets_a_secure_http_only_strict_expiring_cookie(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        response = await client.post("/dashboard/sign-in", data={"key": CRM_KEY})
        cookie = session_cookie(response)[SESSION_COOKIE]
        page = await client.get(
            "/dashboard", headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"}
        )
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["max-age"] == str(SESSION_SECONDS) == "28800"
    assert cookie["path"] == "/dashboard"  # sent to the dashboard only
    assert page.status_code == 200
    sign_out = read_page(page.text).one("form", action="/dashboard/sign-out")
    assert "Signed in as crm" in sign_out.text()


async def test_the_admin_key_signs_in_too_and_still_opens_nothing_else(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        cookie = await signed_in(client, ADMIN_KEY)
        page = await client.get("/dashboard", headers={"Cookie": cookie})
        segments = await client.get("/segments", headers={"Cookie": cookie})
        promote = await client.post(
            "/admin/shadow", json={"version": "x"}, headers={"Cookie": cookie}
        )
    assert "Signed in as admin" in page.text
    # A session opens the dashboard's pages, never the API: no admin action from a browser.
    assert_error(segments, 401, "unauthorized")
    assert_error(promote, 401, "unauthorized")


async def test_a_tampered_cookie_is_refused(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        cookie = await signed_in(client, WEB_KEY)
        name, value = cookie.split("=", 1)
        client_part, expires, signature = value.split(".")
        forged = [
            f"{name}={client_part}.{int(expires) + 3600}.{signature}",  # a longer session
            f"{name}=Y3Jt.{expires}.{signature}",  # another client ("crm")
            f"{name}={client_part}.{expires}.{signature[:-2]}AA",
            f"{name}={value}x",
            f"{name}=garbage",
        ]
        answers = [await client.get("/dashboard", headers={"Cookie": c}) for c in forged]
        genuine = await client.get("/dashboard", headers={"Cookie": cookie})
    assert [answer.status_code for answer in answers] == [303] * len(forged)
    assert genuine.status_code == 200


async def test_an_expired_session_is_refused(models_dir: Path) -> None:
    yesterday = DashboardKeys(CLIENTS, ADMIN_KEY, clock=lambda: time.time() - 24 * 3600)
    stale, _ = yesterday.issue("crm")
    async with serve(settings_for(models_dir, **KEYS)) as client:
        answer = await client.get("/dashboard", headers={"Cookie": f"{SESSION_COOKIE}={stale}"})
    assert answer.status_code == 303


async def test_a_cookie_signed_by_another_worker_is_accepted(models_dir: Path) -> None:
    # Another process with the same keys derives the same secret: nothing to share.
    elsewhere, _ = DashboardKeys(CLIENTS, ADMIN_KEY).issue("web")
    async with serve(settings_for(models_dir, **KEYS)) as client:
        answer = await client.get("/dashboard", headers={"Cookie": f"{SESSION_COOKIE}={elsewhere}"})
    assert answer.status_code == 200
    assert "Signed in as web" in answer.text


async def test_changing_the_keys_ends_every_session(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        cookie = await signed_in(client, CRM_KEY)
    rotated = {**KEYS, "api_keys": f"crm:{CRM_KEY},web:another-web-key-0004"}
    async with serve(settings_for(models_dir, **rotated)) as client:
        answer = await client.get("/dashboard", headers={"Cookie": cookie})
    assert answer.status_code == 303


async def test_signing_out_clears_the_cookie(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        await signed_in(client, CRM_KEY)
        response = await client.post("/dashboard/sign-out")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in"
    cookie = session_cookie(response)[SESSION_COOKIE]
    assert cookie.value == "" and cookie["max-age"] == "0" and cookie["path"] == "/dashboard"


async def test_guessing_keys_through_the_form_is_slowed_down(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        answers = [
            await client.post("/dashboard/sign-in", data={"key": f"guess-{n}"}) for n in range(12)
        ]
        right_key_too_late = await client.post("/dashboard/sign-in", data={"key": CRM_KEY})
    statuses = [answer.status_code for answer in answers]
    assert statuses[:10] == [403] * 10 and statuses[-1] == 429
    assert right_key_too_late.status_code == 429
    assert int(right_key_too_late.headers["retry-after"]) >= 1
    assert "Too many wrong keys" in read_page(right_key_too_late.text).one(role="alert").text()


async def test_without_keys_the_dashboard_is_open_as_the_api_is(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        page = await client.get("/dashboard")
        form = await client.get("/dashboard/sign-in")
    assert page.status_code == 200
    assert not read_page(page.text).all("form")  # no session, so no sign-out
    assert form.status_code == 303 and form.headers["location"] == "/dashboard"
