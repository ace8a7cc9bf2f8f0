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
import threading
from collections import OrderedDict
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


REMEMBERED_MOVES = 50_000
"""Prospect searches remembered per model at most (a few hundred bytes each), least
recently used forgotten first."""


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
        self._remembered: OrderedDict[tuple[int, bytes], Move | Unreachable] = OrderedDict()
        self._remembered_lock = threading.Lock()  # request threads share the model

    def smallest_move(
        self, values: Sequence[float] | FloatArray, target: int, fixed: Collection[int] = ()
    ) -> Move | Unreachable:
        """The change of least effort that puts the customer ``values`` (five values in the
        bank's units, in ``FEATURES`` order) in segment ``target``, keeping the features at
        positions ``fixed`` as they are. A customer already there needs no change."""
        customer = np.asarray(values, dtype=np.float64)
        now = self.scorer.score_row(customer.tolist())
        if now.label == target:
            return Move(target, tuple(customer.tolist()), 0.0, now.confidence)
        counts, radius = self._count_candidates(customer, frozenset(fixed))
        candidates = self._candidates(customer, counts, target, CREDIT_LIMIT in fixed)
        if len(candidates):
            scored = self.scorer.score(candidates)
            lands = scored.labels == target
        if not len(candidates) or not lands.any():
            return Unreachable(target, self._why_unreachable(fixed, radius))
        landing = np.flatnonzero(lands)
        steps = (candidates[landing] - customer) / self._scale
        efforts = np.sqrt(np.einsum("ij,ij->i", steps, steps))
        best = int(np.argmin(efforts))  # the first of equals, in the candidates' order
        row = landing[best]
        return Move(
            target,
            tuple(candidates[row].tolist()),
            float(efforts[best]),
            float(scored.confidence[row]),
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
        the next bound exceeds the last effort kept: most customers are never searched, and
        those searched are remembered for the next page.
        """
        bounds = self.effort_lower_bounds(features, target)
        kept: list[tuple[float, str, Move]] = []  # the best so far, by (effort, key)
        for index in np.argsort(bounds, kind="stable").tolist():
            bound = float(bounds[index])
            if bound > max_effort or (len(kept) == limit and bound > kept[-1][0]):
                break
            move = self._remembered_move(features[index], target)
            if not isinstance(move, Move) or move.effort > max_effort:
                continue
            position = (move.effort, keys[index])
            if after is not None and position <= after:
                continue
            if len(kept) < limit or position < kept[-1][:2]:
                bisect.insort(kept, (*position, move), key=lambda entry: entry[:2])
                del kept[limit:]
        return [(key, move) for _, key, move in kept]

    def _remembered_move(self, customer: FloatArray, target: int) -> Move | Unreachable:
        """:meth:`smallest_move` with nothing fixed, remembered: the pages of a prospects
        listing search the same customers again (every one ranked before the cursor)."""
        key = (target, customer.tobytes())
        with self._remembered_lock:
            found = self._remembered.get(key)
            if found is not None:
                self._remembered.move_to_end(key)
                return found
        move = self.smallest_move(customer, target)
        with self._remembered_lock:
            self._remembered[key] = move
            if len(self._remembered) > REMEMBERED_MOVES:
                self._remembered.popitem(last=False)
        return move

    def _count_candidates(
        self, customer: FloatArray, fixed: frozenset[int]
    ) -> tuple[FloatArray, float]:
        """Every combination of the four counts to try, and the radius (in standardised
        units) around the customer within which they were taken (infinite: all of them).

        For each count: the customer's own value and (unless fixed) every whole value of the
        training range, or, when that makes more than ``max_candidates`` combinations, of
        the largest window around the customer that fits.
        """
        counts = range(1, len(FEATURES))
        free = [feature for feature in counts if feature not in fixed]
        radius = math.inf
        if self._window_size(customer, free, radius) > self._max_candidates:
            radius = self._widest_radius(customer, free)
        axes = []
        for feature in counts:
            own = float(customer[feature])
            if feature in fixed:
                axes.append(np.array([own]))
                continue
            low, high = self._window(customer, feature, radius)
            axes.append(np.union1d(np.arange(low, high + 1.0), [own]))
        grids = np.meshgrid(*axes, indexing="ij")
        return np.column_stack([grid.ravel() for grid in grids]), radius

    def _window(self, customer: FloatArray, feature: int, radius: float) -> tuple[float, float]:
        """The whole values of ``feature`` in the training range within ``radius``
        (standardised) of the customer's: lowest and highest (empty when lowest > highest)."""
        low, high = float(self._lowest[feature]), float(self._highest[feature])
        if math.isinf(radius):
            return low, high
        reach = radius * float(self._scale[feature])
        own = float(customer[feature])
        return max(low, math.ceil(own - reach)), min(high, math.floor(own + reach))

    def _window_size(self, customer: FloatArray, free: list[int], radius: float) -> float:
        size = 1.0
        for feature in free:
            low, high = self._window(customer, feature, radius)
            size *= max(high - low + 1.0, 0.0) + 1.0  # and the customer's own value
        return size

    def _widest_radius(self, customer: FloatArray, free: list[int]) -> float:
        """The largest radius whose window holds at most ``max_candidates`` combinations."""
        fits, too_wide = 0.0, 1.0
        while self._window_size(customer, free, too_wide) <= self._max_candidates:
            fits, too_wide = too_wide, too_wide * 2.0
        for _ in range(40):
            middle = (fits + too_wide) / 2.0
            if self._window_size(customer, free, middle) <= self._max_candidates:
                fits = middle
            else:
                too_wide = middle
        return fits

    def _candidates(
        self, customer: FloatArray, counts: FloatArray, target: int, limit_fixed: bool
    ) -> FloatArray:
        """The customers to score: each combination of counts with the credit limits that
        could be the nearest to the customer's in ``target``'s cell.

        Along the credit limit a combination's part of the cell is an open interval (the
        cell cut along that axis). The nearest limit in it is the customer's own when it
        lies inside, else the first whole value past the end on the customer's side. Bounds
        are computed in floating point and ties go to the lower label, so the whole values
        on either side are tried too (the border itself, one further in; or, for the
        customer's own limit, the whole values next to it), within the training range,
        and the scorer decides. Combinations whose interval is clearly empty are left out.
        """
        own = float(customer[CREDIT_LIMIT])
        if limit_fixed:
            return np.column_stack([np.full(len(counts), own), counts])
        normals, offsets = self._planes[target]
        z_counts = (counts - self._mean[1:]) / self._scale[1:]
        # Each plane: a * z0 < room, with z0 the standardised credit limit.
        a = 2.0 * normals[:, CREDIT_LIMIT]
        room = offsets - 2.0 * z_counts @ normals[:, 1:].T  # (combinations, planes)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = room / a
        below = np.where(a > 0, bound, np.inf).min(axis=1, initial=np.inf)
        above = np.where(a < 0, bound, -np.inf).max(axis=1, initial=-np.inf)
        mean, scale = self._mean[CREDIT_LIMIT], self._scale[CREDIT_LIMIT]
        low, high = mean + scale * above, mean + scale * below  # bank units
        lowest, highest = self._lowest[CREDIT_LIMIT], self._highest[CREDIT_LIMIT]
        margin = 2.0  # whole units: more than any rounding of the bounds
        parallel_ok = np.all(np.where(a == 0, room > -1e-9, True), axis=1)
        near = (
            parallel_ok
            & (low < high + margin)
            & (low < max(highest, own) + margin)
            & (high > min(lowest, own) - margin)
        )
        counts, low, high = counts[near], low[near], high[near]
        inside, up = (low < own) & (own < high), own <= low
        whole = own == math.floor(own)
        next_down = own - 1.0 if whole else math.floor(own)
        next_up = own + 1.0 if whole else math.ceil(own)
        with np.errstate(invalid="ignore"):
            first_in = np.where(up, np.floor(low) + 1.0, np.ceil(high) - 1.0)
            border = np.where(up, np.floor(low), np.ceil(high))
            further = np.where(up, np.floor(low) + 2.0, np.ceil(high) - 2.0)
        limits = [
            np.where(inside, own, np.clip(first_in, lowest, highest)),
            np.clip(np.where(inside, next_down, border), lowest, highest),
            np.clip(np.where(inside, next_up, further), lowest, highest),
        ]
        return np.concatenate([np.column_stack([limit, counts]) for limit in limits])

    @staticmethod
    def _why_unreachable(fixed: Collection[int], radius: float) -> str:
        near = "" if math.isinf(radius) else f" within {radius:.2f} of the customer's"
        if not fixed:
            return f"no whole-number values{near} within the training range reach it"
        held = ", ".join(FEATURE_LABELS[FEATURES[feature]] for feature in sorted(fixed))
        return f"it cannot be reached{near} while these stay as they are: {held}"
