"""Tests for the synthetic customer generator, checked against the bank's real export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import skew
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.synthetic import generate_customers

REAL_EXPORT = (
    Path(__file__).resolve().parents[2]
    / "training"
    / "sample_data"
    / "credit_card_customer_data.csv"
)
FEATURES = [
    "Avg_Credit_Limit",
    "Total_Credit_Cards",
    "Total_visits_bank",
    "Total_visits_online",
    "Total_calls_made",
]
COUNTS = FEATURES[1:]
N_LARGE = 20_000


def _groups(frame: pd.DataFrame) -> pd.DataFrame:
    """Fit StandardScaler + KMeans(k=3); centroids in original units plus shares, by limit."""
    pipeline = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=10, random_state=0))
    pipeline.fit(frame[FEATURES])
    scaler, kmeans = pipeline[0], pipeline[-1]
    centroids = pd.DataFrame(scaler.inverse_transform(kmeans.cluster_centers_), columns=FEATURES)
    centroids["share"] = np.bincount(kmeans.labels_, minlength=3) / len(frame)
    return centroids.sort_values("Avg_Credit_Limit", ignore_index=True)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return pd.read_csv(REAL_EXPORT, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return generate_customers(N_LARGE, seed=7)


def test_columns_match_bank_export_header_for_any_size(real: pd.DataFrame) -> None:
    for n in (1, 660, 5_000):
        frame = generate_customers(n, seed=3)
        assert list(frame.columns) == list(real.columns)
        assert (frame.dtypes == real.dtypes).all()
        assert (frame.dtypes == np.int64).all()
        assert len(frame) == n
        assert frame["Sl_No"].tolist() == list(range(1, n + 1))


def test_frame_is_identical_for_same_seed() -> None:
    pd.testing.assert_frame_equal(
        generate_customers(3_000, seed=11), generate_customers(3_000, seed=11)
    )


def test_frame_differs_for_different_seeds() -> None:
    first = generate_customers(3_000, seed=11)
    second = generate_customers(3_000, seed=12)
    assert not first["Customer Key"].equals(second["Customer Key"])
    assert not first[FEATURES].equals(second[FEATURES])


def test_repeated_keys_match_export_count_for_export_size(real: pd.DataFrame) -> None:
    frame = generate_customers(len(real), seed=5)
    assert frame["Customer Key"].duplicated().sum() == real["Customer Key"].duplicated().sum() == 5


def test_repeated_keys_have_export_rate_and_different_features(synthetic: pd.DataFrame) -> None:
    keys = synthetic["Customer Key"]
    repeated = synthetic[keys.duplicated(keep=False)]
    assert keys.duplicated().sum() == round(N_LARGE * 5 / 660)
    assert repeated["Customer Key"].value_counts().eq(2).all()
    distinct_records = repeated.groupby("Customer Key")[FEATURES].nunique().max(axis=1)
    assert (distinct_records == 2).all()


def test_copied_features_appear_under_different_keys(synthetic: pd.DataFrame) -> None:
    copied = synthetic[FEATURES].duplicated()
    assert copied.mean() >= 11 / 660
    same_key_and_features = synthetic[["Customer Key", *FEATURES]].duplicated()
    assert not same_key_and_features.any()


def test_copied_features_at_least_export_count_for_export_size(real: pd.DataFrame) -> None:
    # Planted copies guarantee 11 at this size; chance coincidences add more.
    frame = generate_customers(len(real), seed=5)
    assert frame[FEATURES].duplicated().sum() >= real[FEATURES].duplicated().sum() == 11


def test_keys_are_unique_integers_from_wide_range_for_large_frame() -> None:
    n = 100_000
    keys = generate_customers(n, seed=2)["Customer Key"]
    assert keys.min() >= 10_000
    assert keys.max() < 10_000 + 20 * n
    assert keys.nunique() == n - round(n * 5 / 660)


def test_keys_look_like_export_keys_for_export_size(real: pd.DataFrame) -> None:
    keys = generate_customers(len(real), seed=2)["Customer Key"]
    assert keys.between(10_000, 99_999).all()
    assert real["Customer Key"].between(10_000, 99_999).all()


def test_values_stay_within_export_ranges(synthetic: pd.DataFrame, real: pd.DataFrame) -> None:
    limits = synthetic["Avg_Credit_Limit"]
    assert (limits >= 3_000).all()
    assert (limits <= real["Avg_Credit_Limit"].max()).all()
    assert (limits % 1_000 == 0).all()
    assert (real["Avg_Credit_Limit"] % 1_000 == 0).all()
    for column in COUNTS:
        assert (synthetic[column] >= 0).all(), column
        assert synthetic[column].between(real[column].min(), real[column].max()).all(), column
        assert synthetic[column].nunique() == real[column].nunique(), column


def test_credit_limit_is_right_skewed(synthetic: pd.DataFrame) -> None:
    limits = synthetic["Avg_Credit_Limit"]
    assert limits.mean() > limits.median()
    assert skew(limits.to_numpy()) > 1.0


def test_kmeans_finds_real_groups_for_20000_customers(
    synthetic: pd.DataFrame, real: pd.DataFrame
) -> None:
    found = _groups(synthetic)
    expected = _groups(real)
    assert np.allclose(found["share"], expected["share"], atol=0.03), found["share"]
    limit_ratio = found["Avg_Credit_Limit"] / expected["Avg_Credit_Limit"]
    assert np.allclose(limit_ratio, 1.0, atol=0.15), limit_ratio
    assert np.allclose(found[COUNTS], expected[COUNTS], atol=1.0), found[COUNTS]


def test_silhouette_picks_three_clusters_for_5000_sample(synthetic: pd.DataFrame) -> None:
    # As in the real export, splitting off only the small online-heavy group would score
    # about 0.57, above k=3's 0.52; k=3 wins because K-means at k=2 prefers, on inertia, to
    # split off the call-heavy group instead (0.42). A few unlucky samples tip that choice.
    sample = synthetic.sample(5_000, random_state=0)
    scaled = StandardScaler().fit_transform(sample[FEATURES])
    scores = {
        k: silhouette_score(
            scaled, KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(scaled)
        )
        for k in range(2, 7)
    }
    assert max(scores, key=lambda k: scores[k]) == 3, scores


@pytest.mark.parametrize("n_customers", [0, -1, -660])
def test_generate_customers_raises_for_fewer_than_one(n_customers: int) -> None:
    with pytest.raises(ValueError, match=rf"^n_customers={n_customers} should be >= 1$"):
        generate_customers(n_customers)
