"""The population stability index written out with numpy alone, to check the service's."""

from __future__ import annotations

import itertools

import numpy as np


def offline_psi(reference: np.ndarray, population: np.ndarray) -> float:
    """PSI on the reference's deciles as bins, ``(low, high]``, shares floored at 1e-4."""
    edges = np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))
    bins = list(itertools.pairwise(np.concatenate([[-np.inf], edges, [np.inf]])))
    expected = np.array([np.mean((reference > lo) & (reference <= hi)) for lo, hi in bins])
    actual = np.array([np.mean((population > lo) & (population <= hi)) for lo, hi in bins])
    expected, actual = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
