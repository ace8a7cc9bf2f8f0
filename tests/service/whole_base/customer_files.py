"""Factories for whole-base tests: customer files and folders, the service's own answers
for the same customers, and the command's answer read back."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as arrow
import pyarrow.parquet as parquet

from service.whole_base.chunk_scoring import refusal_text
from tests.service.conftest import serve, settings_for
from training.synthetic import generate_customers

COMPARED = ("customer_key", "segment_id", "confidence", "atypical", "model_version", "error")
"""What must equal the service's answer, row by row."""

BANK_HEADER = (
    "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    "Total_visits_online,Total_calls_made"
)


def synthetic_customers(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Synthetic customers with the bank's export columns (``Sl_No`` included)."""
    return generate_customers(rows, seed=seed)


def write_parquet(frame: pd.DataFrame, path: Path, *, row_group_size: int = 250) -> Path:
    """``frame`` as Parquet in small row groups, so that Dask cuts it into several pieces."""
    table = arrow.Table.from_pandas(frame, preserve_index=False)
    parquet.write_table(table, path, row_group_size=row_group_size)
    return path


def answers_of_the_service(models_dir: Path, bodies: list[bytes]) -> list[dict[str, Any]]:
    """What ``POST /segment/batch`` answers for each CSV body, as output rows, in order."""
    return asyncio.run(_post_batches(models_dir, bodies))


async def _post_batches(models_dir: Path, bodies: list[bytes]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with serve(settings_for(models_dir)) as client:
        for body in bodies:
            response = await client.post(
                "/segment/batch", content=body, headers={"content-type": "text/csv"}
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            rows += [_as_output_row(answer["model_version"], item) for item in answer["results"]]
    return rows


def _as_output_row(version: str, result: dict[str, Any]) -> dict[str, Any]:
    error = result.get("error")
    return {
        "customer_key": result["customer_key"],
        "segment_id": result.get("segment_id"),
        "confidence": result.get("confidence"),
        "atypical": result.get("atypical"),
        "model_version": version,
        "error": refusal_text(error) if error else None,
    }


def read_answer(path: Path) -> list[dict[str, Any]]:
    """The command's output, Parquet or CSV, with CSV cells typed as Parquet has them."""
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = parquet.read_table(path).to_pylist()
        return rows
    return [_typed(row) for row in csv.DictReader(io.StringIO(path.read_text()))]


def _typed(row: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {name: value or None for name, value in row.items()}
    if typed["confidence"] is not None:
        typed["confidence"] = float(typed["confidence"])
    if typed["atypical"] is not None:
        typed["atypical"] = typed["atypical"] == "true"
    return typed


def compared(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields that must equal the service's, of each row."""
    return [{name: row[name] for name in COMPARED} for row in rows]
