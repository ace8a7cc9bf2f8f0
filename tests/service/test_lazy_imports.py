"""A worker imports numba only for a batch of tens of thousands of customers, and Alembic
only to migrate a store from an older migration: neither after start-up on an empty store
and a 10,000-row batch (numba would cost it some 80 MB, Alembic 12)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from segmentation import scoring
from tests.fresh_interpreter import last_line_of
from tests.service.helpers import customer

LAZY = ("numba", "llvmlite", "alembic", "mako")

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


def test_a_worker_on_an_empty_store_never_loads_numba_or_alembic_for_a_10000_row_batch(
    models_dir: Path, tmp_path: Path
) -> None:
    rows = 10_000
    assert rows < scoring._COMPILED_ROWS
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    environment = {
        **os.environ,
        "MODELS_DIR": str(models_dir),
        "DATABASE_URL": database_url,
        "MAX_BATCH_SIZE": str(rows),
        "MODEL_POLL_SECONDS": "3600",
    }
    for name in ("API_KEYS", "MODEL_SIGNING_KEY", "PROMETHEUS_MULTIPROC_DIR", "MAX_BODY_BYTES"):
        environment.pop(name, None)
    outcome = last_line_of(WORKER, json.dumps([LAZY, customer(), rows]), env=environment)
    assert outcome == {"status": 200, "loaded": []}
