"""Every round trip to PostgreSQL ends within its deadline, on a real TCP path that hangs."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.store.customer_store import CustomerStore
from service.store.deadlines import BoundedConnection, NoAnswer, relaxed
from service.store.errors import StoreUnavailable, unavailable
from tests.service.store.tcp_relay import TcpRelay


@pytest.fixture
def relay(postgres_url: str) -> Iterator[tuple[TcpRelay, str]]:
    """A freezable path to the test database, and the URL that goes through it."""
    database = make_url(postgres_url)
    with TcpRelay((database.host or "127.0.0.1", database.port or 5432)) as path:
        url = database.set(drivername="postgresql", port=path.port)
        yield path, url.render_as_string(hide_password=False)


def bounded(url: str, seconds: float, *, autocommit: bool) -> BoundedConnection:
    connection = BoundedConnection.connect(url, autocommit=autocommit, connect_timeout=3)
    connection.round_trip_seconds = seconds
    return connection


def test_a_statement_in_a_transaction_fails_in_time_and_its_fate_is_known(
    relay: tuple[TcpRelay, str],
) -> None:
    path, url = relay
    connection = bounded(url, 0.5, autocommit=False)
    connection.execute("SELECT 1")
    path.freeze()
    with pytest.raises(NoAnswer) as raised:
        connection.execute("SELECT 1")
    assert not raised.value.outcome_unknown
    assert connection.closed
    assert not unavailable(raised.value).unknown


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "commit"])
def test_a_commit_without_an_answer_is_reported_as_unknown(
    relay: tuple[TcpRelay, str], autocommit: bool
) -> None:
    path, url = relay
    connection = bounded(url, 0.5, autocommit=autocommit)
    connection.execute("CREATE TEMP TABLE t (n int)")
    path.freeze()
    with pytest.raises(NoAnswer) as raised:
        if autocommit:
            connection.execute("SELECT 1")
        else:
            connection.commit()
    assert raised.value.outcome_unknown
    assert unavailable(raised.value).unknown


def test_a_relaxed_deadline_lets_a_slow_round_trip_finish(relay: tuple[TcpRelay, str]) -> None:
    _, url = relay
    connection = bounded(url, 0.2, autocommit=True)
    with pytest.raises(NoAnswer):
        connection.execute("SELECT pg_sleep(0.5)")
    connection = bounded(url, 0.2, autocommit=True)
    with relaxed(5):
        connection.execute("SELECT pg_sleep(0.5)")
    with pytest.raises(NoAnswer):  # and the usual deadline holds again after
        connection.execute("SELECT pg_sleep(0.5)")


@pytest.mark.parametrize(
    ("autocommit", "unknown"), [(True, True), (False, False)], ids=["autocommit", "transaction"]
)
def test_a_connection_lost_while_waiting_leaves_the_fate_unknown_only_for_a_commit(
    relay: tuple[TcpRelay, str], autocommit: bool, unknown: bool
) -> None:
    path, url = relay
    connection = bounded(url, 30, autocommit=autocommit)
    connection.execute("SELECT 1")
    path.freeze()
    threading.Timer(0.3, path.close).start()  # the path breaks while the statement waits
    with pytest.raises(psycopg.OperationalError) as raised:
        connection.execute("SELECT 1")
    assert unavailable(raised.value).unknown is unknown
    assert isinstance(raised.value, NoAnswer) is unknown


def test_the_store_answers_unavailable_within_its_deadlines_when_the_path_hangs(
    relay: tuple[TcpRelay, str],
) -> None:
    path, url = relay
    store = CustomerStore(url, connect_timeout_seconds=1, round_trip_seconds=0.5)
    store.migrate()
    assert store.latest("nobody") is None
    path.freeze()
    try:
        with pytest.raises(StoreUnavailable):
            store.latest("nobody")  # the pooled connection's ping, then a new connection
    finally:
        path.thaw()
        store.dispose()


def test_an_error_from_the_server_is_not_mistaken_for_no_answer(postgres_url: str) -> None:
    url = make_url(postgres_url).set(drivername="postgresql")
    connection = bounded(url.render_as_string(hide_password=False), 5, autocommit=True)
    with pytest.raises(psycopg.errors.DivisionByZero):
        connection.execute("SELECT 1 / 0")
    assert not connection.closed
