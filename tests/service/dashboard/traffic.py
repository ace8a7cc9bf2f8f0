"""Customers to send the service in the dashboard's tests: the bank's own, resampled, or
shifted as drift would shift them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segmentation.features import FEATURES
from tests.service.api.test_drift_routes import as_customers

SHIFTED_FEATURES = ("avg_credit_limit", "total_visits_online")


def training_features(assignments: pd.DataFrame) -> np.ndarray:
    return assignments[list(FEATURES)].to_numpy(dtype=np.float64)


def resampled(features: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """``n`` customers drawn from the training customers: no drift."""
    return features[np.random.default_rng(seed).integers(0, len(features), n)].copy()


def shifted(features: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """``n`` training customers with credit limits raised by half and online logins
    doubled (the README's drift example): those two features drift, no other."""
    drawn = resampled(features, n, seed=seed)
    drawn[:, 0] = np.round(drawn[:, 0] * 1.5)
    drawn[:, 3] = drawn[:, 3] * 2
    return drawn


def batches(
    features: np.ndarray, *, key_prefix: str | None = None, size: int = 500
) -> list[dict[str, Any]]:
    """``POST /segment/batch`` bodies for the customers (with keys, to be recorded)."""
    customers = as_customers(features)
    if key_prefix is not None:
        for number, customer in enumerate(customers):
            customer["customer_key"] = f"{key_prefix}-{number:05d}"
    return [{"customers": customers[i : i + size]} for i in range(0, len(customers), size)]
