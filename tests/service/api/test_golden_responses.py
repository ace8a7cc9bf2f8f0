"""Golden files: the full answers for a fixed set of real customers, single and batch.

Any change to an answer (a field, a rounding, an ordering, an action) shows up here. After
an intended change, regenerate with ``UPDATE_GOLDEN=1`` set for this module's tests and
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from segmentation.features import FEATURES

GOLDEN = Path(__file__).parent / "golden"
# Customers chosen to cover every segment, a duplicated key and atypical answers.
ROWS = [0, 1, 2, 3, 4, 5, 6, 7, 48, 311, 332, 411, 612, 620, 652, 657, 659]


def customers(training_assignments: pd.DataFrame) -> list[dict[str, Any]]:
    picked = training_assignments.iloc[ROWS]
    return [
        {"customer_key": row["customer_key"], **{f: int(row[f]) for f in FEATURES}}
        for row in picked.to_dict("records")
    ]


def without_version(value: Any) -> Any:
    """The version names the training time; everything else must match to the byte."""
    if isinstance(value, dict):
        return {
            k: "<version>" if k == "model_version" else without_version(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_version(item) for item in value]
    return value


def check(name: str, answer: Any) -> None:
    path = GOLDEN / f"{name}.json"
    normalised = without_version(answer)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(normalised, indent=1, sort_keys=True) + "\n")
    assert normalised == json.loads(path.read_text()), f"{name} differs from {path}"


async def test_single_answers_match_golden_file(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    answers = []
    for payload in customers(training_assignments):
        payload = {k: v for k, v in payload.items() if k != "customer_key"}
        response = await client.post("/segment", json=payload)
        assert response.status_code == 200
        answers.append(response.json())
    check("single", answers)


async def test_batch_answer_matches_golden_file(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    items: list[Any] = customers(training_assignments)
    items.insert(3, {**items[0], "total_credit_cards": 2.5})
    response = await client.post("/segment/batch", json={"customers": items})
    assert response.status_code == 200
    check("batch", response.json())


async def test_catalog_matches_golden_file(client: httpx.AsyncClient) -> None:
    body = (await client.get("/segments")).json()
    for segment in body["segments"]:
        segment.pop("live_size")
    check("segments", body)
