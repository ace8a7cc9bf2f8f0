"""The three ways a batch is scored (plain Python for a few customers, numpy, the compiled
kernel for large batches) give the same bits, on random customers, at ties and on both
sides of each size at which the scorer changes from one to the next."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation import scoring
from segmentation.kernels import compiled_kernel, score_in_numpy
from segmentation.scoring import ScoredBatch, SegmentScorer
from tests.fresh_interpreter import last_line_of

FIELDS = (
    "labels",
    "runner_up_labels",
    "distances",
    "confidence",
    "below_range",
    "above_range",
    "far_from_centroid",
)


def bank_like_scorer(n_segments: int = 3) -> SegmentScorer:
    """Centres and scales of the order of the bank's model (credit limits in tens of
    thousands, counts in units)."""
    centres = np.random.default_rng(n_segments).normal(0.0, 1.5, (n_segments, 5))
    return SegmentScorer(
        mean=[34_000.0, 4.7, 2.4, 2.6, 3.6],
        scale=[37_000.0, 2.2, 1.6, 2.9, 2.9],
        centroids=centres.tolist(),
        feature_min=[3_000.0, 1.0, 0.0, 0.0, 0.0],
        feature_max=[200_000.0, 10.0, 5.0, 15.0, 10.0],
        distance_thresholds=[2.5] * n_segments,
    )


def mirrored_scorer() -> SegmentScorer:
    """Two centres mirror images across x0 = 0, a third far off: exact ties on the mirror."""
    return SegmentScorer(
        mean=[0.0] * 5,
        scale=[1.0] * 5,
        centroids=[[1.5, 0, 0, 0, 0], [-1.5, 0, 0, 0, 0], [0, 9.0, 0, 0, 0]],
        feature_min=[-10.0] * 5,
        feature_max=[10.0] * 5,
        distance_thresholds=[5.0] * 3,
    )


def scored_by(kernel: object, scorer: SegmentScorer, features: np.ndarray) -> ScoredBatch:
    scored = ScoredBatch.empty(len(features), scorer.n_segments)
    out = tuple(getattr(scored, field) for field in FIELDS)
    kernel(np.ascontiguousarray(features), scorer._kernel_model, out)  # type: ignore[operator]
    return scored


def assert_same_bits(first: ScoredBatch, second: ScoredBatch) -> None:
    for field in FIELDS:
        ours, theirs = getattr(first, field), getattr(second, field)
        # Bytes, not values: a NaN (infinity over infinity) must be the same NaN.
        assert (ours.shape, ours.tobytes()) == (theirs.shape, theirs.tobytes()), field


finite = st.floats(-1e200, 1e200, allow_nan=False, allow_infinity=False)
bank_values = st.one_of(st.integers(0, 300_000).map(float), st.floats(-50, 50), finite)


@settings(max_examples=300, deadline=None)
@given(
    features=arrays(np.float64, st.integers(1, 40).map(lambda n: (n, 5)), elements=bank_values),
    n_segments=st.integers(2, 6),
)
def test_numpy_and_the_compiled_kernel_give_the_same_bits_for_any_finite_customers(
    features: np.ndarray, n_segments: int
) -> None:
    """Huge values included: distances that overflow to infinity rank as the loop ranks them."""
    scorer = bank_like_scorer(n_segments)
    assert_same_bits(
        scored_by(score_in_numpy, scorer, features), scored_by(compiled_kernel(), scorer, features)
    )


@settings(max_examples=200, deadline=None)
@given(
    rest=arrays(np.float64, st.integers(1, 20).map(lambda n: (n, 4)), elements=st.floats(-20, 20))
)
def test_numpy_and_the_compiled_kernel_agree_on_exact_ties(rest: np.ndarray) -> None:
    scorer = mirrored_scorer()
    on_the_mirror = np.hstack([np.zeros((len(rest), 1)), rest])
    numpy_scored = scored_by(score_in_numpy, scorer, on_the_mirror)
    assert_same_bits(numpy_scored, scored_by(compiled_kernel(), scorer, on_the_mirror))
    # Equally near 0 and 1: 1 is never the nearest (2, far off, may be).
    assert 1 not in numpy_scored.labels.tolist()
    tied = numpy_scored.labels == 0
    assert numpy_scored.runner_up_labels[tied].tolist() == [1] * int(tied.sum())


def bank_like_customers(rows: int) -> np.ndarray:
    generator = np.random.default_rng(rows)
    credit = generator.integers(0, 250_000, rows).astype(np.float64)
    counts = generator.integers(0, 16, (rows, 4)).astype(np.float64)
    return np.column_stack([credit, counts])


@pytest.mark.parametrize(
    "rows",
    [
        0,
        1,
        scoring._NUMPY_ROWS - 1,
        scoring._NUMPY_ROWS,
        scoring._COMPILED_ROWS - 1,
        scoring._COMPILED_ROWS,
    ],
)
def test_score_gives_score_rows_bits_on_both_sides_of_each_threshold(rows: int) -> None:
    """``score_row`` (plain Python, the live path) is the reference every size must meet."""
    scorer = bank_like_scorer()
    features = bank_like_customers(rows)
    scored = scorer.score(features)
    assert scored.distances.shape == (rows, scorer.n_segments)
    for row, values in enumerate(features.tolist()):
        alone = scorer.score_row(values)
        assert (alone.label, alone.runner_up_label) == (
            scored.labels[row],
            scored.runner_up_labels[row],
        )
        assert alone.distances == scored.distances[row].tolist()
        assert alone.confidence == scored.confidence[row]
        assert alone.atypical_reasons == scored.atypical_reasons(row)


# In a fresh interpreter: this one has numba loaded by the tests above.
FIRST_LARGE_BATCH = """
import json, sys
import numpy as np
from segmentation import scoring
from tests.segmentation.test_kernels import bank_like_customers, bank_like_scorer

scorer = bank_like_scorer()
scorer.score(bank_like_customers(scoring._COMPILED_ROWS - 1))
before = "numba" in sys.modules
scorer.score(bank_like_customers(scoring._COMPILED_ROWS))
print(json.dumps([before, "numba" in sys.modules]))
"""


def test_numba_is_imported_by_the_first_batch_large_enough_for_it() -> None:
    assert last_line_of(FIRST_LARGE_BATCH) == [False, True]
