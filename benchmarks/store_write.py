"""Write 100,000 assignments through the batch path into PostgreSQL and SQLite; print rows/s.

    .venv/bin/python -m benchmarks.store_write [--customers 100000] [--rounds 5]
        [--postgres-url URL]

Each customer has a key, so every assignment is recorded (history row + latest upsert).
The batches go through the real HTTP API in process (httpx over ASGI): parsing,
validation, scoring, recording and rendering are all counted. The store-only figure
times `CustomerStore.record` alone on the same features. Every figure has two passes over
the same customers: new to the store, then known (each latest row is replaced). The machine
is shared and noisy: ``--rounds`` repeats everything on fresh databases and prints the
median with the lowest and highest figure.
Target (issue: customer store): at least 20,000 rows/s into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg
from sqlalchemy.engine import make_url

from segmentation.features import FEATURES
from service.api.app import create_app
from service.config import Settings
from service.store.assignments import Assignments
from service.store.customer_store import CustomerStore
from training.job import TrainingOptions, train
from training.synthetic import generate_customers

BATCH = 10_000
RESULTS = Path(__file__).parent / "results"


def customers(count: int) -> list[dict[str, Any]]:
    frame = generate_customers(count, seed=11)
    frame.columns = ["sl_no", "customer_key", *FEATURES]
    return [
        {**{str(name): value for name, value in item.items()}, "customer_key": f"bench-{key}"}
        for item, key in zip(
            frame[list(FEATURES)].to_dict("records"), frame["customer_key"], strict=True
        )
    ]


PASSES = ("new customers", "known customers")
"""Each pass writes every customer once: first as new rows, then as changes to them."""


async def through_api(settings: Settings, items: list[dict[str, Any]]) -> list[float]:
    """Seconds per pass through the batch API."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            # Bodies are encoded before the clock starts and answers checked after it
            # stops: the client's own JSON work is not the service's.
            bodies = [
                orjson.dumps({"customers": items[start : start + BATCH]})
                for start in range(0, len(items), BATCH)
            ]
            return [await _post_all(client, bodies) for _ in PASSES]


async def _post_all(client: httpx.AsyncClient, bodies: list[bytes]) -> float:
    answers = []
    started = time.perf_counter()
    for body in bodies:
        response = await client.post(
            "/segment/batch", content=body, headers={"content-type": "application/json"}
        )
        answers.append(response.content)
    elapsed = time.perf_counter() - started
    for answer in answers:
        results = orjson.loads(answer)["results"]
        if not all(result.get("recorded") for result in results):
            raise SystemExit("some assignments were not recorded: is the store up?")
    return elapsed


def store_only(url: str, items: list[dict[str, Any]]) -> list[float]:
    """Seconds per pass of `CustomerStore.record` alone, on keys the API pass did not use."""
    store = CustomerStore(url)
    blocks = [
        Assignments(
            customer_keys=[f"store-{item['customer_key']}" for item in chunk],
            segment_ids=["branch-loyal"] * len(chunk),
            features=np.array([[item[f] for f in FEATURES] for item in chunk], dtype=float),
            confidence=[0.5] * len(chunk),
            atypical=[False] * len(chunk),
            model_version="bench",
            source="batch",
            assigned_at=datetime.now(UTC),
        )
        for chunk in (items[start : start + BATCH] for start in range(0, len(items), BATCH))
    ]
    store.migrate()
    seconds = []
    for _ in PASSES:
        started = time.perf_counter()
        for block in blocks:
            store.record(block)
        seconds.append(time.perf_counter() - started)
    store.dispose()
    return seconds


Figures = dict[str, dict[str, dict[str, int]]]
"""rows/s by database, then pass, then measure (``api`` or ``store``)."""


def one_round(items: list[dict[str, Any]], models_dir: Path, work: Path, admin_url: str) -> Figures:
    """Both databases, fresh and empty, both passes."""
    database = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    postgres = make_url(admin_url).set(database=database)
    targets = {
        "postgresql": postgres.render_as_string(hide_password=False),
        "sqlite": f"sqlite:///{work}/{database}.db",
    }
    figures: Figures = {}
    try:
        for name, url in targets.items():
            settings = Settings(
                models_dir=models_dir,
                database_url=url,
                max_batch_size=BATCH,
                model_poll_seconds=3600,
                log_level="WARNING",
            )
            api_passes = asyncio.run(through_api(settings, items))
            store_passes = store_only(url, items)
            figures[name] = {
                label: {
                    "api": round(len(items) / api_seconds),
                    "store": round(len(items) / store_seconds),
                }
                for label, api_seconds, store_seconds in zip(
                    PASSES, api_passes, store_passes, strict=True
                )
            }
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat on fresh databases; report the median"
    )
    arguments = parser.parse_args()
    items = customers(arguments.customers)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train(TrainingOptions(models_dir=work / "models", n_bootstrap=2))
        rounds = [
            one_round(items, work / "models", work, arguments.postgres_url)
            for _ in range(max(arguments.rounds, 1))
        ]
    print(f"{len(items):,} assignments per pass, in batches of {BATCH:,}; ", end="")
    print(f"median of {len(rounds)} rounds (lowest-highest)" if len(rounds) > 1 else "one round")
    print(f"{'database':<12}{'pass':<17}{'batch API rows/s':>26}{'store only rows/s':>26}")
    median: Figures = {}
    for name, passes in rounds[0].items():
        for label, measures in passes.items():
            cells = []
            for measure in measures:
                values = sorted(figures[name][label][measure] for figures in rounds)
                middle = round(statistics.median(values))
                median.setdefault(name, {}).setdefault(label, {})[measure] = middle
                spread = f" ({values[0]:,}-{values[-1]:,})" if len(values) > 1 else ""
                cells.append(f"{middle:,}{spread}")
            print(f"{name:<12}{label:<17}{cells[0]:>26}{cells[1]:>26}")
    print("target: >= 20,000 rows/s into PostgreSQL through the batch path")
    RESULTS.mkdir(exist_ok=True)
    results = {"customers": len(items), "batch": BATCH, "median": median, "rounds": rounds}
    (RESULTS / "store_write.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
