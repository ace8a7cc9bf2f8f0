"""A worker serves from the manifest's numbers: after start-up, scoring, a comparison and a
reload, none of scikit-learn, SciPy, pandas, matplotlib or joblib has been imported; nor
pyarrow, which only Arrow and Parquet batches load."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.fresh_interpreter import last_line_of
from tests.service.helpers import ADMIN_KEY, customer

HEAVY = ("sklearn", "scipy", "pandas", "matplotlib", "joblib", "pyarrow")

# A worker's life in a fresh interpreter (this test's own has them all loaded).
WORKER = """
import asyncio, json, sys
import httpx
from service.main import app

async def main(other, heavy, admin_key, customer):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            statuses = [
                (await client.post("/segment", json=customer)).status_code,
                (await client.post("/segment/batch", json={"customers": [customer] * 50}))
                .status_code,
                (await client.get(f"/models/{other}/comparison")).status_code,
                (await client.post(
                    "/admin/reload", json={"version": other}, headers={"X-API-Key": admin_key}
                )).status_code,
                (await client.post("/segment", json=customer)).status_code,
            ]
    loaded = [name for name in heavy if name in sys.modules]
    print(json.dumps({"statuses": statuses, "loaded": loaded}))

asyncio.run(main(*json.loads(sys.argv[1])))
"""


def test_a_worker_never_loads_scikit_learn_scipy_pandas_or_matplotlib(
    versions: tuple[Path, str, str], tmp_path: Path
) -> None:
    models, _, other = versions
    environment = {
        **os.environ,
        "MODELS_DIR": str(models),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "ADMIN_API_KEY": ADMIN_KEY,
        "MODEL_POLL_SECONDS": "3600",
    }
    for name in ("API_KEYS", "MODEL_SIGNING_KEY", "PROMETHEUS_MULTIPROC_DIR"):
        environment.pop(name, None)
    arguments = json.dumps([other, HEAVY, ADMIN_KEY, customer()])
    outcome = last_line_of(WORKER, arguments, env=environment)
    assert outcome["statuses"] == [200, 200, 200, 200, 200]
    assert outcome["loaded"] == []
