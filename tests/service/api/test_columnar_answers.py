"""POST /segment/batch?layout=columns: the row answer's values, one list per field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from tests.service.api.test_scoring_routes import as_customers, assert_error, customer
from tests.service.conftest import serve, settings_for

PER_SEGMENT = ("segment_name", "segment_description", "recommended_actions")
ONLY_WHEN_KEYED = ("recorded", "recording_unknown")
"""Row answers leave these out where there is no key; columns hold null there."""


def as_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """A columnar answer turned back into the row answer's results (errors included)."""
    columns, segments = answer["columns"], answer["segments"]
    rows: list[dict[str, Any]] = []
    for position, index in enumerate(columns["index"]):
        row = {
            name: values[position]
            for name, values in columns.items()
            if name != "distances" and not (name in ONLY_WHEN_KEYED and values[position] is None)
        }
        row["distances"] = {sid: values[position] for sid, values in columns["distances"].items()}
        row.update(segments[row["segment_id"]])
        row["index"] = index
        rows.append(row)
    rows += answer["errors"]
    return sorted(rows, key=lambda row: row["index"])


def without_version(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "model_version"} for row in results]


async def both_layouts(
    client: httpx.AsyncClient, **request: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = await client.post("/segment/batch", **request)
    columns = await client.post("/segment/batch", params={"layout": "columns"}, **request)
    assert rows.status_code == columns.status_code == 200, columns.text
    return rows.json(), columns.json()


async def test_the_bank_export_with_bad_items_gives_the_row_answer_as_columns(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    items: list[Any] = as_customers(training_assignments)
    items[5] = customer(avg_credit_limit=-1)
    items.insert(100, {"avg_credit_limit": "lots"})
    items.append(customer(customer_key=None, total_calls_made=99))  # atypical, no key
    rows, columns = await both_layouts(client, json={"customers": items})
    assert columns["model_version"] == rows["model_version"]
    assert columns["counts"] == rows["counts"]
    assert columns["n_errors"] == rows["n_errors"] == 2
    assert columns["size"] == len(items)
    assert [error["index"] for error in columns["errors"]] == [5, 100]
    results = rows["results"]
    assert without_version(as_rows(columns)) == without_version(results)
    assert {row["model_version"] for row in results if "segment_id" in row} == {
        columns["model_version"]
    }
    assert set(columns["segments"]) == set(rows["counts"])
    for segment in columns["segments"].values():
        assert set(segment) == set(PER_SEGMENT)


async def test_a_csv_body_gives_the_same_columns(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    table = training_assignments.head(50)
    header = "customer_key,avg_credit_limit,total_credit_cards,total_visits_bank,"
    header += "total_visits_online,total_calls_made"
    lines = [header] + [
        ",".join(str(row[c]) for c in header.split(",")) for row in table.to_dict("records")
    ]
    csv_request = {"content": "\n".join(lines), "headers": {"Content-Type": "text/csv"}}
    _, from_csv = await both_layouts(client, **csv_request)
    _, from_json = await both_layouts(client, json={"customers": as_customers(table)})
    assert from_csv["columns"] == from_json["columns"]


async def test_an_unknown_layout_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/segment/batch", params={"layout": "sideways"}, json={"customers": [customer()]}
    )
    assert_error(response, 422, "query.layout")


async def test_a_failed_write_marks_only_its_rows_in_the_columns(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(store: CustomerStore, assignments: object) -> None:
        raise StoreUnavailable("OperationalError: refused by the test")

    async with serve(settings_for(models_dir)) as client:
        monkeypatch.setattr(CustomerStore, "record", refuse)
        response = await client.post(
            "/segment/batch",
            params={"layout": "columns"},
            json={"customers": [customer(customer_key=None), customer(customer_key="new-1")]},
        )
    assert response.status_code == 200, response.text
    columns = response.json()["columns"]
    assert columns["customer_key"] == [None, "new-1"]
    assert columns["recorded"] == [None, False]
    assert "recording_unknown" not in columns
