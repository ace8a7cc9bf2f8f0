"""The scoring kernel compiled with numba, spread over every core: for large batches only.

The arithmetic is :mod:`segmentation.kernels`' definition, operation for operation, with
no fast-math: every operation is IEEE, so the results are bit-identical to the numpy
kernel's (a test holds them equal). Importing numba and loading this kernel costs a worker
some 80 MB and a few tenths of a second, so :mod:`segmentation.kernels` imports this
module only when a batch is large enough to pay for it.

Compiled code is cached on disk (``NUMBA_CACHE_DIR`` chooses where), so only the first
use after an install pays the compilation.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

# numba imports SciPy when it is installed: its package to check the version, and
# ``scipy.linalg`` (heavy) when it first compiles, to find a BLAS for ``np.dot`` and
# ``np.linalg``. This kernel uses neither, and a serving worker should not carry SciPy:
# it is hidden while numba and its array functions load (without it numba leaves those
# two out), and visible again afterwards to whoever needs it.
_hide_scipy = "scipy" not in sys.modules
if _hide_scipy:
    sys.modules["scipy"] = None  # type: ignore[assignment]
try:
    import numba
    import numba.np.arraymath  # where numba looks for SciPy's BLAS
finally:
    if _hide_scipy:
        del sys.modules["scipy"]


def _score_row(row: int, features: Any, model: Any, out: Any) -> None:
    """Score one row: ``model`` and ``out`` are the tuples :func:`score_parallel` documents."""
    mean, scale, centroids, feature_min, feature_max, thresholds = model
    labels, runner_up, distances, confidence, below, above, far = out
    n_segments, n_features = centroids.shape
    best, second = np.inf, np.inf
    best_label, second_label = 0, 1
    for segment in range(n_segments):
        total = 0.0
        for feature in range(n_features):
            term = (features[row, feature] - mean[feature]) / scale[feature]
            term -= centroids[segment, feature]
            total += term * term
        distances[row, segment] = total
        # Strict comparisons keep the lower label on an exact tie, as argmin does.
        if total < best:
            second, second_label = best, best_label
            best, best_label = total, segment
        elif total < second:
            second, second_label = total, segment
    labels[row] = best_label
    runner_up[row] = second_label
    for segment in range(n_segments):
        distances[row, segment] = np.sqrt(distances[row, segment])
    nearest = distances[row, best_label]
    runner = distances[row, second_label]
    confidence[row] = 1.0 - nearest / runner if runner > 0.0 else 0.0
    # Before the loop below, not after: numba 0.68's parallel loop left out a statement
    # that followed it, and ``far`` was never written (tests compare every output with
    # the numpy kernel's).
    far[row] = nearest > thresholds[best_label]
    for feature in range(n_features):
        value = features[row, feature]
        below[row, feature] = value < feature_min[feature]
        above[row, feature] = value > feature_max[feature]


_score_row_compiled = numba.njit(cache=True, inline="always")(_score_row)


@numba.njit(cache=True, parallel=True)
def score_parallel(features: Any, model: Any, out: Any) -> None:
    """Score every row, the rows spread over every core.

    ``model`` is ``(mean, scale, centroids, feature_min, feature_max, thresholds)`` and
    ``out`` is ``(labels, runner_up, distances, confidence, below, above, far)``,
    the arrays :class:`segmentation.scoring.ScoredBatch` holds, filled row by row.
    """
    for row in numba.prange(features.shape[0]):
        _score_row_compiled(row, features, model, out)


def warm_up() -> None:
    """Compile (or load from the cache) the kernel, so that its first batch does not pay."""
    features = np.ones((1, 2))
    centroids = np.array([[0.0, 0.0], [2.0, 2.0]])
    model = (np.zeros(2), np.ones(2), centroids, np.zeros(2), np.full(2, 9.0), np.ones(2))
    out = (
        np.empty(1, np.intp),
        np.empty(1, np.intp),
        np.empty((1, 2)),
        np.empty(1),
        np.empty((1, 2), np.bool_),
        np.empty((1, 2), np.bool_),
        np.empty(1, np.bool_),
    )
    score_parallel(features, model, out)
