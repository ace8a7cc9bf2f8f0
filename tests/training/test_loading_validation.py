"""Reading exports as they come (CSV with BOM, snake_case, .xlsx, Parquet) and validating them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation.features import BANK_COLUMN_NAMES, CUSTOMER_KEY, FEATURES, ROW_NUMBER
from training.job import TrainingResult
from training.loading import InvalidCustomerData, read_customer_file
from training.validation import validate_customers

SNAKE_CASE = BANK_COLUMN_NAMES
ExportWriter = Callable[..., Path]


def _valid_frame(n_rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_KEY: [str(1000 + row) for row in range(n_rows)],
            "avg_credit_limit": ["10000"] * n_rows,
            "total_credit_cards": ["2"] * n_rows,
            "total_visits_bank": ["1"] * n_rows,
            "total_visits_online": ["3"] * n_rows,
            "total_calls_made": ["4"] * n_rows,
        }
    )


def _write_format(kind: str, frame: pd.DataFrame, tmp_path: Path, write: ExportWriter) -> Path:
    if kind == "snake_case_csv":
        return write("snake.csv", rename=SNAKE_CASE, bom=False)
    if kind == "xlsx":
        path = tmp_path / "export.xlsx"
        frame.to_excel(path, index=False, engine="openpyxl")
        return path
    path = tmp_path / "export.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_bank_export_with_bom_reads_as_snake_case(bank_export: Path) -> None:
    assert bank_export.read_bytes().startswith(b"\xef\xbb\xbfSl_No,Customer Key,")
    export = read_customer_file(bank_export)
    assert list(export.frame.columns) == [ROW_NUMBER, CUSTOMER_KEY, *FEATURES]
    assert export.frame[CUSTOMER_KEY].iloc[0] == "87073"
    assert len(export.frame) == 660


@pytest.mark.parametrize("kind", ["snake_case_csv", "xlsx", "parquet"])
def test_export_formats_validate_to_same_customers(
    kind: str,
    bank_export: Path,
    bank_frame: pd.DataFrame,
    tmp_path: Path,
    write_export: ExportWriter,
) -> None:
    reference = validate_customers(read_customer_file(bank_export).frame, min_rows=3)
    path = _write_format(kind, bank_frame, tmp_path, write_export)
    export = read_customer_file(path)
    customers = validate_customers(export.frame, min_rows=3)
    assert export.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert customers.keys.tolist() == reference.keys.tolist()
    np.testing.assert_array_equal(customers.features, reference.features)


@pytest.mark.parametrize("kind", ["snake_case_csv", "xlsx", "parquet"])
def test_export_formats_train_to_same_segment_sizes(
    kind: str,
    bank_frame: pd.DataFrame,
    tmp_path: Path,
    write_export: ExportWriter,
    trained: TrainingResult,
    quick_train: Callable[..., TrainingResult],
) -> None:
    path = _write_format(kind, bank_frame, tmp_path, write_export)
    result = quick_train(tmp_path / "models", data=path)
    sizes = {s.segment_id: s.size for s in result.manifest.segments}
    expected = {s.segment_id: s.size for s in trained.manifest.segments}
    assert (
        sizes == expected == {"branch-loyal": 386, "support-seeking": 224, "digital-affluent": 50}
    )
    assert result.manifest.data_source == str(path)
    assert result.manifest.n_rows == 660


def test_validation_names_first_five_rows_and_counts_the_rest() -> None:
    frame = _valid_frame(9)
    frame.loc[1:7, "total_calls_made"] = "many"
    with pytest.raises(InvalidCustomerData) as raised:
        validate_customers(frame, min_rows=3)
    message = str(raised.value)
    assert "total_calls_made: not a number at rows 2 ('many'), 3 ('many')" in message
    assert "6 ('many') and 2 more" in message
    assert "7 ('many')" not in message


def test_validation_lists_every_problem_in_one_message() -> None:
    frame = _valid_frame()
    frame.loc[0, "avg_credit_limit"] = "-5"
    frame.loc[3, "total_credit_cards"] = "1.5"
    frame.loc[4, CUSTOMER_KEY] = " "
    with pytest.raises(InvalidCustomerData) as raised:
        validate_customers(frame, min_rows=3)
    lines = str(raised.value).splitlines()
    assert lines[1:] == [
        "  customer_key: missing at rows 5 (' ')",
        "  avg_credit_limit: negative at rows 1 ('-5')",
        "  total_credit_cards: not a whole number at rows 4 ('1.5')",
    ]


def test_validation_refuses_a_column_given_twice() -> None:
    frame = _valid_frame()
    frame.columns = [CUSTOMER_KEY, *FEATURES[:-1], "avg_credit_limit"]
    with pytest.raises(InvalidCustomerData, match="missing columns: total_calls_made") as raised:
        validate_customers(frame, min_rows=3)
    assert "columns given more than once: avg_credit_limit" in str(raised.value)


def test_validation_counts_duplicate_keys_without_refusing() -> None:
    frame = _valid_frame()
    frame.at[4, CUSTOMER_KEY] = "1001"  # the key of row 2
    frame.loc[5, "total_calls_made"] = "9"
    customers = validate_customers(frame, min_rows=3)
    assert len(customers) == 6
    assert customers.quality.n_duplicate_keys == 1
    assert customers.quality.n_rows_with_duplicate_key == 2
    assert customers.quality.duplicate_keys == ("1001",)
    assert customers.quality.n_identical_feature_rows == 4


def test_validation_accepts_numeric_columns_from_binary_formats() -> None:
    frame = pd.DataFrame(
        {
            CUSTOMER_KEY: [87073.0, 38414.0, 17341.0],
            "avg_credit_limit": [100000, 50000, 50000],
            "total_credit_cards": [2.0, 3.0, 7.0],
            "total_visits_bank": [1, 0, 1],
            "total_visits_online": [1, 10, 3],
            "total_calls_made": [0, 9, 4],
        }
    )
    customers = validate_customers(frame, min_rows=3)
    assert customers.keys.tolist() == ["87073", "38414", "17341"]
    assert customers.features[2].tolist() == [50000.0, 7.0, 1.0, 3.0, 4.0]


def test_validation_refuses_nan_in_numeric_column() -> None:
    frame = _valid_frame().astype({"total_visits_bank": float})
    frame.loc[2, "total_visits_bank"] = np.nan
    with pytest.raises(InvalidCustomerData, match=r"total_visits_bank: missing at rows 3 "):
        validate_customers(frame, min_rows=3)
