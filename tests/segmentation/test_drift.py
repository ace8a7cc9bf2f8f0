"""Population stability: the index, its bands, the training baseline and the report."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation import drift
from segmentation.features import FEATURES
from tests.offline_psi import offline_psi


@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_psi_equals_the_textbook_computation(shift: float) -> None:
    rng = np.random.default_rng(1)
    reference = rng.lognormal(10, 0.8, 5_000)
    population = rng.lognormal(10 + shift, 0.8, 3_000)
    assert drift.population_psi(reference, population) == pytest.approx(
        offline_psi(reference, population), rel=1e-12
    )


def test_counts_with_few_values_get_one_bin_per_value() -> None:
    reference = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5] * 50, dtype=float)
    assert drift.population_psi(reference, reference.copy()) == 0.0
    assert drift.population_psi(reference, reference * 2) > drift.ACT


@pytest.mark.parametrize(
    ("value", "band"), [(0.0, "ok"), (0.099, "ok"), (0.1, "watch"), (0.25, "watch"), (0.26, "act")]
)
def test_bands(value: float, band: str) -> None:
    assert drift.band(value) == band


def test_the_report_names_the_shifted_features_and_recommends_retraining() -> None:
    rng = np.random.default_rng(2)
    training = np.column_stack(
        [rng.lognormal(10, 0.8, 4_000), *(rng.integers(0, 8, 4_000) for _ in range(4))]
    ).astype(float)
    ids = ["a" if row[0] > np.median(training[:, 0]) else "b" for row in training]
    baseline = drift.training_baseline(training, ids)
    assert sum(baseline.segment_mix.values()) == pytest.approx(1.0)
    for feature in FEATURES:
        assert sum(baseline.features[feature].shares) == pytest.approx(1.0)

    alike = drift.drift_report(
        baseline, training[:2_000], ids[:2_000], np.zeros(2_000, bool), atypical_reasons={}
    )
    assert alike["retrain_recommended"] is False
    assert all(figure["band"] == "ok" for figure in alike["features"].values())

    shifted = training[:2_000].copy()
    shifted[:, 0] *= 2.0
    report = drift.drift_report(
        baseline, shifted, ids[:2_000], np.zeros(2_000, bool), atypical_reasons={}
    )
    assert report["features"][FEATURES[0]]["band"] == "act"
    assert report["retrain_recommended"] is True
    assert any(FEATURES[0] in reason for reason in report["reasons"])
    assert report["features"][FEATURES[0]]["psi"] == pytest.approx(
        offline_psi(training[:, 0], shifted[:, 0])
    )


def test_too_few_customers_say_so_instead_of_reporting_noise() -> None:
    training = np.ones((1_000, 5))
    baseline = drift.training_baseline(training, ["a"] * 1_000)
    flags = np.arange(10) < 3
    report = drift.drift_report(
        baseline, training[:10], ["a"] * 10, flags, atypical_reasons={"far": 3, "high": 1}
    )
    assert {figure["band"] for figure in report["features"].values()} == {"insufficient"}
    assert report["retrain_recommended"] is False
    assert "at least 500" in report["reasons"][0]
    # The atypical shares are counted, not estimated: they stand however few the customers.
    assert report["atypical_share"] == pytest.approx(0.3)
    assert report["atypical_by_reason"] == pytest.approx({"far": 0.3, "high": 0.1})
