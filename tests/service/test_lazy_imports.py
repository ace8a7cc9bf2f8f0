"""A worker imports numba only for a batch of tens of thousands of customers, Alembic only
to migrate a store from an older migration, psycopg only for a store on PostgreSQL and
redis only with ``REDIS_URL``: none of them after start-up on an empty SQLite store, a
10,000-row batch and a customer kept in the store (numba would cost it some 80 MB,
Alembic 12, psycopg and redis together 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from segmentation import scoring
from tests.fresh_interpreter import last_line_of
from tests.service.helpers import customer
from tests.service.redis_server import RedisServer
from tests.service.store.conftest import fresh_postgres_database

LAZY = ("numba", "llvmlite", "alembic", "mako")
DRIVERS = ("psycopg", "redis")

# A worker's life in a fresh interpreter (this test's own has them all loaded).
WORKER = """
import asyncio, json, sys
import httpx
from service.main import app

async def main(lazy, customer, rows):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            answer = await client.post("/segment/batch", json={"customers": [customer] * rows})
    loaded = [name for name in lazy if name in sys.modules]
    print(json.dumps({"status": answer.status_code, "loaded": loaded}))

asyncio.run(main(*json.loads(sys.argv[1])))
"""

# A worker that keeps one customer in its store and reads it back.
KEEPING_WORKER = """
import asyncio, json, sys
import httpx
from service.main import app

async def main(lazy, customer):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            answer = await client.post("/segment", json=customer)
            kept = await client.get(f"/customers/{customer['customer_key']}")
    loaded = [name for name in lazy if name in sys.modules]
    print(json.dumps({
        "recorded": answer.json()["recorded"],
        "history": len(kept.json()["history"]),
        "loaded": loaded,
    }))

asyncio.run(main(*json.loads(sys.argv[1])))
"""


def worker_environment(models_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment for a worker on ``database_url``, without the settings
    that other tests may leave set."""
    environment = {
        **os.environ,
        "MODELS_DIR": str(models_dir),
        "DATABASE_URL": database_url,
        "MODEL_POLL_SECONDS": "3600",
    }
    for name in (
        "API_KEYS",
        "MODEL_SIGNING_KEY",
        "PROMETHEUS_MULTIPROC_DIR",
        "MAX_BODY_BYTES",
        "REDIS_URL",
        "RATE_LIMIT_PER_MINUTE",
    ):
        environment.pop(name, None)
    return {**environment, **settings}


def test_a_worker_on_an_empty_store_never_loads_numba_or_alembic_for_a_10000_row_batch(
    models_dir: Path, tmp_path: Path
) -> None:
    rows = 10_000
    assert rows < scoring._COMPILED_ROWS
    environment = worker_environment(
        models_dir, f"sqlite:///{tmp_path / 'store.db'}", MAX_BATCH_SIZE=str(rows)
    )
    outcome = last_line_of(WORKER, json.dumps([LAZY, customer(), rows]), env=environment)
    assert outcome == {"status": 200, "loaded": []}


def test_a_worker_on_sqlite_without_redis_never_loads_psycopg_or_redis(
    models_dir: Path, tmp_path: Path
) -> None:
    # Rate limits on, counted in the process: the limiter's layer is on the path too.
    environment = worker_environment(
        models_dir, f"sqlite:///{tmp_path / 'store.db'}", RATE_LIMIT_PER_MINUTE="600"
    )
    keyed = customer(customer_key="C-1")
    outcome = last_line_of(KEEPING_WORKER, json.dumps([DRIVERS, keyed]), env=environment)
    assert outcome == {"recorded": True, "history": 1, "loaded": []}


def test_a_worker_on_postgresql_with_redis_loads_both_and_keeps_its_customer(
    models_dir: Path, session_redis: RedisServer
) -> None:
    with fresh_postgres_database() as database_url:
        environment = worker_environment(
            models_dir, database_url, REDIS_URL=session_redis.url, RATE_LIMIT_PER_MINUTE="600"
        )
        keyed = customer(customer_key="C-1")
        outcome = last_line_of(KEEPING_WORKER, json.dumps([DRIVERS, keyed]), env=environment)
    assert outcome == {"recorded": True, "history": 1, "loaded": list(DRIVERS)}


# The store's errors told apart before psycopg is loaded and after, in one interpreter.
ERRORS = """
import json, sqlite3, sys
from service.store.errors import driver_errors, is_refusal, unavailable

def caught(error):
    try:
        raise error
    except driver_errors():
        return True
    except Exception:
        return False

told = {
    "before": {
        "psycopg loaded": "psycopg" in sys.modules,
        "driver errors": [error.__name__ for error in driver_errors()],
        "integrity refused": is_refusal(sqlite3.IntegrityError("UNIQUE constraint failed")),
        "locked refused": is_refusal(sqlite3.OperationalError("database is locked")),
    }
}
import psycopg
from psycopg import errors
from service.store.deadlines import NoAnswer

lost = NoAnswer("the database did not answer within 5 s", outcome_unknown=True)
told["after"] = {
    "driver errors": [error.__name__ for error in driver_errors()],
    "caught": caught(errors.UniqueViolation("duplicate key")),
    "unique refused": is_refusal(errors.UniqueViolation("duplicate key")),
    "operational refused": is_refusal(psycopg.OperationalError("connection refused")),
    "integrity refused": is_refusal(sqlite3.IntegrityError("UNIQUE constraint failed")),
    "no answer": [unavailable(lost).unknown, unavailable(lost).refused],
}
print(json.dumps(told))
"""


def test_the_store_tells_psycopgs_errors_apart_once_psycopg_is_loaded() -> None:
    told = last_line_of(ERRORS)
    assert told["before"] == {
        "psycopg loaded": False,
        "driver errors": ["Error"],
        "integrity refused": True,
        "locked refused": False,
    }
    assert told["after"] == {
        "driver errors": ["Error", "Error"],
        "caught": True,
        "unique refused": True,
        "operational refused": False,
        "integrity refused": True,
        "no answer": [True, False],
    }
