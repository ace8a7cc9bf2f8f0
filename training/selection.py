"""Choosing the number of segments on evidence, and checking the chosen clustering.

Everything here works on a fixed-size random sample of the customers once the data is
large: the k sweep, the silhouette, Ward clustering (quadratic in memory) and the bootstrap
resamples. The sample is drawn once from the seed, so the same data and seed give the same
evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from segmentation.manifest import CrossChecks, Stability, SweepPoint

FloatArray = npt.NDArray[np.float64]
Advance = Callable[[], None]

N_INIT = 10


def _no_progress() -> None:
    return None


def build_pipeline(k: int, *, seed: int, init: FloatArray | None = None) -> Pipeline:
    """StandardScaler then KMeans; with ``init`` (standardised centroids) a single start."""
    kmeans = (
        KMeans(n_clusters=k, n_init=N_INIT, random_state=seed)
        if init is None
        else KMeans(n_clusters=k, init=init, n_init=1, random_state=seed)
    )
    return Pipeline([("scaler", StandardScaler()), ("kmeans", kmeans)])


def sample_rows(n_rows: int, size: int, *, seed: int) -> npt.NDArray[np.intp]:
    """Indices of a seeded random sample (all rows, in order, when there are few)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def sweep_k(
    features: FloatArray,
    k_values: Sequence[int],
    *,
    seed: int,
    silhouette_sample_size: int,
    advance: Advance = _no_progress,
) -> list[SweepPoint]:
    """Fit every candidate k and score it four ways (the silhouette on a fixed sample)."""
    standardised = StandardScaler().fit_transform(features)
    silhouette_rows = sample_rows(len(features), silhouette_sample_size, seed=seed)
    points = []
    for k in k_values:
        kmeans = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(standardised)
        labels = kmeans.labels_
        points.append(
            SweepPoint(
                k=k,
                inertia=float(kmeans.inertia_),
                silhouette=float(
                    silhouette_score(standardised[silhouette_rows], labels[silhouette_rows])
                ),
                calinski_harabasz=float(calinski_harabasz_score(standardised, labels)),
                davies_bouldin=float(davies_bouldin_score(standardised, labels)),
            )
        )
        advance()
    return points


def best_k_by_silhouette(points: Sequence[SweepPoint]) -> int:
    """The k with the highest silhouette (the smaller k on an exact tie)."""
    return max(points, key=lambda point: (point.silhouette, -point.k)).k


def knee_k(points: Sequence[SweepPoint]) -> int | None:
    """The elbow of the inertia curve: the point farthest below the first-to-last chord.

    Both axes are normalised to [0, 1] first (the Kneedle construction), so the answer
    does not depend on the units of inertia.
    """
    if len(points) < 3:
        return None
    ks = np.array([point.k for point in points], dtype=np.float64)
    inertia = np.array([point.inertia for point in points], dtype=np.float64)
    if inertia[0] == inertia[-1]:
        return None
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia[-1]) / (inertia[0] - inertia[-1])
    gap = (1.0 - x) - y
    best = int(np.argmax(gap))
    return int(ks[best]) if gap[best] > 0 else None


def cross_check(
    standardised: FloatArray,
    labels: npt.NDArray[np.intp],
    k: int,
    *,
    seed: int,
    ward_sample_size: int,
) -> CrossChecks:
    """Agreement (adjusted Rand index) of the clustering with Ward and a Gaussian mixture."""
    rows = sample_rows(len(standardised), ward_sample_size, seed=seed)
    sample, sample_labels = standardised[rows], labels[rows]
    ward = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(sample)
    mixture = GaussianMixture(n_components=k, n_init=3, random_state=seed).fit(sample)
    return CrossChecks(
        ward_ari=float(adjusted_rand_score(sample_labels, ward)),
        gaussian_mixture_ari=float(adjusted_rand_score(sample_labels, mixture.predict(sample))),
        sample_size=len(rows),
    )


def bootstrap_stability(
    features: FloatArray,
    labels: npt.NDArray[np.intp],
    k: int,
    *,
    seed: int,
    n_resamples: int,
    advance: Advance = _no_progress,
) -> Stability:
    """Refit on bootstrap resamples and compare each refit's labels with ``labels`` (ARI).

    A mean near 1 says the segments are a property of the customers, not of the seed or
    of which customers happened to be in the export.
    """
    rng = np.random.default_rng(seed)
    scores = []
    for resample in range(n_resamples):
        rows = rng.integers(0, len(features), size=len(features))
        refit = build_pipeline(k, seed=seed + resample + 1).fit(features[rows])
        scores.append(adjusted_rand_score(labels, refit.predict(features)))
        advance()
    return Stability(
        mean_ari=float(np.mean(scores)) if scores else None,
        min_ari=float(np.min(scores)) if scores else None,
        n_resamples=n_resamples,
    )
