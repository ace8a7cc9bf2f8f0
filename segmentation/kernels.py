"""Scoring kernels: the distance arithmetic in numpy, and the compiled kernel when it pays.

The arithmetic is the definition of the distance, in a fixed order: for each feature,
``z = (x - mean) / scale`` (subtract, then divide, as StandardScaler does), then
``(z - centre) ** 2`` accumulated feature by feature, then the square root. The nearest
and runner-up segments are kept as one pass over the segments would keep them, with
strict comparisons (on an exact tie, the lower label, as ``argmin``). Every kernel does
each operation on the same operands, with no fast-math: they are bit-identical, whichever
one scores a customer (tests hold them equal).

numpy here works column by column on a block of rows, as fast as the compiled kernel up
to some tens of thousands of rows; numba (:mod:`segmentation.compiled_kernels`) spreads
larger batches over every core, but importing it costs a worker some 80 MB, so it is
imported on the first batch that large and never by a service that scores no such batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Kernel = Callable[[Any, Any, Any], None]
"""``kernel(features, model, out)``: the signature :func:`score_in_numpy` documents."""

_BLOCK_ROWS = 16_384
"""Rows scored per pass: a block's columns and squared distances stay in the CPU's cache."""


def score_in_numpy(features: Any, model: Any, out: Any) -> None:
    """Score every row of a C-contiguous ``(n, n_features)`` array, block by block.

    ``model`` is ``(mean, scale, centroids, feature_min, feature_max, thresholds)`` and
    ``out`` is ``(labels, runner_up, distances, confidence, below, above, far)``,
    the arrays :class:`segmentation.scoring.ScoredBatch` holds, filled in place.
    """
    # A distance that overflows to infinity (and the confidence then undefined) is IEEE's
    # answer and the compiled kernel's too: nothing to warn about.
    with np.errstate(all="ignore"):
        for start in range(0, len(features), _BLOCK_ROWS):
            rows = slice(start, start + _BLOCK_ROWS)
            _score_block(features[rows], model, tuple(array[rows] for array in out))


def _score_block(features: Any, model: Any, out: Any) -> None:
    mean, scale, centroids, feature_min, feature_max, thresholds = model
    labels, runner_up, distances, confidence, below, above, far = out
    n_segments, n_features = centroids.shape
    n_rows = len(features)
    standardised = features - mean
    standardised /= scale
    columns = standardised.T.copy()  # one contiguous row per feature
    squared = np.empty((n_segments, n_rows))
    term = np.empty(n_rows)
    for segment in range(n_segments):
        total = squared[segment]
        np.subtract(columns[0], centroids[segment, 0], out=total)
        np.multiply(total, total, out=total)
        for feature in range(1, n_features):
            np.subtract(columns[feature], centroids[segment, feature], out=term)
            np.multiply(term, term, out=term)
            np.add(total, term, out=total)
    best = np.full(n_rows, np.inf)
    second = np.full(n_rows, np.inf)
    labels.fill(0)
    runner_up.fill(1)
    nearer = np.empty(n_rows, np.bool_)
    closer = np.empty(n_rows, np.bool_)
    for segment in range(n_segments):
        # One step of the compiled kernel's loop on every row: a total nearer than the
        # best demotes the best to runner-up; one only nearer than the runner-up replaces it.
        total = squared[segment]
        np.less(total, best, out=nearer)
        np.less(total, second, out=closer)
        np.maximum(total, best, out=term)  # the new runner-up's distance, where closer
        np.copyto(second, term, where=closer)
        np.copyto(runner_up, segment, where=closer)
        np.copyto(runner_up, labels, where=nearer)
        np.copyto(labels, segment, where=nearer)
        np.copyto(best, total, where=nearer)
    np.sqrt(squared, out=distances.T)
    nearest = np.sqrt(best, out=best)
    runner = np.sqrt(second, out=second)
    apart = runner > 0.0
    np.divide(nearest, runner, out=term, where=apart)
    np.subtract(1.0, term, out=confidence)
    confidence[~apart] = 0.0
    np.less(features, feature_min, out=below)
    np.greater(features, feature_max, out=above)
    np.greater(nearest, thresholds.take(labels), out=far)


def compiled_kernel() -> Kernel:
    """The numba kernel over every core, imported (and numba with it) on first use."""
    from segmentation.compiled_kernels import score_parallel

    kernel: Kernel = score_parallel
    return kernel


def warm_up() -> None:
    """Import numba and compile (or load from the cache) its kernel ahead of a large batch.

    For processes that will score large batches anyway (whole-base scoring, an image
    build filling the cache); a service worker leaves it to its first large batch.
    """
    from segmentation.compiled_kernels import warm_up as warm_up_compiled

    warm_up_compiled()
