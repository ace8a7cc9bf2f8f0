"""Population stability: how far a population of customers has moved from a reference one.

The population stability index (PSI) compares the share of customers per bin; the bins are
the reference's deciles, so each holds about a tenth of the reference. Below 0.1 the
populations are alike, from 0.1 to 0.25 worth watching, above 0.25 worth acting on (the
bands banks use for scorecards).
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

WATCH: Final = 0.1
ACT: Final = 0.25
_FLOOR: Final = 1e-4
"""A bin's share is at least this, so that an empty bin costs a large but finite amount."""

Band = Literal["ok", "watch", "act"]


def decile_edges(reference: FloatArray) -> FloatArray:
    """The inner bin edges: the reference's deciles, each value once (counts repeat)."""
    return np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))


def bin_shares(values: FloatArray, edges: FloatArray) -> FloatArray:
    """The share of ``values`` in each bin; a value equal to an edge falls in the lower bin."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: FloatArray, actual: FloatArray) -> float:
    """The population stability index of two share vectors over the same bins."""
    e = np.maximum(expected, _FLOOR)
    a = np.maximum(actual, _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def population_psi(reference: FloatArray, population: FloatArray) -> float:
    """PSI of one feature's values against a reference sample, on the reference's deciles."""
    edges = decile_edges(reference)
    return psi(bin_shares(reference, edges), bin_shares(population, edges))


def band(value: float) -> Band:
    if value < WATCH:
        return "ok"
    return "watch" if value <= ACT else "act"
