"""After a switch of model, the store is rescored: sizes, exports and look-ups follow it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from segmentation.artifact import read_latest
from segmentation.features import FEATURES
from tests.service.api.test_metrics import value
from tests.service.conftest import serve_with_keys
from tests.service.helpers import ADMIN
from training.job import TrainingOptions, train

NEW_CUSTOMERS = 300


def new_customers() -> list[dict[str, Any]]:
    """Customers the bank gained since training, with keys, spread over the feature space."""
    rng = np.random.default_rng(11)
    return [
        {
            "customer_key": f"new-{i:04d}",
            "avg_credit_limit": int(rng.integers(3_000, 200_000)),
            **{feature: int(rng.integers(0, 11)) for feature in FEATURES[1:]},
        }
        for i in range(NEW_CUSTOMERS)
    ]


async def switch_to(client: httpx.AsyncClient, version: str, reason: str) -> None:
    """Promote ``version`` and wait until the store is rescored with it."""
    response = await client.post(
        "/admin/promote", json={"version": version, "reason": reason}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 60
    while True:
        progress = (await client.get("/ready")).json()["rescoring"]
        if progress and progress["version"] == version and progress["state"] == "finished":
            assert progress["remaining"] == 0 and progress["rescored"] > 0
            return
        assert time.monotonic() < deadline, progress
        await asyncio.sleep(0.05)


def rescored_total(metrics: str) -> float:
    total = value(metrics, "segmentation_store_rescored_customers_total")
    assert total is not None
    return total


async def store_view(client: httpx.AsyncClient, keys: list[str]) -> dict[str, Any]:
    """What the API says of the known customers: catalog, live sizes, members, look-ups."""
    catalog = (await client.get("/segments")).json()
    members: dict[str, list[str]] = {}
    for segment in catalog["segments"]:
        page = await client.get(f"/segments/{segment['segment_id']}/customers?limit=10000")
        assert page.status_code == 200, page.text
        members[segment["segment_id"]] = [m["customer_key"] for m in page.json()["customers"]]
    lookups = [(await client.get(f"/customers/{key}")).json() for key in keys]
    return {
        "version": catalog["model_version"],
        "names": {segment["segment_id"]: segment["name"] for segment in catalog["segments"]},
        "live_sizes": {s["segment_id"]: s["live_size"] for s in catalog["segments"]},
        "members": members,
        "lookups": lookups,
    }


def assert_follows_the_active_model(view: dict[str, Any], keys: list[str]) -> None:
    ids = set(view["names"])
    assert sum(view["live_sizes"].values()) == len(keys)
    assert {key: len(listed) for key, listed in view["members"].items()} == view["live_sizes"]
    assert sorted(k for listed in view["members"].values() for k in listed) == sorted(keys)
    for answer in view["lookups"]:
        assert answer["segment_id"] in ids, answer
        assert answer["model_version"] == view["version"] and answer["current"] is True
        assert answer["segment_name"] == view["names"][answer["segment_id"]]
        assert answer["customer_key"] in view["members"][answer["segment_id"]]


async def test_a_retrain_with_another_k_then_a_rollback_keeps_ids_and_the_store_true(
    models_dir: Path, training_assignments: pd.DataFrame
) -> None:
    first = read_latest(models_dir)
    second = train(TrainingOptions(models_dir=models_dir, k=4, n_bootstrap=2)).version
    customers = new_customers()
    # The export repeats a few keys (one customer each: the last row wins).
    keys = sorted({*training_assignments["customer_key"], *(c["customer_key"] for c in customers)})
    async with serve_with_keys(models_dir) as client:
        recorded = await client.post("/segment/batch", json={"customers": customers})
        assert recorded.status_code == 200, recorded.text
        # A training customer seen since: the newer features outlive the next snapshot.
        changed = {**customers[1], "customer_key": keys[0]}
        assert (await client.post("/segment", json=changed)).status_code == 200
        before = await store_view(client, keys)
        rescored_before = rescored_total((await client.get("/metrics")).text)
        await switch_to(client, second, "k=4 separates the online-only customers")
        with_four = await store_view(client, keys)
        await switch_to(client, first, "rollback: campaigns are planned on three segments")
        after = await store_view(client, keys)
        history = (await client.get(f"/customers/{customers[0]['customer_key']}")).json()
        seen_since = [
            answer for answer in with_four["lookups"] if answer["customer_key"] == keys[0]
        ]
        metrics = (await client.get("/metrics")).text
    # Each switch rescored whoever its own training snapshot did not cover: the new
    # customers and the one seen since training, then, on the way back, everyone (the
    # first snapshot was imported before).
    assert rescored_total(metrics) - rescored_before == NEW_CUSTOMERS + 1 + len(keys)
    assert value(metrics, "segmentation_store_rescoring_remaining_customers") == 0
    assert len(with_four["names"]) == 4 and len(before["names"]) != 4
    for view in (before, with_four, after):
        assert_follows_the_active_model(view, keys)
    # Every id means one persona, whichever version uses it.
    for segment_id in set(before["names"]) & set(with_four["names"]):
        assert before["names"][segment_id] == with_four["names"][segment_id]
    assert after["names"] == before["names"]
    # Back on the first version, every customer is where that version put them before.
    assert after["members"] == before["members"]
    assert [entry["source"] for entry in history["history"]] == ["rescore", "rescore", "batch"]
    assert [entry["model_version"] for entry in history["history"]] == [first, second, first]
    assert seen_since[0]["source"] == "rescore"
    assert seen_since[0]["features"] == {f: changed[f] for f in FEATURES}
