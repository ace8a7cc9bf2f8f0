"""Signing in to the dashboard in tests, and reading the session cookie it sets."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx

from service.dashboard.sessions import SESSION_COOKIE


def session_cookie(response: httpx.Response) -> SimpleCookie:
    """The session cookie a response sets (one ``Set-Cookie``)."""
    (header,) = response.headers.get_list("set-cookie")
    cookie = SimpleCookie()
    cookie.load(header)
    assert SESSION_COOKIE in cookie, header
    return cookie


async def signed_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in with ``key``; the ``Cookie`` header that carries the session.

    Sent by hand: the cookie is ``Secure`` and the test client speaks plain HTTP, over
    which a cookie jar rightly keeps it to itself.
    """
    response = await client.post("/dashboard/sign-in", data={"key": key})
    assert response.status_code == 303, response.text
    return f"{SESSION_COOKIE}={session_cookie(response)[SESSION_COOKIE].value}"
