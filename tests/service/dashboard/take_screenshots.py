"""The README's screenshots of the dashboard, on the bank's real data.

    .venv/bin/python -m tests.service.dashboard.take_screenshots [--out docs]

Trains the bank's export (the active version) and a retrain with four segments (a
candidate), serves them with ``python -m service``, records 1,000 customers drawn from the
export through ``POST /segment/batch`` (the drift window's size), and saves the overview
at laptop (1366 px) and tablet (768 px) widths as ``dashboard-laptop.png`` and
``dashboard-tablet.png``. Each is a full-page PNG reduced to a palette of 128 colours
(the page has few), a fraction of the bytes of a true-colour one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pandas as pd
from PIL import Image

from segmentation.artifact import ASSIGNMENTS_FILE, point_latest
from tests.service.dashboard.browser import LAPTOP, TABLET, chromium
from tests.service.dashboard.traffic import batches, resampled, training_features
from tests.service.processes import ROOT, service_process, wait_for_log
from training.job import TrainingOptions, train

CUSTOMERS = 1_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="take_screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    out: Path = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dashboard-screenshots-") as folder:
        work = Path(folder)
        models = work / "models"
        active = train(TrainingOptions(models_dir=models))
        train(TrainingOptions(models_dir=models, k=4))
        point_latest(models, active.version)
        export = pd.read_csv(active.path / ASSIGNMENTS_FILE, dtype={"customer_key": str})
        customers = resampled(training_features(export), CUSTOMERS, seed=2026)
        environment = {"DRIFT_WINDOW": str(CUSTOMERS)}
        with service_process(models, work, 1, environment=environment) as (process, port, log):
            wait_for_log(process, log, "Application startup complete.", 1)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as api:
                for body in batches(customers, key_prefix="crm"):
                    api.post("/segment/batch", json=body).raise_for_status()
            time.sleep(1.5)  # the worker shares its drift window once a second
            with chromium() as browser:
                for name, viewport in (("laptop", LAPTOP), ("tablet", TABLET)):
                    page = browser.new_page(viewport=viewport)
                    page.goto(f"{base}/dashboard")
                    path = out / f"dashboard-{name}.png"
                    page.screenshot(path=path, full_page=True)
                    page.close()
                    _reduce(path)
                    print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


def _reduce(path: Path) -> None:
    """The PNG with a palette of 128 colours, without dithering (text stays crisp)."""
    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
    reduced.save(path, optimize=True)


if __name__ == "__main__":
    raise SystemExit(main())
