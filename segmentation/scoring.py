"""Segment scoring arithmetic: plain numpy derived once from a fitted pipeline.

Every consumer (the single route, the batch route, the batch command, the service's
self-test) scores through :meth:`SegmentScorer.score`, so they cannot disagree. Labels are
equal to ``pipeline.predict``: rows whose two nearest centroids are too close to call in
floating point are handed to the pipeline itself, so the scorer never breaks a tie
differently from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

FAR_FROM_CENTROID = "far_from_segment_centroid"
"""Atypical reason: farther from the segment's centre than 99% of its training customers."""

# Relative size of a squared-distance gap below which the fast formula cannot be trusted
# to order two centroids exactly as scikit-learn's own arithmetic does.
_TIE_TOLERANCE = 1e-9


def below_range_reason(feature: str) -> str:
    return f"{feature}_below_training_range"


def above_range_reason(feature: str) -> str:
    return f"{feature}_above_training_range"


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

    @property
    def atypical(self) -> BoolArray:
        out_of_range = self.below_range.any(axis=1) | self.above_range.any(axis=1)
        return out_of_range | self.far_from_centroid

    def atypical_reasons(self, row: int) -> list[str]:
        """Reason codes for one row, in feature order, the centroid distance last."""
        reasons = [
            below_range_reason(feature)
            for feature, flagged in zip(FEATURES, self.below_range[row], strict=True)
            if flagged
        ]
        reasons += [
            above_range_reason(feature)
            for feature, flagged in zip(FEATURES, self.above_range[row], strict=True)
            if flagged
        ]
        if self.far_from_centroid[row]:
            reasons.append(FAR_FROM_CENTROID)
        return reasons


class SegmentScorer:
    """Nearest-centroid scoring equal to a fitted ``StandardScaler -> KMeans`` pipeline.

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
        centroids = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
        self.n_segments = centroids.shape[0]
        if centroids.shape[1] != len(FEATURES) or self.n_segments < 2:
            raise ValueError(
                f"centroids of shape {centroids.shape} do not fit {len(FEATURES)} features "
                "and at least 2 segments"
            )
        # ||z - c||^2 = ||z||^2 - 2 z.c + ||c||^2: keep -2c and ||c||^2 so that one
        # matrix product and one addition give every squared distance.
        self._minus_two_centroids_t: FloatArray = np.ascontiguousarray(-2.0 * centroids.T)
        self._centroid_sq_norms: FloatArray = np.einsum("ij,ij->i", centroids, centroids)
        self._tie_scale = float(self._centroid_sq_norms.max()) + 1.0
        self.feature_min: FloatArray = np.asarray(feature_min, dtype=np.float64)
        self.feature_max: FloatArray = np.asarray(feature_max, dtype=np.float64)
        self.distance_thresholds: FloatArray = np.asarray(distance_thresholds, dtype=np.float64)
        if self.distance_thresholds.shape != (self.n_segments,):
            raise ValueError(
                f"{self.distance_thresholds.shape[0]} distance thresholds for "
                f"{self.n_segments} segments"
            )

    def score(self, features: FloatArray) -> ScoredBatch:
        """Score an ``(n, 5)`` array of customers in original units (valid input assumed)."""
        # Subtract then divide, as StandardScaler.transform does, for the same rounding.
        standardised = (features - self.mean) / self.scale
        own_sq_norms = np.einsum("ij,ij->i", standardised, standardised)
        squared = standardised @ self._minus_two_centroids_t
        squared += self._centroid_sq_norms
        squared += own_sq_norms[:, None]
        np.maximum(squared, 0.0, out=squared)

        order = np.argsort(squared, axis=1, kind="stable")
        labels = order[:, 0].copy()
        runner_up = order[:, 1].copy()
        rows = np.arange(len(features))
        best = squared[rows, labels]
        second = squared[rows, runner_up]
        near_tie = (second - best) <= _TIE_TOLERANCE * (own_sq_norms + self._tie_scale)
        if near_tie.any():
            self._settle_ties(features, near_tie, labels, runner_up)

        distances = np.sqrt(squared)
        best_distance = distances[rows, labels]
        second_distance = distances[rows, runner_up]
        with np.errstate(divide="ignore", invalid="ignore"):
            confidence = np.where(second_distance > 0.0, 1.0 - best_distance / second_distance, 0.0)
        np.clip(confidence, 0.0, 1.0, out=confidence)
        return ScoredBatch(
            labels=labels,
            runner_up_labels=runner_up,
            distances=distances,
            confidence=confidence,
            below_range=features < self.feature_min,
            above_range=features > self.feature_max,
            far_from_centroid=best_distance > self.distance_thresholds[labels],
        )

    def _settle_ties(
        self, features: FloatArray, near_tie: BoolArray, labels: IntArray, runner_up: IntArray
    ) -> None:
        """Let the pipeline itself label rows whose nearest centroids are too close to call."""
        tied_rows = np.flatnonzero(near_tie)
        decided = np.asarray(self._pipeline.predict(features[tied_rows]), dtype=np.intp)
        swapped = decided != labels[tied_rows]
        if swapped.any():
            rows = tied_rows[swapped]
            runner_up[rows] = labels[rows]
            labels[rows] = decided[swapped]
