"""Segment scoring arithmetic: plain numpy derived once from a fitted pipeline.

Every consumer (the single route, the batch route, the batch command, the service's
self-test) scores through :meth:`SegmentScorer.score`, so they cannot disagree. Labels are
equal to ``pipeline.predict``: rows whose two nearest centroids are too close to call in
floating point are handed to the pipeline itself, so the scorer never breaks a tie
differently from scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.kernels import score_parallel, score_serial
from segmentation.manifest import Manifest

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

FAR_FROM_CENTROID = "far_from_segment_centroid"
"""Atypical reason: farther from the segment's centre than 99% of its training customers."""

# From this many rows on, spreading the work over the cores pays for starting threads.
_PARALLEL_ROWS = 20_000

# Relative size of a squared-distance gap below which this arithmetic and scikit-learn's
# (which expands the square and may round differently) might not agree on the nearer one.
_TIE_TOLERANCE = 1e-9


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
    """Nearest-centroid scoring equal to a fitted ``StandardScaler -> KMeans`` pipeline.

    Distances are computed in the direct form (see :mod:`segmentation.kernels`): no
    cancellation, and bit-identical whether one customer is scored or a million.

    Parameters
    ----------
    pipeline
        The verified, fitted pipeline; kept only to settle near-ties exactly.
    feature_min, feature_max
        The range of each feature seen in training, in original units.
    distance_thresholds
        Per K-means label, the distance (in standardised units) to the centroid that 99%
        of that segment's training customers stay within.
    """

    def __init__(
        self,
        *,
        pipeline: Any,
        feature_min: Sequence[float],
        feature_max: Sequence[float],
        distance_thresholds: Sequence[float],
    ) -> None:
        scaler, kmeans = pipeline[0], pipeline[-1]
        self._pipeline = pipeline
        self.mean: FloatArray = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale: FloatArray = np.asarray(scaler.scale_, dtype=np.float64)
        self.centroids: FloatArray = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
        self.n_segments = self.centroids.shape[0]
        if self.centroids.shape[1] != len(FEATURES) or self.n_segments < 2:
            raise ValueError(
                f"centroids of shape {self.centroids.shape} do not fit {len(FEATURES)} "
                "features and at least 2 segments"
            )
        self.feature_min: FloatArray = np.asarray(feature_min, dtype=np.float64)
        self.feature_max: FloatArray = np.asarray(feature_max, dtype=np.float64)
        self.distance_thresholds: FloatArray = np.asarray(distance_thresholds, dtype=np.float64)
        if self.distance_thresholds.shape != (self.n_segments,):
            raise ValueError(
                f"{self.distance_thresholds.shape[0]} distance thresholds for "
                f"{self.n_segments} segments"
            )
        # Squared distances are at most 2||z||^2 + 2||c||^2 away from the terms that
        # scikit-learn's expanded formula rounds; this bounds its error from above.
        self._tie_scale = 2.0 * float(np.einsum("ij,ij->i", self.centroids, self.centroids).max())
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
    def for_version(cls, manifest: Manifest, pipeline: Any) -> SegmentScorer:
        """The scorer of a verified version: its pipeline, training ranges and thresholds.

        Labels index ``manifest.segments_by_label()``.
        """
        ranges = manifest.scoring
        return cls(
            pipeline=pipeline,
            feature_min=[ranges.feature_min[feature] for feature in FEATURES],
            feature_max=[ranges.feature_max[feature] for feature in FEATURES],
            distance_thresholds=[s.atypical_distance for s in manifest.segments_by_label()],
        )

    def score(self, features: FloatArray) -> ScoredBatch:
        """Score an ``(n, 5)`` array of customers in original units (valid input assumed).

        Large inputs are spread over every core; a few customers are scored on the calling
        thread, where starting threads would cost more than the arithmetic.
        """
        n_rows = len(features)
        scored = ScoredBatch.empty(n_rows, self.n_segments)
        tied = np.empty(n_rows, dtype=np.bool_)
        kernel = score_parallel if n_rows >= _PARALLEL_ROWS else score_serial
        out = (
            scored.labels,
            scored.runner_up_labels,
            scored.distances,
            scored.confidence,
            scored.below_range,
            scored.above_range,
            scored.far_from_centroid,
            tied,
        )
        features = np.ascontiguousarray(features, dtype=np.float64)
        kernel(features, self._kernel_model, self._tie_scale, _TIE_TOLERANCE, out)
        if tied.any():
            self._settle_ties(features, np.flatnonzero(tied), scored)
        return scored

    def score_row(self, values: Sequence[float]) -> ScoredRow | None:
        """Score one customer (five values in original units, valid) in plain Python.

        For the live path: on one customer, numpy's per-call costs were most of the scoring.
        The arithmetic is the kernel's, operation for operation (see
        :mod:`segmentation.kernels`), so the results are bit-identical to :meth:`score`;
        a test holds them equal. Returns None when the two nearest centroids are too close
        to call: :meth:`score` then lets the pipeline decide.
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
        if (second - best) <= _TIE_TOLERANCE * (best + self._tie_scale + 1.0):
            return None
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

    def _settle_ties(self, features: FloatArray, tied: IntArray, scored: ScoredBatch) -> None:
        """Let the pipeline itself label rows whose nearest centroids are too close to call."""
        decided = np.asarray(self._pipeline.predict(features[tied]), dtype=np.intp)
        swapped = decided != scored.labels[tied]
        if not swapped.any():
            return
        rows = tied[swapped]
        scored.runner_up_labels[rows] = scored.labels[rows]
        scored.labels[rows] = decided[swapped]
        nearest = scored.distances[rows, scored.labels[rows]]
        runner = scored.distances[rows, scored.runner_up_labels[rows]]
        scored.confidence[rows] = np.where(
            runner > 0.0, 1.0 - nearest / np.maximum(runner, 1e-300), 0.0
        ).clip(0.0, 1.0)
        scored.far_from_centroid[rows] = nearest > self.distance_thresholds[scored.labels[rows]]
