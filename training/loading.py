"""Reading customer exports (CSV, Excel, Parquet) into a frame with snake_case columns."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from segmentation.features import canonical_column_name

logger = logging.getLogger(__name__)

SAMPLE_DATA_NAME = "credit_card_customer_data.csv"


class InvalidCustomerData(ValueError):
    """The export cannot be trained on; the message says which columns and rows, and why."""


@dataclass(frozen=True)
class CustomerExport:
    """An export as read: its columns renamed to snake_case, its source and its sha256."""

    frame: pd.DataFrame
    source: str
    sha256: str


def sample_data_path() -> Path:
    """The bundled copy of the bank's export, the default training data."""
    return Path(str(resources.files("training") / "sample_data" / SAMPLE_DATA_NAME))


def read_customer_file(path: Path) -> CustomerExport:
    """Read a CSV, ``.xlsx`` or Parquet export; everything stays as found (validated later).

    CSV is read with every column as text so that validation, not the reader, decides
    what is numeric and can name the offending rows.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise InvalidCustomerData(f"--data {path}: no such file") from None
    except IsADirectoryError:
        raise InvalidCustomerData(f"--data {path}: is a directory, not a file") from None
    if not content:
        raise InvalidCustomerData(f"--data {path}: the file is empty")
    frame = _parse(path, content)
    frame.columns = [canonical_column_name(str(column)) for column in frame.columns]
    logger.info("read %d rows from %s", len(frame), path)
    return CustomerExport(frame=frame, source=str(path), sha256=hashlib.sha256(content).hexdigest())


def _parse(path: Path, content: bytes) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in {".xlsx", ".xlsm"}:
            return pd.read_excel(path, dtype=object, engine="openpyxl")
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise InvalidCustomerData(f"--data {path}: the file has no header and no rows") from None
    # A damaged .xlsx fails inside zipfile (not a zip, or a zip without a workbook).
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        ValueError,
        OSError,
        zipfile.BadZipFile,
        KeyError,
    ) as error:
        raise InvalidCustomerData(
            f"--data {path}: cannot be read as {suffix or 'CSV'}: {error}"
        ) from None
