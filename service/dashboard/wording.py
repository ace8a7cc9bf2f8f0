"""How the dashboard writes figures and codes for a banker: numbers, shares, bands, reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from segmentation.drift import ACT, WATCH
from segmentation.features import FEATURE_LABELS, FEATURES
from segmentation.scoring import FAR_FROM_CENTROID, above_range_reason, below_range_reason

MONEY_FEATURES: Final = frozenset({"avg_credit_limit"})

BAND_MEANINGS: Final[dict[str, str]] = {
    "ok": f"stable (PSI below {WATCH})",
    "watch": f"shifting (PSI {WATCH} to {ACT})",
    "act": f"shifted (PSI above {ACT})",
    "insufficient": "too few customers to tell",
}
"""Each drift band in words, so that a band never depends on its colour to be read."""

STATUS_MEANINGS: Final[dict[str, str]] = {
    "active": "serving every answer",
    "candidate": "waiting for a decision",
    "retired": "served before",
    "rejected": "refused, cannot be promoted",
}

_REASONS: Final[dict[str, str]] = {
    FAR_FROM_CENTROID: "far from its segment's centre",
    **{above_range_reason(f): f"{FEATURE_LABELS[f]} above the training range" for f in FEATURES},
    **{below_range_reason(f): f"{FEATURE_LABELS[f]} below the training range" for f in FEATURES},
}


def feature_label(feature: str) -> str:
    """The feature as a banker reads it (``average credit limit``)."""
    return FEATURE_LABELS.get(feature, feature)


def feature_value(feature: str, value: float) -> str:
    """A value in the feature's own units: money to the unit, counts to one decimal."""
    if feature in MONEY_FEATURES:
        return f"{value:,.0f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def count(value: int) -> str:
    return f"{value:,}"


def percent(share: float) -> str:
    return f"{share:.1%}"


def psi_value(value: float | None) -> str:
    """A PSI as the panel writes it ("no figure" when the window is too small)."""
    return "no figure" if value is None else f"{value:.2f}"


def standard_deviations(value: float) -> str:
    """A distance from the population's average in standard deviations, with its sign."""
    return f"{value:+.1f} sd"


def atypical_reason(code: str) -> str:
    """An atypical reason code in words (the code itself when this model has no words)."""
    return _REASONS.get(code, code.replace("_", " "))


def trait(feature: str, z: float, direction: str) -> str:
    """What sets a segment apart, from one of its distinguishing features."""
    return (
        f"{feature_label(feature)}: {'higher' if direction == 'high' else 'lower'} than "
        f"average ({standard_deviations(z)})"
    )


def moment(timestamp: str | None) -> str:
    """An ISO 8601 time as ``2026-12-02 11:26 UTC`` (as given when it does not parse)."""
    if not timestamp:
        return "unknown"
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return f"{parsed:%Y-%m-%d %H:%M} UTC"
