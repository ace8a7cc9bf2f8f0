"""Smallest moves between segments: every suggested change lands where it says, keeps what
was fixed, stays whole and within the training range, and no whole-number change of smaller
effort exists; the prospects are the customers a full search would rank first."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.features import FEATURES
from segmentation.moves import Move, SegmentMoves, Unreachable
from segmentation.scoring import SegmentScorer
from training.job import TrainingResult
from training.loading import read_customer_file
from training.validation import validate_customers


@pytest.fixture(scope="module")
def bank_model(trained: TrainingResult) -> SegmentMoves:
    return SegmentMoves(SegmentScorer.for_version(trained.manifest))


@pytest.fixture(scope="module")
def bank_customers(bank_export: Path) -> tuple[list[str], np.ndarray]:
    """The bank's customers, one row per key (the export repeats five keys)."""
    table = validate_customers(read_customer_file(bank_export).frame, min_rows=4)  # type: ignore[arg-type]
    last_row_of = {str(key): row for row, key in enumerate(table.keys.tolist())}
    keys = sorted(last_row_of)
    return keys, table.features[[last_row_of[key] for key in keys]]


def check_move(moves: SegmentMoves, customer: np.ndarray, move: Move, fixed: set[int]) -> None:
    """What every move promises, checked against the scorer itself."""
    scorer = moves.scorer
    changed = np.array(move.values)
    assert int(scorer.score(changed[None, :]).labels[0]) == move.target
    for feature in range(len(FEATURES)):
        if feature in fixed or changed[feature] == customer[feature]:
            assert changed[feature] == customer[feature]
            continue
        assert changed[feature] == math.floor(changed[feature]) >= 0
        assert scorer.feature_min[feature] <= changed[feature] <= scorer.feature_max[feature]
    effort = math.sqrt((((changed - customer) / scorer.scale) ** 2).sum())
    assert move.effort == pytest.approx(effort, rel=1e-12, abs=1e-12)


def random_customers(moves: SegmentMoves, count: int, seed: int) -> np.ndarray:
    """Whole-number customers across (and a little beyond) the training ranges."""
    rng = np.random.default_rng(seed)
    low, high = moves.scorer.feature_min, moves.scorer.feature_max
    span = high - low
    drawn = rng.uniform(low - 0.1 * span, high + 0.1 * span, size=(count, len(FEATURES)))
    drawn[:, 0] = np.maximum(drawn[:, 0], 1.0)
    return np.maximum(np.round(drawn), 0.0)


def test_thousands_of_customers_land_in_every_target_with_whole_counts_in_range(
    bank_model: SegmentMoves,
) -> None:
    customers = random_customers(bank_model, 1_000, seed=7)
    rng = np.random.default_rng(8)
    reached = unreachable = 0
    for customer in customers:
        fixed = {int(feature) for feature in np.flatnonzero(rng.random(5) < 0.2)}
        for target in range(bank_model.scorer.n_segments):
            move = bank_model.smallest_move(customer, target, fixed)
            if isinstance(move, Unreachable):
                assert fixed, "with nothing fixed, every segment is reachable"
                unreachable += 1
                continue
            check_move(bank_model, customer, move, fixed)
            reached += 1
    assert reached > 2_500 and unreachable > 0


@settings(max_examples=200, deadline=None)
@given(
    customer=st.tuples(
        st.floats(1.0, 250_000.0),
        *(st.integers(0, 20) for _ in range(4)),
    ),
    target=st.integers(0, 2),
    fixed=st.sets(st.integers(0, 4), max_size=3),
)
def test_any_customer_moves_exactly_where_the_answer_says(
    bank_model: SegmentMoves, customer: tuple[float, ...], target: int, fixed: set[int]
) -> None:
    values = np.array(customer, dtype=float)
    move = bank_model.smallest_move(values, target, fixed)
    if isinstance(move, Move):
        check_move(bank_model, values, move, fixed)
    else:
        assert fixed and move.target == target


def test_a_customer_already_in_the_target_needs_no_change(
    bank_model: SegmentMoves, bank_customers: tuple[list[str], np.ndarray]
) -> None:
    _, features = bank_customers
    labels = bank_model.scorer.score(features[:50]).labels
    for customer, label in zip(features[:50], labels, strict=True):
        move = bank_model.smallest_move(customer, int(label))
        assert isinstance(move, Move) and move.effort == 0.0
        assert move.values == tuple(customer.tolist())


def test_with_every_feature_fixed_another_segment_is_unreachable_and_says_why(
    bank_model: SegmentMoves, bank_customers: tuple[list[str], np.ndarray]
) -> None:
    customer = bank_customers[1][0]
    label = int(bank_model.scorer.score(customer[None, :]).labels[0])
    other = (label + 1) % bank_model.scorer.n_segments
    move = bank_model.smallest_move(customer, other, fixed=set(range(5)))
    assert isinstance(move, Unreachable)
    assert "average credit limit" in move.reason and "calls to the bank" in move.reason


def small_model(seed: int) -> SegmentMoves:
    """A model on small whole-number ranges, so that the whole grid can be searched."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 5))
    return SegmentMoves(
        SegmentScorer(
            mean=rng.uniform(2, 6, 5),
            scale=rng.uniform(0.5, 3, 5),
            centroids=rng.normal(0, 1.2, (k, 5)),
            feature_min=[1, 0, 0, 0, 0],
            feature_max=[30, 4, 5, 3, 4],
            distance_thresholds=[3.0] * k,
        )
    )


def exhaustive_least_effort(
    moves: SegmentMoves, customer: np.ndarray, target: int, fixed: set[int]
) -> float:
    """The least effort over every whole-number customer in the training ranges (and the
    customer's own values), found by scoring them all."""
    scorer = moves.scorer
    axes = [
        [customer[feature]]
        if feature in fixed
        else sorted(
            {
                customer[feature],
                *range(int(scorer.feature_min[feature]), int(scorer.feature_max[feature]) + 1),
            }
        )
        for feature in range(5)
    ]
    grid = np.array(list(itertools.product(*axes)), dtype=float)
    lands = scorer.score(grid).labels == target
    if not lands.any():
        return math.inf
    efforts = np.sqrt((((grid[lands] - customer) / scorer.scale) ** 2).sum(axis=1))
    return float(efforts.min())


@pytest.mark.parametrize("seed", range(12))
def test_no_whole_number_change_of_smaller_effort_reaches_the_target(seed: int) -> None:
    moves = small_model(seed)
    rng = np.random.default_rng(100 + seed)
    for _ in range(6):
        # Inside and outside the training ranges; credit limits whole or not.
        limit = rng.integers(1, 36) + (rng.random() if rng.random() < 0.5 else 0.0)
        customer = np.array([limit, *rng.integers(0, 7, 4)], dtype=float)
        fixed = {int(feature) for feature in np.flatnonzero(rng.random(5) < 0.25)}
        for target in range(moves.scorer.n_segments):
            least = exhaustive_least_effort(moves, customer, target, fixed)
            move = moves.smallest_move(customer, target, fixed)
            if math.isinf(least):
                assert isinstance(move, Unreachable)
                continue
            assert isinstance(move, Move)
            check_move(moves, customer, move, fixed)
            assert move.effort == pytest.approx(least, rel=1e-12, abs=1e-12)


def test_lower_bounds_never_exceed_the_effort_found(bank_model: SegmentMoves) -> None:
    customers = random_customers(bank_model, 300, seed=3)
    for target in range(bank_model.scorer.n_segments):
        bounds = bank_model.effort_lower_bounds(customers, target)
        for customer, bound in zip(customers, bounds, strict=True):
            move = bank_model.smallest_move(customer, target)
            assert isinstance(move, Move)
            assert bound <= move.effort + 1e-9


def full_ranking(
    moves: SegmentMoves, keys: list[str], features: np.ndarray, target: int
) -> list[tuple[float, str, tuple[float, ...]]]:
    ranked = []
    for key, customer in zip(keys, features, strict=True):
        move = moves.smallest_move(customer, target)
        assert isinstance(move, Move)
        ranked.append((move.effort, key, move.values))
    return sorted(ranked)


def test_prospects_are_the_first_of_a_full_ranking_and_pages_continue_it(
    bank_model: SegmentMoves, bank_customers: tuple[list[str], np.ndarray]
) -> None:
    keys, features = bank_customers
    labels = bank_model.scorer.score(features).labels
    for target in range(bank_model.scorer.n_segments):
        others = labels != target
        other_keys = [key for key, other in zip(keys, others, strict=True) if other]
        expected = full_ranking(bank_model, other_keys, features[others], target)
        pages: list[tuple[float, str, tuple[float, ...]]] = []
        after = None
        for _ in range(3):
            page = bank_model.nearest_prospects(
                other_keys, features[others], target, limit=7, after=after
            )
            pages += [(move.effort, key, move.values) for key, move in page]
            after = (page[-1][1].effort, page[-1][0])
        assert pages == expected[:21]
        capped = bank_model.nearest_prospects(
            other_keys, features[others], target, limit=1_000, max_effort=expected[30][0]
        )
        assert [key for key, _ in capped] == [
            key for effort, key, _ in expected if effort <= expected[30][0]
        ]


def two_segments(feature_max: float = 20.0) -> SegmentMoves:
    """Two centres ten apart along the credit limit, in units where the border between
    them is the whole number 5 (a tie there goes to the lower label, segment 0)."""
    return SegmentMoves(
        SegmentScorer(
            mean=[0.0] * 5,
            scale=[1.0] * 5,
            centroids=[[0.0] * 5, [10.0, 0.0, 0.0, 0.0, 0.0]],
            feature_min=[0.0] * 5,
            feature_max=[feature_max, 4, 4, 4, 4],
            distance_thresholds=[3.0, 3.0],
        )
    )


@pytest.mark.parametrize(
    ("limit", "target", "reached", "effort"),
    [
        (7.0, 0, 5.0, 2.0),  # the border itself: the tie goes to segment 0
        (5.0, 1, 6.0, 1.0),  # on the border (in segment 0): one whole unit across
        (5.5, 0, 5.0, 0.5),
        (4.5, 1, 6.0, 1.5),
    ],
)
def test_borders_and_ties_are_decided_as_the_scorer_decides(
    limit: float, target: int, reached: float, effort: float
) -> None:
    moves = two_segments()
    customer = np.array([limit, 0.0, 0.0, 0.0, 0.0])
    move = moves.smallest_move(customer, target, fixed={1, 2, 3, 4})
    assert isinstance(move, Move)
    assert move.values == (reached, 0.0, 0.0, 0.0, 0.0) and move.effort == effort


def test_a_move_never_leaves_the_training_range_to_cross_a_border() -> None:
    moves = two_segments(feature_max=5.0)  # the border is the highest limit seen: a tie
    move = moves.smallest_move(np.array([2.0, 0, 0, 0, 0]), 1, fixed={1, 2, 3, 4})
    assert isinstance(move, Unreachable)


def test_a_model_with_very_wide_count_ranges_is_searched_near_the_customer(
    bank_model: SegmentMoves,
) -> None:
    scorer = bank_model.scorer
    wide = SegmentMoves(
        SegmentScorer(
            mean=scorer.mean,
            scale=scorer.scale,
            centroids=scorer.centroids,
            feature_min=scorer.feature_min,
            feature_max=[*scorer.feature_max[:3], 1e11, scorer.feature_max[4]],
            distance_thresholds=scorer.distance_thresholds,
        ),
        max_candidates=2_000,
    )
    narrow = SegmentMoves(scorer, max_candidates=2_000)
    full = SegmentMoves(scorer)
    for customer in random_customers(bank_model, 40, seed=5):
        for target in range(scorer.n_segments):
            windowed, exact = (
                narrow.smallest_move(customer, target),
                full.smallest_move(customer, target),
            )
            assert isinstance(exact, Move)
            if isinstance(windowed, Move):
                check_move(narrow, customer, windowed, set())
                assert windowed.effort >= exact.effort
            if exact.effort < 0.5:  # well within the window: the same answer
                assert windowed == exact
            huge = wide.smallest_move(customer, target)
            if isinstance(huge, Move):
                check_move(wide, customer, huge, set())
