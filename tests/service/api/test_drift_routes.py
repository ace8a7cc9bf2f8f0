"""GET /drift: the live population against training, over every worker's customers."""

from __future__ import annotations

import asyncio
import math
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from segmentation.features import FEATURES
from tests.offline_psi import offline_psi
from tests.service.api.test_metrics import value
from tests.service.conftest import serve, settings_for
from tests.service.processes import service_process, wait_for_log


def as_customers(features: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            feature: (float(v) if feature == FEATURES[0] else int(v))
            for feature, v in zip(FEATURES, row, strict=True)
        }
        for row in features
    ]


async def test_a_fresh_service_says_it_has_too_few_customers_yet(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        await client.post("/segment", json=as_customers(np.full((1, 5), 3.0))[0])
        await client.post("/segment/batch", json={"customers": as_customers(np.full((4, 5), 2.0))})
        report = (await client.get("/drift")).json()
    assert report["window"]["customers"] == 5
    assert report["window"]["size"] == 10_000
    assert report["retrain_recommended"] is False
    assert {figure["band"] for figure in report["features"].values()} == {"insufficient"}
    assert "at least 500" in report["reasons"][0]


async def test_the_drift_figures_are_prometheus_gauges_too(models_dir: Path) -> None:
    atypical = as_customers(np.array([[500_000.0, 3, 1, 40, 2]] * 2 + [[30_000.0, 4, 2, 2, 3]] * 3))
    async with serve(settings_for(models_dir)) as client:
        await client.post("/segment/batch", json={"customers": atypical})
        report = (await client.get("/drift")).json()
        exposed = (await client.get("/metrics")).text
    assert value(exposed, "segmentation_drift_window_customers") == 5
    assert value(exposed, "segmentation_drift_atypical_share", reason="all") == pytest.approx(
        report["atypical_share"]
    )
    assert report["atypical_share"] >= 0.4
    for reason, share in report["atypical_by_reason"].items():
        assert value(exposed, "segmentation_drift_atypical_share", reason=reason) == share
    assert report["atypical_by_reason"]["avg_credit_limit_above_training_range"] == 0.4
    # Too few customers for a PSI: NaN, not a figure that would look current.
    assert math.isnan(value(exposed, "segmentation_drift_psi", feature="avg_credit_limit"))
    assert value(exposed, "segmentation_drift_retrain_recommended") == 0


@pytest.mark.slow
def test_drift_over_two_workers_flags_the_shifted_features_and_only_them(
    models_dir: Path, tmp_path: Path, training_assignments: pd.DataFrame
) -> None:
    training = training_assignments[list(FEATURES)].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(7)
    alike = training[rng.integers(0, len(training), 5_000)]
    shifted = training[rng.integers(0, len(training), 5_000)].copy()
    shifted[:, 0] = np.round(shifted[:, 0] * 1.5)
    shifted[:, 3] = shifted[:, 3] * 2
    state = tmp_path / "state"
    environment = {"DRIFT_WINDOW": "5000", "STATE_DIR": str(state)}
    with service_process(models_dir, tmp_path, 2, environment=environment) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", 2)

        async def send(population: np.ndarray) -> dict[str, Any]:
            # A connection per request: kept-alive ones could all land on one worker.
            limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                batches = [population[start : start + 250] for start in range(0, 5_000, 250)]
                answers = await asyncio.gather(
                    *(
                        client.post("/segment/batch", json={"customers": as_customers(b)})
                        for b in batches
                    )
                )
                assert all(answer.status_code == 200 for answer in answers)
                await asyncio.sleep(2.5)  # each worker shares its window once a second
                return (await client.get("/drift")).json()

        before = asyncio.run(send(alike))
        after = asyncio.run(send(shifted))
        # Both workers scored some of the customers, and each report covered both.
        shared = [np.load(path) for path in sorted(state.glob("drift-*.piece"))]
        assert len(shared) == 2 and all(len(part["times"]) > 0 for part in shared)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not list(state.glob("drift-*.piece"))  # stopping workers take their customers out
    assert before["window"]["customers"] == 5_000
    assert before["retrain_recommended"] is False
    for column, feature in enumerate(FEATURES):
        figure = before["features"][feature]
        assert figure["band"] == "ok", (feature, figure)
        assert figure["psi"] == pytest.approx(offline_psi(training[:, column], alike[:, column]))
    assert after["window"]["customers"] == 5_000
    assert after["retrain_recommended"] is True
    for column, feature in enumerate(FEATURES):
        figure = after["features"][feature]
        assert figure["psi"] == pytest.approx(offline_psi(training[:, column], shifted[:, column]))
        if feature in ("avg_credit_limit", "total_visits_online"):
            assert figure["psi"] > 0.25 and figure["band"] == "act"
            assert any(reason.startswith(feature) for reason in after["reasons"])
        else:
            assert figure["psi"] < 0.1
    assert not any(reason.startswith("total_calls_made") for reason in after["reasons"])
    # Atypical by reason, counted offline: the shifted features leave the training range.
    by_reason = after["atypical_by_reason"]
    for column in (0, 3):
        above = np.mean(shifted[:, column] > training[:, column].max())
        assert above > 0.01
        assert by_reason[f"{FEATURES[column]}_above_training_range"] == pytest.approx(above)
    assert by_reason["total_calls_made_above_training_range"] == 0
    assert after["atypical_share"] >= max(by_reason.values())
