"""The scorer equals the trained pipeline's predict, on real, random and tied customers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.artifact import verify_version
from segmentation.scoring import FAR_FROM_CENTROID, SegmentScorer
from training.job import TrainingResult
from training.loading import read_customer_file
from training.validation import validate_customers


@pytest.fixture(scope="module")
def pipeline(trained: TrainingResult) -> object:
    return verify_version(trained.path.parent, trained.version).load_pipeline()


@pytest.fixture(scope="module")
def scorer(pipeline: object) -> SegmentScorer:
    return SegmentScorer(
        pipeline=pipeline,
        feature_min=[0.0] * 5,
        feature_max=[200_000.0, 10, 5, 15, 10],
        distance_thresholds=[3.0, 3.0, 3.0],
    )


customers = arrays(
    np.float64,
    st.integers(1, 64).map(lambda n: (n, 5)),
    elements=st.floats(0, 250_000, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(features=customers)
def test_scorer_labels_equal_pipeline_predict_for_random_customers(
    scorer: SegmentScorer, pipeline: object, features: np.ndarray
) -> None:
    features[:, 1:] = np.round(features[:, 1:] / 10_000)
    expected = pipeline.predict(features)  # type: ignore[attr-defined]
    assert scorer.score(features).labels.tolist() == expected.tolist()


def test_scorer_labels_equal_pipeline_on_bank_export(
    scorer: SegmentScorer, pipeline: object, bank_export: object
) -> None:
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    expected = pipeline.predict(table.features)  # type: ignore[attr-defined]
    assert np.array_equal(scorer.score(table.features).labels, expected)


def test_scorer_settles_exact_ties_like_pipeline(scorer: SegmentScorer, pipeline: object) -> None:
    scaler = pipeline[0]  # type: ignore[index]
    centres = pipeline[-1].cluster_centers_  # type: ignore[index]
    ties = []
    for first in range(len(centres)):
        for second in range(first + 1, len(centres)):
            midpoint = (centres[first] + centres[second]) / 2
            ties.append(scaler.inverse_transform(midpoint[None, :])[0])
    features = np.array(ties)
    scored = scorer.score(features)
    assert scored.labels.tolist() == pipeline.predict(features).tolist()  # type: ignore[attr-defined]
    assert np.all(scored.confidence < 1e-6)


def test_scorer_confidence_is_high_at_a_centre(scorer: SegmentScorer, pipeline: object) -> None:
    centres = pipeline[0].inverse_transform(pipeline[-1].cluster_centers_)  # type: ignore[index]
    scored = scorer.score(centres)
    assert scored.labels.tolist() == list(range(len(centres)))
    assert np.allclose(scored.confidence, 1.0)
    assert np.allclose(scored.distances[np.arange(3), scored.labels], 0.0, atol=1e-6)


def test_scorer_distances_are_euclidean_in_standard_units(
    scorer: SegmentScorer, pipeline: object
) -> None:
    features = np.array([[30_000.0, 4, 2, 3, 5], [150_000.0, 9, 1, 12, 1]])
    standardised = pipeline[0].transform(features)  # type: ignore[index]
    centres = pipeline[-1].cluster_centers_  # type: ignore[index]
    expected = np.linalg.norm(standardised[:, None, :] - centres[None], axis=2)
    assert np.allclose(scorer.score(features).distances, expected, atol=1e-9)


def scorer_with(pipeline: object, threshold: float) -> SegmentScorer:
    return SegmentScorer(
        pipeline=pipeline,
        feature_min=[3000.0, 1, 0, 0, 0],
        feature_max=[200_000.0, 10, 5, 15, 10],
        distance_thresholds=[threshold] * 3,
    )


def test_scorer_flags_values_outside_training_range(pipeline: object) -> None:
    features = np.array([[250_000.0, 4, 2, 3, 5], [30_000.0, 4, 2, 3, 5], [30_000.0, 0, 2, 3, 11]])
    scored = scorer_with(pipeline, threshold=100.0).score(features)
    assert scored.atypical.tolist() == [True, False, True]
    assert scored.atypical_reasons(0) == ["avg_credit_limit_above_training_range"]
    assert scored.atypical_reasons(1) == []
    assert scored.atypical_reasons(2) == [
        "total_credit_cards_below_training_range",
        "total_calls_made_above_training_range",
    ]


def test_scorer_flags_customer_far_from_its_centre(pipeline: object) -> None:
    near_centre = pipeline[0].inverse_transform(pipeline[-1].cluster_centers_[:1])  # type: ignore[index]
    far = np.array([[199_000.0, 1, 5, 0, 10]])
    scorer = scorer_with(pipeline, threshold=1.0)
    assert scorer.score(far).atypical_reasons(0) == [FAR_FROM_CENTROID]
    assert not scorer.score(near_centre).far_from_centroid.any()


def test_scorer_refuses_threshold_count_that_does_not_match_segments(pipeline: object) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        SegmentScorer(
            pipeline=pipeline, feature_min=[0] * 5, feature_max=[1] * 5, distance_thresholds=[1.0]
        )


def _assert_row_equals_batch(scorer: SegmentScorer, values: list[float]) -> None:
    """score_row gives bit for bit what score gives, or defers a near tie to it."""
    batch = scorer.score(np.array([values]))
    row = scorer.score_row(values)
    if row is None:
        # Deferred only when the nearest two are too close to call.
        nearest = np.sort(batch.distances[0])[:2]
        assert nearest[1] - nearest[0] < 1e-3
        return
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
    scorer: SegmentScorer, pipeline: object, bank_export: object
) -> None:
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    for values in table.features.tolist():
        _assert_row_equals_batch(scorer, values)
    scaler, centres = pipeline[0], pipeline[-1].cluster_centers_  # type: ignore[index]
    midpoint = scaler.inverse_transform(((centres[0] + centres[1]) / 2)[None, :])[0]
    assert scorer.score_row(midpoint.tolist()) is None
