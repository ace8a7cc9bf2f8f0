"""Factories for the training tests: the bank's export with one thing changed, and quick runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.job import TrainingOptions, TrainingResult, train


def _read_export(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_bytes().decode("utf-8-sig").splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:] if line]


@pytest.fixture(scope="session")
def bank_frame(bank_export: Path) -> pd.DataFrame:
    """The bank's export as a frame with the bank's own headers (integers throughout)."""
    return pd.read_csv(bank_export, encoding="utf-8-sig")


@pytest.fixture
def write_export(bank_export: Path, tmp_path: Path) -> Callable[..., Path]:
    """Write the bank's export (BOM, CRLF, bank headers) to ``tmp_path`` with one change.

    Keywords: ``cell=(row, column, text)`` replaces one value (``row`` counts data rows
    from 1, as the error messages do); ``drop_column`` / ``add_column=(name, text)``;
    ``n_rows`` keeps the first rows only; ``rename`` maps headers; ``bom=False``.
    """
    header, rows = _read_export(bank_export)

    def write(
        name: str = "export.csv",
        *,
        cell: tuple[int, str, str] | None = None,
        drop_column: str | None = None,
        add_column: tuple[str, str] | None = None,
        n_rows: int | None = None,
        rename: dict[str, str] | None = None,
        bom: bool = True,
    ) -> Path:
        names = list(header)
        table = [list(row) for row in rows[:n_rows]]
        if cell is not None:
            row, column, text = cell
            table[row - 1][names.index(column)] = text
        if drop_column is not None:
            position = names.index(drop_column)
            names.pop(position)
            for values in table:
                values.pop(position)
        if add_column is not None:
            names.append(add_column[0])
            for values in table:
                values.append(add_column[1])
        names = [(rename or {}).get(column, column) for column in names]
        lines = [",".join(names), *(",".join(values) for values in table)]
        path = tmp_path / name
        path.write_bytes(("\ufeff" if bom else "").encode() + "\r\n".join(lines).encode() + b"\r\n")
        return path

    return write


@pytest.fixture
def quick_train() -> Callable[..., TrainingResult]:
    """Train with two bootstrap resamples and k swept over 2..3 unless told otherwise."""

    def run(models_dir: Path, **options: Any) -> TrainingResult:
        settings: dict[str, Any] = {"n_bootstrap": 2, "k_max": 3, **options}
        return train(TrainingOptions(models_dir=models_dir, **settings))

    return run


@pytest.fixture(scope="session")
def trained_manifest(trained: TrainingResult) -> dict[str, Any]:
    """The manifest of the default run as written to disk (with its ``files``)."""
    manifest: dict[str, Any] = json.loads((trained.path / "manifest.json").read_text())
    return manifest
