"""Seeded generator of realistic synthetic credit-card customers shaped like the bank's export."""

from __future__ import annotations

import argparse
import logging
import math
import operator
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

BANK_COLUMNS: Final[tuple[str, ...]] = (
    "Sl_No",
    "Customer Key",
    "Avg_Credit_Limit",
    "Total_Credit_Cards",
    "Total_visits_bank",
    "Total_visits_online",
    "Total_calls_made",
)
"""The bank export's columns, in the export's order."""

FEATURE_COLUMNS: Final[tuple[str, ...]] = BANK_COLUMNS[2:]
"""The five behaviour columns: the credit limit, then the four counts."""

KEY_FLOOR: Final = 10_000
"""Smallest customer key; the real keys are 5-digit numbers (11265 to 99843)."""

MIN_KEY_SPAN: Final = 90_000
"""Keys come from at least ``[10000, 100000)``, so small frames look like the real export."""

KEY_SPAN_PER_CUSTOMER: Final = 20
"""Large frames widen the key range to 20 possible keys per customer."""

CREDIT_LIMIT_STEP: Final = 1_000
"""Every real credit limit is a multiple of 1000."""

MIN_CREDIT_LIMIT: Final = 3_000
"""The lowest credit limit in the real export; no synthetic limit goes below it."""

REPEATED_KEY_RATE: Final = 5 / 660
"""Share of rows that are a second record for another row's customer key (5 of 660 real rows)."""

COPIED_FEATURES_RATE: Final = 11 / 660
"""Share of rows repeating an earlier row's five features under another key (11 of 660)."""


@dataclass(frozen=True)
class _Segment:
    """One behavioural group of the real export, as StandardScaler + KMeans(k=3) finds it.

    ``share`` is the group's share of the 660 real customers. The credit limit is log-normal,
    truncated to the group's observed ``limit_range``: ``log_limit_sigma`` is the standard
    deviation of the group's real ``log(limit)`` and ``log_limit_mu`` is set so that the
    truncated distribution's mean is the group's real mean limit. ``counts`` gives, for each
    count column, how many of the group's real customers have each value; draws follow these
    frequencies, so they keep the group's means, spreads and observed ranges.
    """

    name: str
    share: float
    log_limit_mu: float
    log_limit_sigma: float
    limit_range: tuple[int, int]
    counts: Mapping[str, Mapping[int, int]]


_SEGMENTS: Final[tuple[_Segment, ...]] = (
    # 386 of 660: mean limit 33.8k, 5.5 cards, 3.5 branch visits, 1.0 login, 2.0 calls.
    _Segment(
        name="branch",
        share=386 / 660,
        log_limit_mu=10.2983,
        log_limit_sigma=0.8009,
        limit_range=(5_000, 100_000),
        counts={
            "Total_Credit_Cards": {2: 1, 4: 102, 5: 73, 6: 116, 7: 94},
            "Total_visits_bank": {1: 3, 2: 93, 3: 100, 4: 92, 5: 98},
            "Total_visits_online": {0: 144, 1: 106, 2: 135, 3: 1},
            "Total_calls_made": {0: 81, 1: 74, 2: 72, 3: 82, 4: 77},
        },
    ),
    # 224 of 660: mean limit 12.2k, 2.4 cards, 0.9 branch visits, 3.6 logins, 6.9 calls.
    _Segment(
        name="call",
        share=224 / 660,
        log_limit_mu=9.3145,
        log_limit_sigma=0.4301,
        limit_range=(3_000, 50_000),
        counts={
            "Total_Credit_Cards": {1: 59, 2: 63, 3: 53, 4: 49},
            "Total_visits_bank": {0: 80, 1: 79, 2: 65},
            "Total_visits_online": {1: 3, 2: 54, 3: 43, 4: 69, 5: 54, 10: 1},
            "Total_calls_made": {1: 1, 2: 1, 4: 31, 5: 29, 6: 39, 7: 35, 8: 30, 9: 32, 10: 26},
        },
    ),
    # 50 of 660: mean limit 141k, 8.7 cards, 0.6 branch visits, 10.9 logins, 1.1 calls.
    _Segment(
        name="online",
        share=50 / 660,
        log_limit_mu=11.8739,
        log_limit_sigma=0.2572,
        limit_range=(84_000, 200_000),
        counts={
            "Total_Credit_Cards": {5: 1, 6: 1, 7: 7, 8: 11, 9: 11, 10: 19},
            "Total_visits_bank": {0: 20, 1: 30},
            "Total_visits_online": {
                6: 1,
                7: 7,
                8: 6,
                9: 4,
                10: 5,
                11: 5,
                12: 6,
                13: 5,
                14: 1,
                15: 10,
            },
            "Total_calls_made": {0: 16, 1: 15, 2: 18, 3: 1},
        },
    ),
)
"""The real export's three groups, from fitting StandardScaler + KMeans(k=3) on its 660 rows."""


def generate_customers(n_customers: int, *, seed: int = 0) -> pd.DataFrame:
    """Generate synthetic bank customers shaped like the bank's credit-card export.

    Each customer belongs to one of the three behavioural groups found in the real export
    (branch-visiting, call-heavy, online-heavy) with the real group shares. Within a group the
    credit limit is a truncated log-normal rounded to a multiple of 1000 and each count
    follows the group's real frequencies. Like the real export, about 0.76% of rows are a
    second record (with independently drawn values) for a customer key that already appears,
    and about 1.7% of rows repeat an earlier row's five feature values under another key.

    Parameters
    ----------
    n_customers : int
        Number of rows to generate; must be at least 1.
    seed : int, default 0
        Seed for ``numpy.random.default_rng``. The same seed gives an identical frame.

    Returns
    -------
    pandas.DataFrame
        ``n_customers`` rows with the export's columns, in its order and all ``int64``:
        ``Sl_No`` (1 to ``n_customers``), ``Customer Key``, ``Avg_Credit_Limit``,
        ``Total_Credit_Cards``, ``Total_visits_bank``, ``Total_visits_online`` and
        ``Total_calls_made``.

    Raises
    ------
    ValueError
        If ``n_customers`` is less than 1.

    Notes
    -----
    Customer keys are integers of at least 10000, drawn without replacement from a range of
    ``max(90000, 20 * n_customers)`` values before the repeated keys are planted. Everything
    is vectorised: a million customers take well under a second.

    Examples
    --------
    >>> frame = generate_customers(660, seed=1)
    >>> frame.shape
    (660, 7)
    """
    n = operator.index(n_customers)
    if n < 1:
        raise ValueError(f"n_customers={n_customers!r} should be >= 1")
    rng = np.random.default_rng(seed)

    shares = np.array([segment.share for segment in _SEGMENTS])
    groups = rng.choice(len(_SEGMENTS), size=n, p=shares / shares.sum())
    features = {column: np.empty(n, dtype=np.int64) for column in FEATURE_COLUMNS}
    for index, segment in enumerate(_SEGMENTS):
        rows = np.flatnonzero(groups == index)
        features["Avg_Credit_Limit"][rows] = _credit_limits(rng, segment, rows.size)
        for column, frequencies in segment.counts.items():
            values = np.fromiter(frequencies.keys(), dtype=np.int64)
            weights = np.fromiter(frequencies.values(), dtype=np.float64)
            features[column][rows] = rng.choice(values, size=rows.size, p=weights / weights.sum())

    keys = _unique_keys(rng, n)
    n_repeated_keys = round(n * REPEATED_KEY_RATE)
    n_copies = round(n * COPIED_FEATURES_RATE)
    # Row 0 is never planted, so every copied row has an untouched earlier row to copy.
    planted = 1 + rng.choice(n - 1, size=2 * n_repeated_keys + n_copies, replace=False)
    first_records = planted[:n_repeated_keys]
    second_records = planted[n_repeated_keys : 2 * n_repeated_keys]
    copies = planted[2 * n_repeated_keys :]

    keys[second_records] = keys[first_records]
    _separate_second_records(features, first_records, second_records)

    untouched = np.ones(n, dtype=bool)
    untouched[planted] = False
    sources = np.flatnonzero(untouched)
    earlier = np.searchsorted(sources, copies)
    originals = sources[(rng.random(copies.size) * earlier).astype(np.int64)]
    for column in FEATURE_COLUMNS:
        features[column][copies] = features[column][originals]

    logger.debug(
        "generated %d synthetic customers (seed=%d, %d repeated keys, %d copied rows)",
        n,
        seed,
        n_repeated_keys,
        n_copies,
    )
    return pd.DataFrame(
        {
            "Sl_No": np.arange(1, n + 1, dtype=np.int64),
            "Customer Key": keys,
            **features,
        },
        columns=list(BANK_COLUMNS),
    )


def _credit_limits(rng: np.random.Generator, segment: _Segment, size: int) -> IntArray:
    """Draw truncated log-normal credit limits for one group, rounded to the nearest 1000."""
    low, high = segment.limit_range
    z_low = (math.log(low) - segment.log_limit_mu) / segment.log_limit_sigma
    z_high = (math.log(high) - segment.log_limit_mu) / segment.log_limit_sigma
    uniform = rng.uniform(float(special.ndtr(z_low)), float(special.ndtr(z_high)), size=size)
    normal: FloatArray = np.asarray(special.ndtri(uniform), dtype=np.float64)
    limits = np.exp(segment.log_limit_mu + segment.log_limit_sigma * normal)
    rounded = np.rint(limits / CREDIT_LIMIT_STEP).astype(np.int64) * CREDIT_LIMIT_STEP
    return np.clip(rounded, max(low, MIN_CREDIT_LIMIT), high)


def _unique_keys(rng: np.random.Generator, n: int) -> IntArray:
    """Draw ``n`` distinct customer keys uniformly, without replacement, in random order.

    Draws with replacement, drops repeats and keeps a random ``n`` of what is left: a uniform
    sample without replacement, much faster than ``Generator.choice`` for a million keys.
    """
    span = max(MIN_KEY_SPAN, KEY_SPAN_PER_CUSTOMER * n)
    pool: IntArray = np.empty(0, dtype=np.int64)
    while pool.size < n:
        extra = n - pool.size
        draws = rng.integers(0, span, size=extra + extra // 10 + 16, dtype=np.int64)
        pool = np.sort(np.concatenate([pool, draws]))
        pool = pool[np.concatenate([[True], pool[1:] != pool[:-1]])]
    return KEY_FLOOR + rng.permutation(pool)[:n]


def _separate_second_records(
    features: Mapping[str, IntArray], first_records: IntArray, second_records: IntArray
) -> None:
    """Make each second record differ from its first record, as the real repeated keys do.

    The second record is drawn independently, so it rarely matches the first; when it does,
    its credit limit moves one step of 1000 (down when it is at the export's maximum).
    """
    same = np.ones(second_records.size, dtype=bool)
    for column in FEATURE_COLUMNS:
        same &= features[column][second_records] == features[column][first_records]
    rows = second_records[same]
    limits = features["Avg_Credit_Limit"]
    highest = max(segment.limit_range[1] for segment in _SEGMENTS)
    limits[rows] += np.where(limits[rows] < highest, CREDIT_LIMIT_STEP, -CREDIT_LIMIT_STEP)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.synthetic --rows N --out FILE [--seed S]``: a customer file for
    trials, shaped like the bank's export (CSV, or Parquet when FILE ends in .parquet)."""
    parser = argparse.ArgumentParser(prog="python -m training.synthetic", description=main.__doc__)
    parser.add_argument("--rows", type=int, required=True, help="customers to generate")
    parser.add_argument("--out", type=Path, required=True, help="the file to write")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    if arguments.rows < 1:
        parser.error(f"--rows={arguments.rows} should be at least 1")
    customers = generate_customers(arguments.rows, seed=arguments.seed)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    if arguments.out.suffix.lower() == ".parquet":
        customers.to_parquet(arguments.out, index=False)
    else:
        customers.to_csv(arguments.out, index=False)
    sys.stdout.write(f"{arguments.rows} customers (seed {arguments.seed}) in {arguments.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
