"""POST /segment and POST /segment/batch, through HTTP on the ASGI app."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from segmentation.features import FEATURES
from tests.service.conftest import serve, settings_for
from training.job import TrainingResult

BANK_COLUMNS = (
    "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    "Total_visits_online,Total_calls_made"
)


def customer(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer_key": "87073",
        "avg_credit_limit": 100000,
        "total_credit_cards": 2,
        "total_visits_bank": 1,
        "total_visits_online": 1,
        "total_calls_made": 0,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


def as_customers(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"customer_key": row["customer_key"], **{f: int(row[f]) for f in FEATURES}}
        for row in table.to_dict("records")
    ]


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if field is not None:
        assert field in {item["field"] for item in error["details"]}, error


async def test_score_customer_returns_full_assignment(client: httpx.AsyncClient) -> None:
    response = await client.post("/segment", json=customer())
    assert response.status_code == 200
    body = response.json()
    assert body["customer_key"] == "87073"
    assert body["segment_id"] in body["distances"]
    assert set(body["recommended_actions"]) == {"marketing", "service"}
    assert body["recommended_actions"]["marketing"]
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["runner_up_segment_id"] != body["segment_id"]
    nearest = min(body["distances"], key=body["distances"].get)
    assert nearest == body["segment_id"]
    assert isinstance(body["atypical"], bool)
    assert body["model_version"]


async def test_score_customer_accepts_integer_key_and_no_key(client: httpx.AsyncClient) -> None:
    with_int = await client.post("/segment", json=customer(customer_key=87073))
    without = await client.post("/segment", json=customer(customer_key=...))
    assert with_int.json()["customer_key"] == "87073"
    assert without.status_code == 200
    assert without.json()["customer_key"] is None
    assert without.json()["segment_id"] == with_int.json()["segment_id"]


async def test_score_customer_flags_values_beyond_training_range(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/segment", json=customer(total_calls_made=60))
    body = response.json()
    assert body["atypical"] is True
    assert "total_calls_made_above_training_range" in body["atypical_reasons"]


async def test_every_bank_customer_one_by_one_gets_its_training_segment(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    for expected, payload in zip(
        training_assignments["segment_id"], as_customers(training_assignments), strict=True
    ):
        response = await client.post("/segment", json=payload)
        assert response.status_code == 200
        assert response.json()["segment_id"] == expected, payload


async def test_batch_json_of_every_bank_customer_matches_training(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    response = await client.post(
        "/segment/batch", json={"customers": as_customers(training_assignments)}
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(660))
    assert [r["segment_id"] for r in body["results"]] == training_assignments["segment_id"].tolist()
    assert sum(body["counts"].values()) == 660
    assert sorted(body["counts"].values()) == [50, 224, 386]


async def test_batch_csv_of_the_bank_export_matches_training(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame, bank_export: Path
) -> None:
    response = await client.post(
        "/segment/batch", content=bank_export.read_bytes(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["segment_id"] for r in results] == training_assignments["segment_id"].tolist()
    assert [r["customer_key"] for r in results] == training_assignments["customer_key"].tolist()


async def test_batch_csv_upload_as_multipart_file(
    client: httpx.AsyncClient, bank_export: Path
) -> None:
    response = await client.post(
        "/segment/batch", files={"file": ("customers.csv", bank_export.read_bytes(), "text/csv")}
    )
    assert response.status_code == 200
    assert len(response.json()["results"]) == 660


async def test_batch_reports_invalid_item_and_scores_the_rest(client: httpx.AsyncClient) -> None:
    items = [customer(), customer(total_credit_cards=2.5), customer(avg_credit_limit="lots")]
    response = await client.post("/segment/batch", json={"customers": items})
    assert response.status_code == 200
    body = response.json()
    assert body["n_errors"] == 2
    first, second, third = body["results"]
    assert first["index"] == 0 and first["segment_id"]
    assert second["index"] == 1 and second["error"]["details"][0]["field"] == "total_credit_cards"
    assert third["index"] == 2 and third["error"]["details"][0]["field"] == "avg_credit_limit"
    assert sum(body["counts"].values()) == 1


async def test_batch_strict_rejects_whole_batch_with_invalid_item(
    client: httpx.AsyncClient,
) -> None:
    items = [customer(), customer(total_visits_bank=-1)]
    response = await client.post("/segment/batch?strict=true", json={"customers": items})
    assert_error(response, 422, "customers.1.total_visits_bank")


async def test_batch_csv_reports_bad_row_by_index(client: httpx.AsyncClient) -> None:
    csv = f"{BANK_COLUMNS}\n1,50000,3,0,10,9\n2,abc,3,0,10,9\n3,50000,3,0,10,\n"
    response = await client.post(
        "/segment/batch", content=csv, headers={"content-type": "text/csv"}
    )
    results = response.json()["results"]
    assert "segment_id" in results[0]
    assert results[1]["error"]["details"][0]["field"] == "avg_credit_limit"
    assert results[2]["error"]["details"][0]["field"] == "total_calls_made"


@pytest.mark.parametrize(
    "cell", ["1_000", "\uff11\uff10\uff10\uff10", "\u0663\u0660\u0660\u0660", "0x10"]
)
async def test_batch_csv_takes_only_ascii_decimal_numbers(
    client: httpx.AsyncClient, cell: str
) -> None:
    """Python's float (and numpy) read digit separators and other scripts' digits; JSON
    numbers cannot hold them, and neither may a CSV cell."""
    rows = [f"{i},50000,3,0,10,9" for i in range(1, 4)]
    rows[1] = f"2,50000,{cell},0,10,9"
    response = await client.post(
        "/segment/batch",
        content=f"{BANK_COLUMNS}\n" + "\n".join(rows) + "\n",
        headers={"content-type": "text/csv"},
    )
    results = response.json()["results"]
    assert "segment_id" in results[0] and "segment_id" in results[2]
    assert results[1]["error"]["details"][0]["field"] == "total_credit_cards"


@pytest.mark.parametrize(
    ("csv", "field"),
    [
        (
            "Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,Total_visits_online\n1,2,3,4\n",
            "total_calls_made",
        ),
        (f"{BANK_COLUMNS},Income\n1,50000,3,0,10,9,7\n", "income"),
        ("", None),
    ],
)
async def test_batch_csv_with_wrong_columns_is_rejected(
    client: httpx.AsyncClient, csv: str, field: str | None
) -> None:
    response = await client.post(
        "/segment/batch", content=csv, headers={"content-type": "text/csv"}
    )
    assert_error(response, 422, field)


async def test_batch_beyond_max_size_is_413_naming_the_limit(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, max_batch_size=2)) as client:
        response = await client.post("/segment/batch", json={"customers": [customer()] * 3})
    assert_error(response, 413)
    assert "2" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"customers": "not a list"},
        {"clients": []},
        [customer()],
    ],
)
async def test_batch_with_wrong_envelope_is_422(client: httpx.AsyncClient, body: Any) -> None:
    assert_error(await client.post("/segment/batch", json=body), 422)


async def test_batch_with_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/segment/batch", content=b"<customers/>", headers={"content-type": "application/xml"}
    )
    assert_error(response, 415)


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"avg_credit_limit": 0}, "avg_credit_limit", "greater_than"),
        ({"avg_credit_limit": -5}, "avg_credit_limit", "greater_than"),
        ({"avg_credit_limit": 1e12}, "avg_credit_limit", "less_than_equal"),
        ({"avg_credit_limit": "100000"}, "avg_credit_limit", "float_type"),
        ({"total_credit_cards": 2.5}, "total_credit_cards", "whole_number"),
        ({"total_credit_cards": -1}, "total_credit_cards", "greater_than_equal"),
        ({"total_credit_cards": "2"}, "total_credit_cards", "int_type"),
        ({"total_credit_cards": True}, "total_credit_cards", "int_type"),
        ({"total_visits_bank": None}, "total_visits_bank", "int_type"),
        ({"total_visits_online": ...}, "total_visits_online", "missing"),
        ({"total_calls_made": 10**9}, "total_calls_made", "less_than_equal"),
        ({"customer_key": ""}, "customer_key", "string_too_short"),
        ({"customer_key": "a\x00b"}, "customer_key", "string_pattern_mismatch"),
        ({"customer_key": [1]}, "customer_key", "customer_key_type"),
        ({"income": 5}, "income", "extra_forbidden"),
    ],
)
async def test_score_customer_rejects_invalid_field_naming_field_and_rule(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str, rule: str
) -> None:
    response = await client.post("/segment", json=customer(**changes))
    assert_error(response, 422, field)
    assert rule in {item["rule"] for item in response.json()["error"]["details"]}


async def test_score_customer_accepts_whole_float_count(client: httpx.AsyncClient) -> None:
    response = await client.post("/segment", json=customer(total_credit_cards=2.0))
    assert response.status_code == 200


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"avg_credit_limit": 1,}'])
async def test_score_customer_with_malformed_json_is_400(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        "/segment", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 400)
    assert response.json()["error"]["code"] == "malformed_body"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_score_customer_rejects_non_finite_literal_as_422(
    client: httpx.AsyncClient, literal: bytes
) -> None:
    raw = (
        b'{"avg_credit_limit": %s, "total_credit_cards": 2, "total_visits_bank": 1,'
        b' "total_visits_online": 1, "total_calls_made": 0}' % literal
    )
    response = await client.post(
        "/segment", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "avg_credit_limit")


async def test_unknown_route_is_404_and_wrong_method_405(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nowhere"), 404)
    assert_error(await client.get("/segment"), 405)


async def test_the_banks_export_names_get_one_error_naming_the_mapping(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "Customer Key": "87073",
        "Avg_Credit_Limit": 100000,
        "Total_Credit_Cards": 2,
        "Total_visits_bank": 1,
        "Total_visits_online": 1,
        "Total_calls_made": 0,
    }
    response = await client.post("/segment", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "Avg_Credit_Limit -> avg_credit_limit" in error["message"]
    assert "Customer Key -> customer_key" in error["message"]
    assert {(item["field"], item["rule"]) for item in error["details"]} == {
        (name, "export_column_name") for name in body
    }


async def test_a_key_alone_is_pointed_to_the_customer_look_up(client: httpx.AsyncClient) -> None:
    alone = await client.post("/segment", json={"customer_key": "87073"})
    assert alone.status_code == 422
    assert "GET /customers/{customer_key}" in alone.json()["error"]["message"]
    assert {item["field"] for item in alone.json()["error"]["details"]} == set(FEATURES)
    empty = await client.post("/segment", json={})
    assert empty.status_code == 422
    assert "GET /customers" not in empty.json()["error"]["message"]


BANK_HEADER = (
    "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
    "Total_visits_online,Total_calls_made"
)


async def test_invalid_rows_keep_their_key_and_empty_cells_are_missing(
    client: httpx.AsyncClient,
) -> None:
    body = f"{BANK_HEADER}\nk1,,2,1,1,0\nk2,1000,x,1,1,0\n,1000,2,1,1,0,9\nk4,1000,2,1,1,0,9\n"
    csv_answer = await client.post(
        "/segment/batch", content=body, headers={"Content-Type": "text/csv"}
    )
    results = csv_answer.json()["results"]
    assert [result["customer_key"] for result in results] == ["k1", "k2", None, "k4"]
    assert results[0]["error"]["details"] == [
        {"field": "avg_credit_limit", "rule": "missing", "message": "Field required"}
    ]
    assert results[1]["error"]["details"][0]["field"] == "total_credit_cards"
    assert all(result["error"]["details"][0]["rule"] == "too_many_cells" for result in results[2:])
    json_answer = await client.post(
        "/segment/batch",
        json={"customers": [{"customer_key": 7, "avg_credit_limit": -1}, {"customer_key": ""}]},
    )
    assert [r["customer_key"] for r in json_answer.json()["results"]] == ["7", None]


@pytest.mark.parametrize("separator", [";", "\t"])
async def test_semicolon_and_tab_separated_files_are_read_like_commas(
    client: httpx.AsyncClient, separator: str
) -> None:
    rows = f"{BANK_HEADER}\n87073,100000,2,1,1,0\n38414,50000,3,0,10,9\n"
    comma = await client.post("/segment/batch", content=rows, headers={"Content-Type": "text/csv"})
    other = await client.post(
        "/segment/batch",
        content=rows.replace(",", separator),
        headers={"Content-Type": "text/csv"},
    )
    assert other.status_code == 200 and other.json()["n_errors"] == 0
    assert other.json()["results"] == comma.json()["results"]


async def test_a_workbook_is_refused_with_send_csv(client: httpx.AsyncClient) -> None:
    workbook = b"PK\x03\x04" + bytes(200)  # how every .xlsx (a ZIP archive) begins
    response = await client.post(
        "/segment/batch", files={"file": ("customers.xlsx", workbook, "application/octet-stream")}
    )
    assert response.status_code == 415
    assert "save it as CSV" in response.json()["error"]["message"]


async def test_a_batch_answer_comes_as_csv_when_asked(client: httpx.AsyncClient) -> None:
    customers = {
        "customers": [
            {"customer_key": "=cmd", "avg_credit_limit": 100000, "total_credit_cards": 2,
             "total_visits_bank": 1, "total_visits_online": 1, "total_calls_made": 0},
            {"customer_key": "bad", "avg_credit_limit": 0},
        ]
    }  # fmt: skip
    as_json = (await client.post("/segment/batch", json=customers)).json()["results"]
    for request in (
        {"headers": {"Accept": "text/csv"}},
        {"params": {"format": "csv"}},
    ):
        response = await client.post("/segment/batch", json=customers, **request)  # type: ignore[arg-type]
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [row["index"] for row in rows] == ["0", "1"]
        scored, refused = rows
        assert scored["customer_key"] == "'=cmd"  # spreadsheet-safe
        assert scored["segment_id"] == as_json[0]["segment_id"]
        assert float(scored["confidence"]) == as_json[0]["confidence"]
        for segment_id, distance in as_json[0]["distances"].items():
            assert float(scored[f"distance_{segment_id}"]) == distance
        assert scored["recorded"] == "true" and scored["error"] == ""
        assert refused["customer_key"] == "bad" and refused["segment_id"] == ""
        assert "avg_credit_limit" in refused["error"]
    both = await client.post(
        "/segment/batch", json=customers, params={"format": "csv", "layout": "columns"}
    )
    assert both.status_code == 200 and both.text.startswith("index,customer_key,")  # rows


async def test_answers_say_the_segment_and_each_atypical_reason_in_words(
    client: httpx.AsyncClient, trained: TrainingResult
) -> None:
    customer = {
        "avg_credit_limit": 250000,
        "total_credit_cards": 2,
        "total_visits_bank": 1,
        "total_visits_online": 1,
        "total_calls_made": 0,
    }
    single = (await client.post("/segment", json=customer)).json()
    described = {s.segment_id: s.description for s in trained.manifest.segments}
    assert single["segment_description"] == described[single["segment_id"]]
    assert single["atypical_reasons"][0] == "avg_credit_limit_above_training_range"
    assert single["atypical_explanations"][0] == (
        "average credit limit above anything seen in training: 250,000 > 200,000"
    )
    assert len(single["atypical_explanations"]) == len(single["atypical_reasons"])
    batch = (await client.post("/segment/batch", json={"customers": [customer]})).json()
    assert batch["results"][0]["atypical_explanations"] == single["atypical_explanations"]
    columns = (
        await client.post(
            "/segment/batch", params={"layout": "columns"}, json={"customers": [customer]}
        )
    ).json()
    assert columns["columns"]["atypical_explanations"] == [single["atypical_explanations"]]
    segment = columns["segments"][single["segment_id"]]
    assert segment["segment_description"] == single["segment_description"]
