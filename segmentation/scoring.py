"""Segment scoring arithmetic: plain numbers that a version's signed manifest holds.

Every consumer (the single route, the batch route, the batch command, the service's
self-test, training's proof) scores through :class:`SegmentScorer`, so they cannot
disagree. The scorer needs no pickled object: the scaler's means and scales, the centres
(standardised units), the training ranges and the distance thresholds are all in the
manifest, so the service never unpickles and never imports scikit-learn.

The label is the centre at the smallest squared distance, computed in the direct form
(see :mod:`segmentation.kernels`); on an exact tie, the lower label (as ``argmin``). A few
customers are scored in plain Python, a batch in numpy, a large batch by the compiled
kernel: all three give the same bits.
scikit-learn's ``predict`` expands the square and may round differently when two centres
are all but equally near; training proves, before it publishes a version, that these
numbers give ``pipeline.predict``'s label on every training customer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.kernels import compiled_kernel, score_in_numpy
from segmentation.manifest import Manifest

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

FAR_FROM_CENTROID = "far_from_segment_centroid"
"""Atypical reason: farther from the segment's centre than 99% of its training customers."""

# Below this many rows, numpy's cost per call (some 50 us a batch) outweighs the
# arithmetic: score_row's plain Python is cheaper.
_NUMPY_ROWS = 8
# From this many rows on, the compiled kernel over every core is clearly ahead of numpy
# (about twice as fast at 50,000 rows on 2 cores, level at 20,000); below, it is not worth
# importing numba for.
_COMPILED_ROWS = 50_000


def below_range_reason(feature: str) -> str:
    return f"{feature}_below_training_range"


def above_range_reason(feature: str) -> str:
    return f"{feature}_above_training_range"


_BELOW_RANGE = tuple(below_range_reason(feature) for feature in FEATURES)
_ABOVE_RANGE = tuple(above_range_reason(feature) for feature in FEATURES)


@dataclass(frozen=True)
class ScoredBatch:
    """Scores for ``n`` customers against ``k`` segments (labels are K-means labels)."""

    labels: IntArray
    runner_up_labels: IntArray
    distances: FloatArray
    confidence: FloatArray
    below_range: BoolArray
    above_range: BoolArray
    far_from_centroid: BoolArray

    @classmethod
    def empty(cls, n_rows: int, n_segments: int) -> ScoredBatch:
        n_features = len(FEATURES)
        return cls(
            labels=np.empty(n_rows, dtype=np.intp),
            runner_up_labels=np.empty(n_rows, dtype=np.intp),
            distances=np.empty((n_rows, n_segments), dtype=np.float64),
            confidence=np.empty(n_rows, dtype=np.float64),
            below_range=np.empty((n_rows, n_features), dtype=np.bool_),
            above_range=np.empty((n_rows, n_features), dtype=np.bool_),
            far_from_centroid=np.empty(n_rows, dtype=np.bool_),
        )

    @property
    def atypical(self) -> BoolArray:
        out_of_range = self.below_range.any(axis=1) | self.above_range.any(axis=1)
        return out_of_range | self.far_from_centroid

    def reason_counts(self) -> dict[str, int]:
        """How many rows carry each atypical reason code (a row with two counts under both)."""
        counts = dict(zip(_BELOW_RANGE, self.below_range.sum(axis=0).tolist(), strict=True))
        counts.update(zip(_ABOVE_RANGE, self.above_range.sum(axis=0).tolist(), strict=True))
        counts[FAR_FROM_CENTROID] = int(self.far_from_centroid.sum())
        return counts

    def atypical_reasons(self, row: int) -> list[str]:
        """Reason codes for one row, in feature order, the centroid distance last."""
        below, above = self.below_range[row].tolist(), self.above_range[row].tolist()
        reasons = [reason for reason, flagged in zip(_BELOW_RANGE, below, strict=True) if flagged]
        reasons += [reason for reason, flagged in zip(_ABOVE_RANGE, above, strict=True) if flagged]
        if self.far_from_centroid[row]:
            reasons.append(FAR_FROM_CENTROID)
        return reasons


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One customer's scores, as plain Python values (see :meth:`SegmentScorer.score_row`)."""

    label: int
    runner_up_label: int
    distances: list[float]
    confidence: float
    atypical_reasons: list[str]
    """Reason codes in :meth:`ScoredBatch.atypical_reasons`' order; empty when typical."""


class SegmentScorer:
    """Nearest-centroid scoring, equal to the version's ``StandardScaler -> KMeans``.

    Distances are computed in the direct form (see :mod:`segmentation.kernels`): no
    cancellation, and bit-identical whether one customer is scored or a million.

    Parameters
    ----------
    mean, scale
        The scaler's, per feature.
    centroids
        ``(k, n_features)``: the K-means centres in standardised units, by label.
    feature_min, feature_max
        The range of each feature seen in training, in original units.
    distance_thresholds
        Per K-means label, the distance (in standardised units) to the centroid that 99%
        of that segment's training customers stay within.
    """

    def __init__(
        self,
        *,
        mean: Sequence[float],
        scale: Sequence[float],
        centroids: Sequence[Sequence[float]],
        feature_min: Sequence[float],
        feature_max: Sequence[float],
        distance_thresholds: Sequence[float],
    ) -> None:
        self.mean: FloatArray = np.asarray(mean, dtype=np.float64)
        self.scale: FloatArray = np.asarray(scale, dtype=np.float64)
        self.centroids: FloatArray = np.asarray(centroids, dtype=np.float64)
        self.n_segments = self.centroids.shape[0]
        if self.centroids.ndim != 2 or self.centroids.shape[1] != len(FEATURES):
            raise ValueError(
                f"centroids of shape {self.centroids.shape} do not fit {len(FEATURES)} features"
            )
        if self.n_segments < 2:
            raise ValueError(f"{self.n_segments} centroids: at least 2 segments are needed")
        self.feature_min: FloatArray = np.asarray(feature_min, dtype=np.float64)
        self.feature_max: FloatArray = np.asarray(feature_max, dtype=np.float64)
        for name, values in (
            ("mean", self.mean),
            ("scale", self.scale),
            ("feature_min", self.feature_min),
            ("feature_max", self.feature_max),
        ):
            if values.shape != (len(FEATURES),):
                raise ValueError(f"{name} has {values.size} values for {len(FEATURES)} features")
        self.distance_thresholds: FloatArray = np.asarray(distance_thresholds, dtype=np.float64)
        if self.distance_thresholds.shape != (self.n_segments,):
            raise ValueError(
                f"{self.distance_thresholds.size} distance thresholds for "
                f"{self.n_segments} segments"
            )
        # The same parameters as Python floats, for score_row.
        self._standardise = tuple(zip(self.mean.tolist(), self.scale.tolist(), strict=True))
        self._centres = tuple(tuple(centre) for centre in self.centroids.tolist())
        self._ranges = tuple(zip(self.feature_min.tolist(), self.feature_max.tolist(), strict=True))
        self._thresholds = tuple(self.distance_thresholds.tolist())
        self._kernel_model = (
            self.mean,
            self.scale,
            self.centroids,
            self.feature_min,
            self.feature_max,
            self.distance_thresholds,
        )

    @classmethod
    def for_version(cls, manifest: Manifest) -> SegmentScorer:
        """The scorer of a version, from its manifest alone. Labels index
        ``manifest.segments_by_label()``.

        Raises
        ------
        ValueError
            The manifest's numbers do not make a scorer (segments not labelled 0 to k - 1,
            a feature or a segment missing).
        """
        segments = manifest.segments_by_label()
        labels = [segment.label for segment in segments]
        if manifest.k < 2 or labels != list(range(manifest.k)):
            raise ValueError(f"it describes k={manifest.k} segments with labels {labels}")
        try:
            return cls(
                mean=[manifest.scaler.mean[feature] for feature in FEATURES],
                scale=[manifest.scaler.scale[feature] for feature in FEATURES],
                centroids=[[s.z_centroid[feature] for feature in FEATURES] for s in segments],
                feature_min=[manifest.scoring.feature_min[feature] for feature in FEATURES],
                feature_max=[manifest.scoring.feature_max[feature] for feature in FEATURES],
                distance_thresholds=[s.atypical_distance for s in segments],
            )
        except KeyError as error:
            raise ValueError(f"the manifest gives no value for feature {error}") from None

    def score(self, features: FloatArray) -> ScoredBatch:
        """Score an ``(n, 5)`` array of customers in original units (valid input assumed).

        A few customers are scored in plain Python, where numpy's cost per call would be
        most of the time; a batch in numpy; a large batch over every core by the compiled
        kernel (numba is imported then, on the first such batch).
        """
        n_rows = len(features)
        features = np.ascontiguousarray(features, dtype=np.float64)
        if n_rows < _NUMPY_ROWS:
            return self._score_each_row(features)
        scored = ScoredBatch.empty(n_rows, self.n_segments)
        kernel = compiled_kernel() if n_rows >= _COMPILED_ROWS else score_in_numpy
        out = (
            scored.labels,
            scored.runner_up_labels,
            scored.distances,
            scored.confidence,
            scored.below_range,
            scored.above_range,
            scored.far_from_centroid,
        )
        kernel(features, self._kernel_model, out)
        return scored

    def _score_each_row(self, features: FloatArray) -> ScoredBatch:
        rows = [self.score_row(values) for values in features.tolist()]
        return ScoredBatch(
            labels=np.array([row.label for row in rows], dtype=np.intp),
            runner_up_labels=np.array([row.runner_up_label for row in rows], dtype=np.intp),
            distances=np.array([row.distances for row in rows], dtype=np.float64).reshape(
                len(rows), self.n_segments
            ),
            confidence=np.array([row.confidence for row in rows], dtype=np.float64),
            below_range=features < self.feature_min,
            above_range=features > self.feature_max,
            far_from_centroid=np.array(
                [FAR_FROM_CENTROID in row.atypical_reasons for row in rows], dtype=np.bool_
            ),
        )

    def score_row(self, values: Sequence[float]) -> ScoredRow:
        """Score one customer (five values in original units, valid) in plain Python.

        For the live path: on one customer, numpy's per-call costs were most of the scoring.
        The arithmetic is the kernel's, operation for operation (see
        :mod:`segmentation.kernels`), so the results are bit-identical to :meth:`score`;
        a test holds them equal.
        """
        standardised = [
            (value - mean) / scale
            for value, (mean, scale) in zip(values, self._standardise, strict=True)
        ]
        best = second = math.inf
        best_label, second_label = 0, 1
        squared = []
        for segment, centre in enumerate(self._centres):
            total = 0.0
            for z, coordinate in zip(standardised, centre, strict=True):
                term = z - coordinate
                total += term * term
            squared.append(total)
            if total < best:
                second, second_label = best, best_label
                best, best_label = total, segment
            elif total < second:
                second, second_label = total, segment
        distances = [math.sqrt(total) for total in squared]
        nearest, runner = distances[best_label], distances[second_label]
        ranges = self._ranges
        reasons = [
            _BELOW_RANGE[feature]
            for feature, value in enumerate(values)
            if value < ranges[feature][0]
        ]
        reasons += [
            _ABOVE_RANGE[feature]
            for feature, value in enumerate(values)
            if value > ranges[feature][1]
        ]
        if nearest > self._thresholds[best_label]:
            reasons.append(FAR_FROM_CENTROID)
        return ScoredRow(
            label=best_label,
            runner_up_label=second_label,
            distances=distances,
            confidence=1.0 - nearest / runner if runner > 0.0 else 0.0,
            atypical_reasons=reasons,
        )
