"""The smallest change that moves a customer into another segment, and the customers nearest
to entering one.

The geometry. K-means puts a customer in the segment whose centre is nearest in standardised
units, ``z = (x - mean) / scale``. So the region of segment ``t`` is the set of points nearer
``c_t`` than any other centre ``c_j``, and for each ``j``::

    |z - c_t|^2 < |z - c_j|^2   <=>   2 z . (c_j - c_t) < |c_j|^2 - |c_t|^2

a half-space bounded by the plane halfway between the two centres. A segment's region is the
intersection of its ``k - 1`` half-spaces: a convex cell. The effort of a change is its
length in standardised units, ``|z' - z|``, so that a branch visit and a thousand of credit
limit weigh what each varies among the bank's customers.

Whole numbers. A changed count must be a whole, non-negative number within the range seen in
training (a changed credit limit too: whole units of currency, within the training range),
so projecting onto the cell is not the answer. The counts take few values (the bank's
training ranges give 10 x 6 x 16 x 11 = 10,560 combinations of the four), so every
combination is tried. For each, the credit limits that reach the target form an interval
(the cell cut along that axis), and the best limit in it is the one nearest the customer's.
The scorer then confirms every candidate, so "lands in the target" means exactly what
scoring says, ties included; the smallest effort among them is the exact minimum over the
whole-number grid. A feature that does not change keeps its value, whatever it is.

numpy only: the service's workers never import SciPy or scikit-learn.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURE_LABELS, FEATURES
from segmentation.scoring import SegmentScorer

FloatArray = npt.NDArray[np.float64]

CREDIT_LIMIT = 0
"""The one feature that is not a count (its position in ``FEATURES``)."""
MAX_CANDIDATES = 250_000
"""Combinations of counts tried for one customer at most. Beyond it (a model trained on very
wide ranges), the counts are searched in the largest window around the customer's values
that fits, and the answer is the smallest change within that window."""


@dataclass(frozen=True, slots=True)
class Move:
    """The smallest change that reaches ``target``: the changed customer and what it gets."""

    target: int
    values: tuple[float, ...]
    """The changed customer, every feature in the bank's units."""
    effort: float
    """The length of the change in standardised units."""
    confidence: float
    """The changed customer's confidence in ``target`` (the smallest change lands near the
    cell's border, so it is low)."""


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No allowed change reaches ``target``, and why."""

    target: int
    reason: str


class SegmentMoves:
    """Smallest moves between the segments of one model (see the module's geometry).

    Parameters
    ----------
    scorer
        The model's scorer: its scaler, centres and training ranges.
    max_candidates
        Combinations of counts tried for one customer at most.
    """

    def __init__(self, scorer: SegmentScorer, *, max_candidates: int = MAX_CANDIDATES) -> None:
        self.scorer = scorer
        self._max_candidates = max_candidates
        self._mean = scorer.mean
        self._scale = scorer.scale
        centres = scorer.centroids
        self._centres = centres
        squared = np.einsum("ij,ij->i", centres, centres)
        # Per target t: the normal (c_j - c_t) and offset |c_j|^2 - |c_t|^2 of every other
        # segment's plane, rows in segment order with t's own row dropped.
        self._planes = []
        for target in range(scorer.n_segments):
            others = [j for j in range(scorer.n_segments) if j != target]
            normals = centres[others] - centres[target]
            offsets = squared[others] - squared[target]
            self._planes.append((normals, offsets))
        # Whole values a changed feature may take: the training range, clipped at zero.
        self._lowest = np.maximum(np.ceil(scorer.feature_min), 0.0)
        self._highest = np.floor(scorer.feature_max)

    def smallest_move(
        self, values: Sequence[float], target: int, fixed: Collection[int] = ()
    ) -> Move | Unreachable:
        """The change of least effort that puts the customer ``values`` (five values in the
        bank's units, in ``FEATURES`` order) in segment ``target``, keeping the features at
        positions ``fixed`` as they are. A customer already there needs no change."""
        customer = np.asarray(values, dtype=np.float64)
        counts = self._count_candidates(customer, frozenset(fixed))
        limits, feasible = self._credit_limits(customer, counts, target, CREDIT_LIMIT in fixed)
        candidates = np.column_stack([limits[feasible], counts[feasible]])
        lands, confidence = self._landing(candidates, target)
        # A whole limit next to the cell's border may fall on the wrong side of it once
        # rounded: those are tried again one unit further in.
        retried = self._one_step_further(customer, candidates[~lands], CREDIT_LIMIT in fixed)
        if len(retried):
            retried_lands, retried_confidence = self._landing(retried, target)
            candidates = np.concatenate([candidates, retried])
            lands = np.concatenate([lands, retried_lands])
            confidence = np.concatenate([confidence, retried_confidence])
        if not lands.any():
            return Unreachable(target, self._why_unreachable(fixed))
        efforts = np.sqrt((((candidates - customer) / self._scale) ** 2).sum(axis=1))
        efforts[~lands] = np.inf
        best = int(np.argmin(efforts))  # the first of equals, in the candidates' order
        return Move(
            target, tuple(candidates[best].tolist()), float(efforts[best]), float(confidence[best])
        )

    def effort_lower_bounds(self, features: FloatArray, target: int) -> FloatArray:
        """For each customer (rows of ``features``, bank units), an effort that no move into
        ``target`` can beat: the distance to the farthest of the cell's half-spaces that the
        customer is outside (the cell lies within each of them). 0 inside the cell."""
        z = (features - self._mean) / self._scale
        normals, offsets = self._planes[target]
        outside = 2.0 * z @ normals.T - offsets  # > 0 on the wrong side of a plane
        distances = np.maximum(outside, 0.0) / (2.0 * np.linalg.norm(normals, axis=1))
        return np.asarray(distances.max(axis=1), dtype=np.float64)

    def nearest_prospects(
        self,
        keys: Sequence[str],
        features: FloatArray,
        target: int,
        *,
        limit: int,
        max_effort: float = math.inf,
        after: tuple[float, str] | None = None,
    ) -> list[tuple[str, Move]]:
        """The ``limit`` customers nearest to entering ``target`` (least effort, then key),
        each with their smallest move, among ``keys`` and their ``features`` (customers
        already in ``target`` excluded by the caller); only those with an effort of at most
        ``max_effort``, and after ``after`` (the effort and key of a previous page's last).

        Customers are tried in the order of their lower bounds, and the search stops once
        the next bound exceeds the last effort kept: most customers are never searched.
        """
        bounds = self.effort_lower_bounds(features, target)
        kept: list[tuple[float, str, Move]] = []  # the best so far, by (effort, key)
        for index in np.argsort(bounds, kind="stable").tolist():
            bound = float(bounds[index])
            if bound > max_effort or (len(kept) == limit and bound > kept[-1][0]):
                break
            move = self.smallest_move(features[index], target)
            if not isinstance(move, Move) or move.effort > max_effort:
                continue
            position = (move.effort, keys[index])
            if after is not None and position <= after:
                continue
            if len(kept) < limit or position < kept[-1][:2]:
                bisect.insort(kept, (*position, move), key=lambda entry: entry[:2])
                del kept[limit:]
        return [(key, move) for _, key, move in kept]

    def _count_candidates(self, customer: FloatArray, fixed: frozenset[int]) -> FloatArray:
        """Every combination of the four counts to try: for each count, the customer's own
        value and (unless fixed) every whole value of the training range."""
        axes = []
        for feature in range(1, len(FEATURES)):
            own = float(customer[feature])
            if feature in fixed:
                axes.append(np.array([own]))
            else:
                whole = np.arange(self._lowest[feature], self._highest[feature] + 1.0)
                axes.append(np.union1d(whole, [own]))
        axes = self._within_budget(axes, customer)
        grids = np.meshgrid(*axes, indexing="ij")
        return np.column_stack([grid.ravel() for grid in grids])

    def _within_budget(self, axes: list[FloatArray], customer: FloatArray) -> list[FloatArray]:
        """``axes``, or the largest window of them around the customer that fits."""
        if math.prod(len(axis) for axis in axes) <= self._max_candidates:
            return axes
        radius = max(len(axis) for axis in axes)
        while radius > 0:
            windowed = [
                axis[np.abs(axis - customer[feature]) <= radius]
                for feature, axis in enumerate(axes, start=1)
            ]
            if math.prod(len(axis) for axis in windowed) <= self._max_candidates:
                return windowed
            radius -= 1
        return [np.array([customer[feature]]) for feature in range(1, len(FEATURES))]

    def _credit_limits(
        self, customer: FloatArray, counts: FloatArray, target: int, limit_fixed: bool
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """For each combination of counts, the credit limit nearest the customer's that puts
        the combination in ``target``'s cell, and whether there is one."""
        normals, offsets = self._planes[target]
        z_counts = (counts - self._mean[1:]) / self._scale[1:]
        # Each plane: a * z0 < room, with z0 the standardised credit limit.
        a = 2.0 * normals[:, CREDIT_LIMIT]
        room = offsets - 2.0 * z_counts @ normals[:, 1:].T  # (candidates, planes)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = room / a
        below = np.where(a > 0, bound, np.inf).min(axis=1, initial=np.inf)
        above = np.where(a < 0, bound, -np.inf).max(axis=1, initial=-np.inf)
        parallel_ok = np.all(np.where(a == 0, room > 0, True), axis=1)
        mean, scale = self._mean[CREDIT_LIMIT], self._scale[CREDIT_LIMIT]
        low, high = mean + scale * above, mean + scale * below  # open interval, bank units
        own = float(customer[CREDIT_LIMIT])
        keeps_own = (low < own) & (own < high)
        if limit_fixed:
            return np.full(len(counts), own), parallel_ok & keeps_own
        lowest_whole = np.maximum(np.floor(low) + 1.0, self._lowest[CREDIT_LIMIT])
        highest_whole = np.minimum(np.ceil(high) - 1.0, self._highest[CREDIT_LIMIT])
        nearest_whole = np.clip(own, lowest_whole, highest_whole)
        limits = np.where(keeps_own, own, nearest_whole)
        feasible = parallel_ok & (keeps_own | (lowest_whole <= highest_whole))
        return limits, feasible

    def _landing(
        self, candidates: FloatArray, target: int
    ) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        """Whether the scorer puts each candidate in ``target``, and with what confidence."""
        if not len(candidates):
            return np.zeros(0, dtype=bool), np.zeros(0)
        scored = self.scorer.score(candidates)
        return scored.labels == target, scored.confidence

    @staticmethod
    def _one_step_further(
        customer: FloatArray, candidates: FloatArray, limit_fixed: bool
    ) -> FloatArray:
        """``candidates`` whose credit limit was changed, changed by one more unit."""
        if limit_fixed:
            return candidates[:0]
        step = np.sign(candidates[:, CREDIT_LIMIT] - customer[CREDIT_LIMIT])
        further: FloatArray = candidates[step != 0].copy()
        further[:, CREDIT_LIMIT] += step[step != 0]
        return further

    @staticmethod
    def _why_unreachable(fixed: Collection[int]) -> str:
        if not fixed:
            return "no whole-number values within the training range reach it"
        held = ", ".join(FEATURE_LABELS[FEATURES[feature]] for feature in sorted(fixed))
        return f"it cannot be reached while these stay as they are: {held}"
