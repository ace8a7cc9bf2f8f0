"""Segment profiles: who the customers of each segment are, in original units and z-scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.manifest import DistinguishingFeature, FeatureSummary

FloatArray = npt.NDArray[np.float64]

DISTINGUISHING_Z = 0.5
"""A centroid this many standard deviations from the average customer sets a segment apart."""
MAX_DISTINGUISHING = 3


@dataclass(frozen=True)
class SegmentProfile:
    """One K-means label's customers, described."""

    label: int
    size: int
    share: float
    profile: dict[str, FeatureSummary]
    centroid: dict[str, float]
    z_centroid: dict[str, float]
    distinguishing_features: tuple[DistinguishingFeature, ...]
    atypical_distance: float
    """The distance (standardised units) to the centroid that 99% of its customers stay within."""

    def z_vector(self) -> FloatArray:
        return np.array([self.z_centroid[feature] for feature in FEATURES])


def profile_segments(
    features: FloatArray,
    labels: npt.NDArray[np.intp],
    *,
    z_centroids: FloatArray,
    centroids: FloatArray,
    distances_to_own: FloatArray,
) -> list[SegmentProfile]:
    """Describe every label, in label order.

    ``z_centroids`` and ``centroids`` are the K-means centres in standardised and original
    units; ``distances_to_own`` is each customer's distance to its own centre.
    """
    profiles = []
    for label in range(len(z_centroids)):
        members = labels == label
        rows = features[members]
        quartiles = np.percentile(rows, [25, 50, 75], axis=0)
        profiles.append(
            SegmentProfile(
                label=label,
                size=int(members.sum()),
                share=float(members.mean()),
                profile={
                    feature: FeatureSummary(
                        mean=float(rows[:, column].mean()),
                        p25=float(quartiles[0, column]),
                        median=float(quartiles[1, column]),
                        p75=float(quartiles[2, column]),
                        min=float(rows[:, column].min()),
                        max=float(rows[:, column].max()),
                    )
                    for column, feature in enumerate(FEATURES)
                },
                centroid=dict(zip(FEATURES, map(float, centroids[label]), strict=True)),
                z_centroid=dict(zip(FEATURES, map(float, z_centroids[label]), strict=True)),
                distinguishing_features=distinguishing_features(z_centroids[label]),
                atypical_distance=float(np.percentile(distances_to_own[members], 99)),
            )
        )
    return profiles


def distinguishing_features(z_centroid: FloatArray) -> tuple[DistinguishingFeature, ...]:
    """The features farthest from the average customer, strongest first."""
    order = np.argsort(-np.abs(z_centroid), kind="stable")
    return tuple(
        DistinguishingFeature(
            feature=FEATURES[column],
            z=round(float(z_centroid[column]), 3),
            direction="high" if z_centroid[column] > 0 else "low",
        )
        for column in order[:MAX_DISTINGUISHING]
        if abs(z_centroid[column]) >= DISTINGUISHING_Z
    )
