"""Vectorised screening of batch items: the common, valid case without a model per item.

Validating ten thousand customers one pydantic model at a time costs more than scoring
them. Screening checks the whole batch at once against the very bounds declared on
:class:`~service.schemas.CustomerFeatures` (read from its fields, not restated here) and
passes on only the items it cannot vouch for; those are validated item by item, which
also gives them their precise error messages. A property test holds the two paths equal.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import annotated_types
import numpy as np
import numpy.typing as npt

from segmentation.features import COUNT_FEATURES, CUSTOMER_KEY, CUSTOMER_KEY_MAX_LENGTH, FEATURES
from service.schemas import CustomerFeatures

_ALLOWED_FIELDS = frozenset((*FEATURES, CUSTOMER_KEY))
_FEATURE_VALUES = operator.itemgetter(*FEATURES)
_NUMBER_TYPES = frozenset({int, float})
# A key the schema would accept unchanged: 1 to CUSTOMER_KEY_MAX_LENGTH characters, no
# control characters, nothing for its whitespace stripping to remove.
_PLAIN_KEY = re.compile(rf"(?!\s)[^\x00-\x1f\x7f]{{1,{CUSTOMER_KEY_MAX_LENGTH}}}(?<!\s)")


def _bound(feature: str, kind: type[Any]) -> float:
    for constraint in CustomerFeatures.model_fields[feature].metadata:
        if isinstance(constraint, kind):
            return float(getattr(constraint, kind.__name__.lower()))
    return math.nan


_LOWER_EXCLUSIVE = np.array([_bound(f, annotated_types.Gt) for f in FEATURES])
_LOWER_INCLUSIVE = np.array([_bound(f, annotated_types.Ge) for f in FEATURES])
_UPPER_INCLUSIVE = np.array([_bound(f, annotated_types.Le) for f in FEATURES])
_WHOLE = np.array([feature in COUNT_FEATURES for feature in FEATURES])


@dataclass(frozen=True)
class Screened:
    """Items screening vouched for, and the indices it leaves to per-item validation."""

    positions: list[int]
    features: npt.NDArray[np.float64]
    keys: list[str | None]
    leftovers: list[int]


def screen_items(items: Sequence[Any]) -> Screened:
    """Split a batch into valid items (as arrays) and the indices that need a closer look."""
    candidates, rows, raw_keys, leftovers = [], [], [], []
    for index, item in enumerate(items):
        if type(item) is dict and item.keys() <= _ALLOWED_FIELDS and len(item) >= len(FEATURES):
            try:
                rows.append(_FEATURE_VALUES(item))
            except KeyError:
                leftovers.append(index)
                continue
            candidates.append(index)
            raw_keys.append(item.get(CUSTOMER_KEY))
        else:
            leftovers.append(index)
    good = _good_numbers(rows) & _good_keys(raw_keys)
    features = _as_array(rows)
    good[good] &= _within_bounds(features[good])
    positions = [index for index, keep in zip(candidates, good.tolist(), strict=True) if keep]
    leftovers += [index for index, keep in zip(candidates, good.tolist(), strict=True) if not keep]
    leftovers.sort()
    keys = [
        None if key is None else str(key)
        for key, keep in zip(raw_keys, good.tolist(), strict=True)
        if keep
    ]
    return Screened(positions=positions, features=features[good], keys=keys, leftovers=leftovers)


def screen_cells(
    feature_cells: Sequence[Sequence[str]], key_cells: Sequence[str] | None
) -> tuple[npt.NDArray[np.float64], list[str | None], npt.NDArray[np.bool_]]:
    """Text columns (a CSV's, one sequence of cells per feature) screened at once.

    Returns the features, the keys (stripped, None when blank) and which rows screening
    vouches for. A cell is read as Python's ``float`` reads it (numpy converts text the
    same way), which gives the value per-item validation gives after parsing the cell, but
    only in ASCII without digit separators (see :func:`is_plain_number_text`).
    """
    features = np.column_stack([_cells_as_floats(cells) for cells in feature_cells])
    keys: list[str | None] = (
        [cell.strip() or None for cell in key_cells] if key_cells else [None] * len(features)
    )
    return features, keys, _good_keys(keys) & _within_bounds(features)


def _cells_as_floats(cells: Sequence[str]) -> npt.NDArray[np.float64]:
    if is_plain_number_text("".join(cells)):
        try:
            return np.array(cells, dtype=np.float64)
        except ValueError:  # some cell is not a number: that row is left to validation
            pass
    return np.array([_float_or_nan(cell) for cell in cells], dtype=np.float64)


def _float_or_nan(cell: str) -> float:
    if not is_plain_number_text(cell):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return math.nan


def is_plain_number_text(text: str) -> bool:
    """Whether ``text`` could be numbers as JSON writes them: ASCII, without the digit
    separators and the other scripts' digits that Python's ``float`` (and numpy) accept
    (``1_000``, or fullwidth and Arabic-Indic digits)."""
    return text.isascii() and "_" not in text


def _good_numbers(rows: list[tuple[Any, ...]]) -> npt.NDArray[np.bool_]:
    """Rows whose five values are all plain ints or floats (not bools, strings, None)."""
    if {type(value) for value in itertools.chain.from_iterable(rows)} <= _NUMBER_TYPES:
        return np.ones(len(rows), dtype=bool)
    return np.array([_numbers_only(row) for row in rows], dtype=bool)


def _numbers_only(row: tuple[Any, ...]) -> bool:
    return all(type(value) in _NUMBER_TYPES for value in row)


def _good_keys(keys: list[Any]) -> npt.NDArray[np.bool_]:
    return np.array(
        [
            key is None
            or (type(key) is str and _PLAIN_KEY.fullmatch(key) is not None)
            or (type(key) is int and abs(key) < 10**63)
            for key in keys
        ],
        dtype=bool,
    )


def _as_array(rows: list[tuple[Any, ...]]) -> npt.NDArray[np.float64]:
    """The rows as floats; a row that is not all numbers, or too large, becomes NaN."""
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    except (TypeError, ValueError, OverflowError):
        return np.array([_row_values(row) for row in rows], dtype=np.float64).reshape(
            len(rows), len(FEATURES)
        )


def _row_values(row: tuple[Any, ...]) -> list[float]:
    if _numbers_only(row):
        try:
            return [float(value) for value in row]
        except OverflowError:  # an integer beyond any float: beyond every bound as well
            pass
    return [math.nan] * len(row)


def _within_bounds(features: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(features)
        ok &= ~(features <= _LOWER_EXCLUSIVE)
        ok &= ~(features < _LOWER_INCLUSIVE)
        ok &= ~(features > _UPPER_INCLUSIVE)
        ok &= ~_WHOLE | (features == np.floor(features))
    return np.asarray(ok.all(axis=1), dtype=bool)
