"""Choosing k: the silhouette rule, its tie-break, the elbow of the inertia curve, sampling."""

from __future__ import annotations

import numpy as np

from segmentation.manifest import SweepPoint
from training.selection import best_k_by_silhouette, knee_k, sample_rows


def _sweep(inertia: list[float], silhouette: list[float] | None = None) -> list[SweepPoint]:
    scores = silhouette or [0.3] * len(inertia)
    return [
        SweepPoint(k=k, inertia=i, silhouette=s, calinski_harabasz=100.0, davies_bouldin=1.0)
        for k, i, s in zip(range(2, 2 + len(inertia)), inertia, scores, strict=True)
    ]


def test_knee_k_finds_elbow_of_synthetic_curve() -> None:
    # Steep until k=4, then nearly flat.
    assert knee_k(_sweep([100.0, 60.0, 20.0, 18.0, 16.0, 14.0, 12.0])) == 4


def test_knee_k_ignores_units_of_inertia() -> None:
    curve = [100.0, 45.0, 30.0, 27.0, 25.0, 24.0]
    assert knee_k(_sweep(curve)) == knee_k(_sweep([value * 1e6 for value in curve])) == 3


def test_knee_k_is_none_without_elbow() -> None:
    assert knee_k(_sweep([100.0, 80.0, 60.0, 40.0, 20.0])) is None  # a straight line
    assert knee_k(_sweep([50.0, 50.0, 50.0])) is None  # flat
    assert knee_k(_sweep([100.0, 10.0])) is None  # too few points


def test_knee_k_on_bank_export_is_three(trained_manifest: dict[str, object]) -> None:
    metrics = trained_manifest["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["knee_k"] == 3


def test_best_k_by_silhouette_takes_highest() -> None:
    assert best_k_by_silhouette(_sweep([9.0, 5.0, 4.0, 3.0], [0.40, 0.52, 0.35, 0.51])) == 3


def test_best_k_by_silhouette_prefers_smaller_k_on_tie() -> None:
    points = _sweep([9.0, 5.0, 4.0, 3.0], [0.40, 0.45, 0.50, 0.50])
    assert best_k_by_silhouette(points) == 4
    assert best_k_by_silhouette(list(reversed(points))) == 4


def test_sample_rows_keeps_all_rows_in_order_when_few() -> None:
    np.testing.assert_array_equal(sample_rows(5, 10, seed=0), np.arange(5))


def test_sample_rows_is_seeded_sorted_and_without_repeats_when_many() -> None:
    rows = sample_rows(1000, 100, seed=3)
    assert len(np.unique(rows)) == 100
    assert np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_rows(1000, 100, seed=3))
    assert not np.array_equal(rows, sample_rows(1000, 100, seed=4))
