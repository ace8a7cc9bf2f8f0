"""Population stability: how far a population of customers has moved from a reference one.

The population stability index (PSI) compares the share of customers per bin; the bins are
the reference's deciles, so each holds about a tenth of the reference. Below 0.1 the
populations are alike, from 0.1 to 0.25 worth watching, above 0.25 worth acting on (the
bands banks use for scorecards).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from segmentation.features import FEATURES
from segmentation.manifest import DriftBaseline, FeatureBins

FloatArray = npt.NDArray[np.float64]

WATCH: Final = 0.1
ACT: Final = 0.25
_FLOOR: Final = 1e-4
"""A bin's share is at least this, so that an empty bin costs a large but finite amount."""

MIN_CUSTOMERS: Final = 500
"""Fewer customers than this in a window give noise, not a population: no figures then."""

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


def training_baseline(features: FloatArray, segment_ids: Sequence[str]) -> DriftBaseline:
    """The training population as drift is measured against it: deciles and segment mix."""
    bins = {}
    for column, feature in enumerate(FEATURES):
        edges = decile_edges(features[:, column])
        shares = bin_shares(features[:, column], edges)
        bins[feature] = FeatureBins(
            edges=tuple(map(float, edges)), shares=tuple(map(float, shares))
        )
    counts = Counter(segment_ids)
    mix = {segment_id: count / len(segment_ids) for segment_id, count in sorted(counts.items())}
    return DriftBaseline(features=bins, segment_mix=mix)


def insufficient_report(
    reason: str,
    *,
    atypical_share: float | None = None,
    atypical_by_reason: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A drift report without figures, saying why (too few customers, no baseline)."""
    return {
        "features": {feature: {"psi": None, "band": "insufficient"} for feature in FEATURES},
        "segment_mix": {"psi": None, "band": "insufficient"},
        "atypical_share": atypical_share,
        "atypical_by_reason": atypical_by_reason,
        "retrain_recommended": False,
        "reasons": [reason],
    }


def drift_report(
    baseline: DriftBaseline,
    features: FloatArray,
    segment_ids: Sequence[str],
    atypical: npt.NDArray[np.bool_],
    *,
    atypical_reasons: Mapping[str, int],
) -> dict[str, Any]:
    """How far the scored customers (``(n, 5)`` features, their segments, atypical flags
    and how many carry each atypical reason) have moved from training: PSI and band per
    feature and for the segment mix, the share of atypical customers in all and by reason,
    and whether to retrain, with the reasons."""
    n = len(features)
    atypical_share = float(np.mean(atypical)) if n else None
    by_reason = (
        {reason: count / n for reason, count in sorted(atypical_reasons.items())} if n else None
    )
    if n < MIN_CUSTOMERS:
        return insufficient_report(
            f"{n:,} customers scored in the window; at least {MIN_CUSTOMERS:,} are needed "
            "to tell drift from noise",
            atypical_share=atypical_share,
            atypical_by_reason=by_reason,
        )
    report_features = {}
    for column, feature in enumerate(FEATURES):
        bins = baseline.features[feature]
        edges = np.asarray(bins.edges, dtype=np.float64)
        value = psi(np.asarray(bins.shares), bin_shares(features[:, column], edges))
        report_features[feature] = {"psi": value, "band": band(value)}
    ids = sorted(baseline.segment_mix)
    counts = Counter(segment_ids)
    expected = np.array([baseline.segment_mix[segment_id] for segment_id in ids])
    actual = np.array([counts[segment_id] / n for segment_id in ids])
    mix_psi = psi(expected, actual)
    acting = [f for f, figures in report_features.items() if figures["band"] == "act"]
    reasons = [
        f"{feature}: PSI {report_features[feature]['psi']:.2f}, above {ACT}" for feature in acting
    ]
    if band(mix_psi) == "act":
        reasons.append(f"segment mix: PSI {mix_psi:.2f}, above {ACT}")
    if not reasons:
        largest = max(report_features, key=lambda f: report_features[f]["psi"])
        reasons.append(
            f"every PSI is at most {ACT} (largest: {largest}, "
            f"{report_features[largest]['psi']:.2f}): the population is the one trained on"
        )
    return {
        "features": report_features,
        "segment_mix": {"psi": mix_psi, "band": band(mix_psi)},
        "atypical_share": atypical_share,
        "atypical_by_reason": by_reason,
        "retrain_recommended": bool(acting) or band(mix_psi) == "act",
        "reasons": reasons,
    }
