"""Validation of a customer export: every problem named by column, rule and first rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.features import COUNT_FEATURES, CUSTOMER_KEY, FEATURES, ROW_NUMBER
from segmentation.manifest import DataQuality
from training.loading import InvalidCustomerData

_REQUIRED = (CUSTOMER_KEY, *FEATURES)
_ALLOWED = frozenset((*_REQUIRED, ROW_NUMBER))
_ROWS_SHOWN = 5
_LISTED_DUPLICATES = 50


@dataclass(frozen=True)
class CustomerTable:
    """Validated customers: keys as text, the five features as float64 in original units."""

    keys: npt.NDArray[np.object_]
    features: npt.NDArray[np.float64]
    quality: DataQuality

    def __len__(self) -> int:
        return len(self.keys)


def validate_customers(frame: pd.DataFrame, *, min_rows: int) -> CustomerTable:
    """Check columns and values; raise one :class:`InvalidCustomerData` listing every problem.

    ``min_rows`` is the fewest customers the job can cluster (k + 1 for k segments), so
    that a file too small to cluster is refused before any fitting.
    """
    _check_columns(frame)
    if len(frame) == 0:
        raise InvalidCustomerData("the export has a header but no customer rows")
    problems: list[str] = []
    keys = _customer_keys(frame[CUSTOMER_KEY], problems)
    columns = [_feature_values(feature, frame[feature], problems) for feature in FEATURES]
    if problems:
        raise InvalidCustomerData(
            "the export has invalid values (rows are counted from 1, header excluded):\n  "
            + "\n  ".join(problems)
        )
    if len(frame) < min_rows:
        raise InvalidCustomerData(
            f"n_rows={len(frame)} should be >= {min_rows}: too few customers to find "
            f"{min_rows - 1} segments (k segments need at least k + 1 customers)"
        )
    features = np.column_stack(columns).astype(np.float64)
    return CustomerTable(keys=keys, features=features, quality=_data_quality(keys, features))


def _check_columns(frame: pd.DataFrame) -> None:
    columns = [str(column) for column in frame.columns]
    missing = [column for column in _REQUIRED if column not in columns]
    unknown = [column for column in columns if column not in _ALLOWED]
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    messages = []
    if missing:
        messages.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        messages.append(f"unknown columns: {', '.join(unknown)}")
    if repeated:
        messages.append(f"columns given more than once: {', '.join(repeated)}")
    if messages:
        expected = ", ".join(_REQUIRED)
        raise InvalidCustomerData(
            "; ".join(messages) + f" (expected {expected}, optionally sl_no; "
            "the bank's export headers such as 'Customer Key' are accepted)"
        )


def _first_rows(mask: npt.NDArray[np.bool_], values: pd.Series) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(f"{row + 1} ({values.iloc[row]!r})" for row in rows[:_ROWS_SHOWN])
    more = f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else ""
    return f"rows {shown}{more}"


def _customer_keys(raw: pd.Series, problems: list[str]) -> npt.NDArray[np.object_]:
    text = raw.map(_key_text)
    missing = (text == "").to_numpy()
    if missing.any():
        problems.append(f"{CUSTOMER_KEY}: missing at {_first_rows(missing, raw)}")
    return text.to_numpy(dtype=object)


def _key_text(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _feature_values(feature: str, raw: pd.Series, problems: list[str]) -> npt.NDArray[np.float64]:
    numbers, blank, non_numeric = _as_numbers(raw)
    non_finite = np.isinf(numbers)
    finite = np.isfinite(numbers)
    negative = finite & (numbers < 0)
    rules: list[tuple[str, npt.NDArray[np.bool_]]] = [
        ("missing", blank),
        ("not a number", non_numeric),
        ("not finite", non_finite),
        ("negative", negative),
    ]
    if feature in COUNT_FEATURES:
        rules.append(("not a whole number", finite & (numbers != np.round(numbers))))
    else:
        rules.append(("zero (a credit limit must be positive)", finite & (numbers == 0)))
    for rule, mask in rules:
        if mask.any():
            problems.append(f"{feature}: {rule} at {_first_rows(mask, raw)}")
    return numbers


def _as_numbers(
    raw: pd.Series,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The values as floats, which were blank, and which were present but not numbers."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.isnan(numbers)
        return numbers, blank, np.zeros_like(blank)
    as_text = raw.astype(str).str.strip()
    blank = (raw.isna() | as_text.str.lower().isin(["", "nan", "none", "<na>", "null"])).to_numpy()
    numbers = pd.to_numeric(as_text.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
    return numbers, blank, np.isnan(numbers) & ~blank


def _data_quality(keys: npt.NDArray[np.object_], features: npt.NDArray[np.float64]) -> DataQuality:
    key_series = pd.Series(keys)
    counts = key_series.value_counts(sort=False)
    repeated = counts[counts > 1]
    first_seen = key_series[key_series.isin(repeated.index)].drop_duplicates()
    identical = pd.DataFrame(features).duplicated(keep="first")
    return DataQuality(
        n_rows=len(keys),
        duplicate_keys=tuple(str(key) for key in first_seen.head(_LISTED_DUPLICATES)),
        n_duplicate_keys=len(repeated),
        n_rows_with_duplicate_key=int(repeated.sum()),
        n_identical_feature_rows=int(identical.sum()),
    )
