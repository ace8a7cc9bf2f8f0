"""The scorer, from plain numbers, equals the trained pipeline's predict on real and random
customers; near ties go to the truly nearer centre, exact ties to the lower label."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.artifact import load_pipeline
from segmentation.scoring import FAR_FROM_CENTROID, SegmentScorer
from training.job import TrainingResult
from training.loading import read_customer_file
from training.validation import validate_customers


@pytest.fixture(scope="module")
def pipeline(trained: TrainingResult) -> Any:
    return load_pipeline(trained.path.parent, trained.version)


def scorer_of(
    pipeline: Any,
    *,
    feature_min: list[float],
    feature_max: list[float],
    distance_thresholds: list[float],
) -> SegmentScorer:
    """A scorer with the pipeline's numbers (the manifest holds the same)."""
    return SegmentScorer(
        mean=pipeline[0].mean_,
        scale=pipeline[0].scale_,
        centroids=pipeline[-1].cluster_centers_,
        feature_min=feature_min,
        feature_max=feature_max,
        distance_thresholds=distance_thresholds,
    )


@pytest.fixture(scope="module")
def scorer(pipeline: Any) -> SegmentScorer:
    return scorer_of(
        pipeline,
        feature_min=[0.0] * 5,
        feature_max=[200_000.0, 10, 5, 15, 10],
        distance_thresholds=[3.0, 3.0, 3.0],
    )


def test_the_scorer_of_a_version_is_built_from_its_manifest_alone(
    trained: TrainingResult, scorer: SegmentScorer
) -> None:
    from_manifest = SegmentScorer.for_version(trained.manifest)
    assert np.array_equal(from_manifest.mean, scorer.mean)
    assert np.array_equal(from_manifest.scale, scorer.scale)
    assert np.array_equal(from_manifest.centroids, scorer.centroids)


customers = arrays(
    np.float64,
    st.integers(1, 64).map(lambda n: (n, 5)),
    elements=st.floats(0, 250_000, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(features=customers)
def test_scorer_labels_equal_pipeline_predict_for_random_customers(
    scorer: SegmentScorer, pipeline: Any, features: np.ndarray
) -> None:
    features[:, 1:] = np.round(features[:, 1:] / 10_000)
    expected = pipeline.predict(features)
    assert scorer.score(features).labels.tolist() == expected.tolist()


def test_scorer_labels_equal_pipeline_on_bank_export(
    scorer: SegmentScorer, pipeline: Any, bank_export: object
) -> None:
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    expected = pipeline.predict(table.features)
    assert np.array_equal(scorer.score(table.features).labels, expected)


def symmetric_scorer(order: list[int]) -> SegmentScorer:
    """Three centres, two of them mirror images across x0 = 0 (labels in ``order``)."""
    centres = [[1.5, 0.0, 0.0, 0.0, 0.0], [-1.5, 0.0, 0.0, 0.0, 0.0], [0.0, 9.0, 0.0, 0.0, 0.0]]
    return SegmentScorer(
        mean=[0.0] * 5,
        scale=[1.0] * 5,
        centroids=[centres[position] for position in order],
        feature_min=[-10.0] * 5,
        feature_max=[10.0] * 5,
        distance_thresholds=[5.0] * 3,
    )


@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2], [2, 1, 0], [2, 0, 1]])
def test_an_exact_tie_goes_to_the_lower_label(order: list[int]) -> None:
    scorer = symmetric_scorer(order)
    mirrored = sorted([order.index(0), order.index(1)])  # the labels of the two mirror images
    on_the_mirror = [[0.0, 0.5, 1.0, -2.0, 0.25], [0.0, -1.0, 0.0, 0.0, 3.0]]
    scored = scorer.score(np.array(on_the_mirror))
    assert scored.labels.tolist() == [mirrored[0]] * 2
    assert scored.runner_up_labels.tolist() == [mirrored[1]] * 2
    assert scored.confidence.tolist() == [0.0, 0.0]
    assert [scorer.score_row(values).label for values in on_the_mirror] == [mirrored[0]] * 2


def exact_squared_distances(scorer: SegmentScorer, values: list[float]) -> list[Fraction]:
    standardised = [
        (Fraction(value) - Fraction(mean)) / Fraction(scale)
        for value, mean, scale in zip(values, scorer.mean, scorer.scale, strict=True)
    ]
    return [
        sum(
            ((z - Fraction(c)) ** 2 for z, c in zip(standardised, centre, strict=True)), Fraction(0)
        )
        for centre in scorer.centroids.tolist()
    ]


@settings(max_examples=300, deadline=None)
@given(
    pair=st.sampled_from([(0, 1), (0, 2), (1, 2)]),
    offsets=st.lists(st.floats(-2, 2), min_size=5, max_size=5),
    nudge=st.floats(-1e-6, 1e-6),
)
def test_near_ties_go_to_the_truly_nearer_centre(
    scorer: SegmentScorer,
    pair: tuple[int, int],
    offsets: list[float],
    nudge: float,
) -> None:
    """Customers on (or a hair off) the boundary between two centres, in original units."""
    first, second = (scorer.centroids[label] for label in pair)
    direction = second - first
    share = np.dot(offsets, direction) / np.dot(direction, direction)
    across = np.array(offsets) - share * direction  # along the boundary
    standardised = (first + second) / 2 + nudge * direction + across
    values = (standardised * scorer.scale + scorer.mean).tolist()
    scored = scorer.score(np.array([values]))
    exact = exact_squared_distances(scorer, values)
    nearest = min(range(len(exact)), key=lambda label: (exact[label], label))
    ordered = sorted(exact)
    gap = ordered[1] - ordered[0]
    if gap > Fraction(1, 10**9) * (1 + ordered[0]):
        assert scored.labels[0] == nearest
    else:  # closer than double precision can tell: one of the two nearest
        assert exact[scored.labels[0]] - ordered[0] <= gap
    _assert_row_equals_batch(scorer, values)


def test_scorer_confidence_is_high_at_a_centre(scorer: SegmentScorer, pipeline: Any) -> None:
    centres = pipeline[0].inverse_transform(pipeline[-1].cluster_centers_)
    scored = scorer.score(centres)
    assert scored.labels.tolist() == list(range(len(centres)))
    assert np.allclose(scored.confidence, 1.0)
    assert np.allclose(scored.distances[np.arange(3), scored.labels], 0.0, atol=1e-6)


def test_scorer_distances_are_euclidean_in_standard_units(
    scorer: SegmentScorer, pipeline: Any
) -> None:
    features = np.array([[30_000.0, 4, 2, 3, 5], [150_000.0, 9, 1, 12, 1]])
    standardised = pipeline[0].transform(features)
    centres = pipeline[-1].cluster_centers_
    expected = np.linalg.norm(standardised[:, None, :] - centres[None], axis=2)
    assert np.allclose(scorer.score(features).distances, expected, atol=1e-9)


def scorer_with(pipeline: Any, threshold: float) -> SegmentScorer:
    return scorer_of(
        pipeline,
        feature_min=[3000.0, 1, 0, 0, 0],
        feature_max=[200_000.0, 10, 5, 15, 10],
        distance_thresholds=[threshold] * 3,
    )


def test_scorer_flags_values_outside_training_range(pipeline: Any) -> None:
    features = np.array([[250_000.0, 4, 2, 3, 5], [30_000.0, 4, 2, 3, 5], [30_000.0, 0, 2, 3, 11]])
    scored = scorer_with(pipeline, threshold=100.0).score(features)
    assert scored.atypical.tolist() == [True, False, True]
    assert scored.atypical_reasons(0) == ["avg_credit_limit_above_training_range"]
    assert scored.atypical_reasons(1) == []
    assert scored.atypical_reasons(2) == [
        "total_credit_cards_below_training_range",
        "total_calls_made_above_training_range",
    ]


def test_scorer_flags_customer_far_from_its_centre(pipeline: Any) -> None:
    near_centre = pipeline[0].inverse_transform(pipeline[-1].cluster_centers_[:1])
    far = np.array([[199_000.0, 1, 5, 0, 10]])
    scorer = scorer_with(pipeline, threshold=1.0)
    assert scorer.score(far).atypical_reasons(0) == [FAR_FROM_CENTROID]
    assert not scorer.score(near_centre).far_from_centroid.any()


def test_scorer_refuses_threshold_count_that_does_not_match_segments(pipeline: Any) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        scorer_of(pipeline, feature_min=[0] * 5, feature_max=[1] * 5, distance_thresholds=[1.0])


def test_scorer_refuses_numbers_that_do_not_fit_the_features() -> None:
    with pytest.raises(ValueError, match="mean has 4 values"):
        SegmentScorer(
            mean=[0.0] * 4,
            scale=[1.0] * 5,
            centroids=[[0.0] * 5, [1.0] * 5],
            feature_min=[0.0] * 5,
            feature_max=[1.0] * 5,
            distance_thresholds=[1.0, 1.0],
        )


def _assert_row_equals_batch(scorer: SegmentScorer, values: list[float]) -> None:
    """score_row gives bit for bit what score gives."""
    batch = scorer.score(np.array([values]))
    row = scorer.score_row(values)
    assert (row.label, row.runner_up_label) == (batch.labels[0], batch.runner_up_labels[0])
    assert row.distances == batch.distances[0].tolist()  # exact: the same arithmetic
    assert row.confidence == batch.confidence[0]
    assert row.atypical_reasons == batch.atypical_reasons(0)


@settings(max_examples=500, deadline=None)
@given(
    credit=st.floats(0, 300_000, allow_nan=False),
    counts=st.lists(st.integers(0, 20), min_size=4, max_size=4),
)
def test_one_row_in_python_equals_the_kernel(
    scorer: SegmentScorer, credit: float, counts: list[int]
) -> None:
    _assert_row_equals_batch(scorer, [credit, *map(float, counts)])


def test_one_row_in_python_equals_the_kernel_on_the_bank_export_and_at_ties(
    scorer: SegmentScorer, pipeline: Any, bank_export: object
) -> None:
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    for values in table.features.tolist():
        _assert_row_equals_batch(scorer, values)
    scaler, centres = pipeline[0], pipeline[-1].cluster_centers_
    for first, second in [(0, 1), (0, 2), (1, 2)]:
        midpoint = scaler.inverse_transform(((centres[first] + centres[second]) / 2)[None, :])
        _assert_row_equals_batch(scorer, midpoint[0].tolist())
