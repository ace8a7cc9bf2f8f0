"""GET /segments, /segments/{id}, /customers/{key}, /model, /health and /ready."""

from __future__ import annotations

import httpx
import pandas as pd

from segmentation.features import FEATURES
from training.job import TrainingResult


async def test_read_segments_lists_catalog_with_profiles(
    client: httpx.AsyncClient, trained: TrainingResult
) -> None:
    response = await client.get("/segments")
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == trained.version
    segments = body["segments"]
    assert [s["size"] for s in segments] == [386, 224, 50]
    assert abs(sum(s["share"] for s in segments) - 1.0) < 1e-9
    for segment in segments:
        assert set(segment["profile"]) == set(FEATURES)
        for summary in segment["profile"].values():
            assert summary["p25"] <= summary["median"] <= summary["p75"]
        assert segment["recommended_actions"]["service"]
        assert segment["description"]
        assert segment["distinguishing_features"]
    assert {s["segment_id"] for s in segments} == {
        "branch-loyal",
        "support-seeking",
        "digital-affluent",
    }


async def test_read_segment_by_id_and_unknown_id(client: httpx.AsyncClient) -> None:
    found = await client.get("/segments/digital-affluent")
    assert found.status_code == 200
    assert found.json()["size"] == 50
    assert found.json()["profile"]["avg_credit_limit"]["mean"] > 100_000
    missing = await client.get("/segments/high-rollers")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "segment_not_found"
    assert "high-rollers" in missing.json()["error"]["message"]


async def test_read_customer_uses_last_record_of_duplicated_key(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    repeated = training_assignments[training_assignments["customer_key"].duplicated(keep=False)]
    assert repeated["customer_key"].nunique() == 5
    for key, records in repeated.groupby("customer_key"):
        last = records.iloc[-1]
        response = await client.get(f"/customers/{key}")
        assert response.status_code == 200
        body = response.json()
        assert body["customer_key"] == key
        assert body["segment_id"] == last["segment_id"]
        assert body["source"] == "training"
        assert body["features"] == {f: float(last[f]) for f in FEATURES}
        assert [entry["source"] for entry in body["history"]] == ["training", "training"]


async def test_read_customer_unknown_key_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/customers/00000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


async def test_read_model_summarises_manifest(
    client: httpx.AsyncClient, trained: TrainingResult
) -> None:
    body = (await client.get("/model")).json()
    assert body["model_version"] == trained.version
    assert body["k"] == 3
    assert body["n_rows"] == 660
    assert body["features"] == list(FEATURES)
    assert body["data_sha256"] == trained.manifest.data_sha256
    assert body["signed"] is False


async def test_health_and_ready_with_model(
    client: httpx.AsyncClient, trained: TrainingResult
) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model_version"] == trained.version
