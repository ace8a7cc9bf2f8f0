"""How long the dashboard takes to render on the server, and what it weighs, for the
bank's model with a full drift window. A measurement to run by hand, not a test:

    .venv/bin/python -m tests.service.dashboard.render_timing [--customers 10000] [--runs 50]

Trains the bank's export and a four-segment candidate into a temporary folder, serves
them in process (the app with its middleware, over ASGI, as the tests do), records
``--customers`` customers drawn from the export (keyed, so the store holds them too, and
as many as the default DRIFT_WINDOW, so the drift report scores a full window), then
times each page: the first request (templates compiled then) and the median and 95th
percentile of ``--runs`` more. The times are the server's, from request to last byte,
measured once the store has written the customers (it does so after answering).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pandas as pd

from segmentation.artifact import ASSIGNMENTS_FILE, point_latest
from tests.service.conftest import serve, settings_for
from tests.service.dashboard.traffic import batches, resampled, training_features
from training.job import TrainingOptions, train

PAGES = ("/dashboard", "/dashboard/live", "/dashboard/models", "/dashboard/models/live")
SETTLE_SECONDS = 5.0


async def measure(models: Path, export: Path, customers: int, runs: int) -> None:
    known = pd.read_csv(export, dtype={"customer_key": str})
    drawn = resampled(training_features(known), customers, seed=7)
    settings = settings_for(models, drift_window=max(customers, 500), log_level="WARNING")
    async with serve(settings) as client:
        for body in batches(drawn, key_prefix="crm", size=1_000):
            (await client.post("/segment/batch", json=body)).raise_for_status()
        # The store records keyed answers after answering, on a thread of its own: the
        # timings start once it has, and once the app has answered its first request.
        await asyncio.sleep(SETTLE_SECONDS)
        window = (await client.get("/drift")).json()["window"]["customers"]
        print(f"drift window: {window:,} customers; store: {customers:,} + the export's")
        for path in PAGES:
            first, _ = await timed(client, path)
            times = [(await timed(client, path))[0] for _ in range(runs)]
            p95 = statistics.quantiles(times, n=20)[-1]
            print(
                f"{path:24} first {first:6.1f} ms   median {statistics.median(times):6.1f} ms"
                f"   p95 {p95:6.1f} ms"
            )
        await weigh(client)


async def timed(client: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response


async def weigh(client: httpx.AsyncClient) -> None:
    """The overview page and every file it loads, in bytes (uncompressed)."""
    page = await client.get("/dashboard")
    assets = re.findall(r"""(?:src|href)="(/dashboard/static/[^"]+)\"""", page.text)
    sizes = {path: len((await client.get(path)).content) for path in assets}
    total = len(page.content) + sum(sizes.values())
    listed = ", ".join(f"{path.rsplit('/', 1)[1]} {size:,}" for path, size in sizes.items())
    print(f"page weight: {total:,} bytes (HTML {len(page.content):,}; {listed})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="render_timing", description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dashboard-timing-") as folder:
        models = Path(folder) / "models"
        active = train(TrainingOptions(models_dir=models, n_bootstrap=2))
        train(TrainingOptions(models_dir=models, k=4, n_bootstrap=2))
        point_latest(models, active.version)
        export = active.path / ASSIGNMENTS_FILE
        asyncio.run(measure(models, export, arguments.customers, arguments.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
