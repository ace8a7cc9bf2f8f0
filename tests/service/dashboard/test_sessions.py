"""Session cookies: signed, expiring, tied to the configured keys."""

from __future__ import annotations

import pytest

from service.dashboard.sessions import SESSION_SECONDS, DashboardKeys

CLIENTS = {"crm": "crm-key", "web": "web-key"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_is_good_until_it_expires_and_not_a_second_longer() -> None:
    clock = Clock(1_000_000.0)
    keys = DashboardKeys(CLIENTS, "admin-key", clock=clock)
    cookie, session = keys.issue("crm")
    assert session.expires == 1_000_000 + SESSION_SECONDS
    assert keys.check(cookie) == session
    clock.now += SESSION_SECONDS - 1
    assert keys.check(cookie) == session
    clock.now += 1
    assert keys.check(cookie) is None


def test_the_secret_depends_on_every_key_and_on_nothing_else() -> None:
    cookie, _ = DashboardKeys(CLIENTS, "admin-key").issue("web")
    assert DashboardKeys(dict(reversed(CLIENTS.items())), "admin-key").check(cookie) is not None
    assert DashboardKeys({**CLIENTS, "web": "new-key"}, "admin-key").check(cookie) is None
    assert DashboardKeys(CLIENTS, "another-admin-key").check(cookie) is None
    assert DashboardKeys({"web": "web-key"}, "admin-key").check(cookie) is None


@pytest.mark.parametrize(
    "cookie",
    ["", ".", "a.b.c", "a.1.", "Y3Jt.²³.AAAA", "Y3Jt.9999999999.é", "x" * 5000, "a.b.c.d"],
)
def test_a_malformed_cookie_is_no_session(cookie: str) -> None:
    assert DashboardKeys(CLIENTS, None).check(cookie) is None


def test_keys_are_matched_to_their_client() -> None:
    keys = DashboardKeys(CLIENTS, "admin-key")
    assert [keys.client_of(key) for key in ("crm-key", "web-key", "admin-key", "nope")] == [
        "crm",
        "web",
        "admin",
        None,
    ]


def test_without_client_keys_no_session_is_needed_and_none_is_given() -> None:
    keys = DashboardKeys({}, "admin-key")
    assert not keys.required
    assert keys.client_of("admin-key") is None
