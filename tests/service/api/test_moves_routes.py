"""POST /segment/moves and GET /segments/{id}/prospects over HTTP: every suggested change,
scored through POST /segment, lands in its target; what was fixed stays; counts are whole and
inside the training range; prospects are ranked, paged and exported like the members."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from segmentation.features import COUNT_FEATURES, FEATURES
from service.schema_examples import CUSTOMER
from tests.service.conftest import serve, settings_for
from training.job import TrainingResult

SEGMENTS = ("branch-loyal", "support-seeking", "digital-affluent")


def ranges(trained: TrainingResult) -> dict[str, tuple[float, float]]:
    scoring = trained.manifest.scoring
    return {name: (scoring.feature_min[name], scoring.feature_max[name]) for name in FEATURES}


async def check_moves(
    client: httpx.AsyncClient,
    customer: dict[str, Any],
    answer: dict[str, Any],
    fixed: list[str],
    training_ranges: dict[str, tuple[float, float]],
) -> int:
    """Every reachable move of ``answer``, applied to ``customer`` and scored through
    POST /segment, lands in its target; the number of such moves."""
    checked = 0
    for move in answer["moves"]:
        if not move["reachable"]:
            assert fixed and move["reason"]
            continue
        values = move["values"]
        for name in FEATURES:
            if name in fixed or name not in move["changes"]:
                assert values[name] == customer[name]
                continue
            assert values[name] - customer[name] == move["changes"][name]
            low, high = training_ranges[name]
            assert low <= values[name] <= high
            assert values[name] == int(values[name]) >= 0
            if name in COUNT_FEATURES:
                assert type(values[name]) is int
        scored = await client.post("/segment", json=values)
        assert scored.status_code == 200
        assert scored.json()["segment_id"] == move["segment_id"]
        checked += 1
    return checked


async def test_every_known_customer_by_key_moves_into_every_other_segment(
    client: httpx.AsyncClient, trained: TrainingResult, training_assignments: pd.DataFrame
) -> None:
    training_ranges = ranges(trained)
    known = training_assignments.drop_duplicates("customer_key", keep="last")
    checked = 0
    for row in known.to_dict("records"):
        key = str(row["customer_key"])
        answer = (await client.post("/segment/moves", json={"customer_key": key})).json()
        assert answer["customer_key"] == key
        assert answer["segment_id"] == row["segment_id"]
        assert {move["segment_id"] for move in answer["moves"]} == {
            segment for segment in SEGMENTS if segment != row["segment_id"]
        }
        efforts = [move["effort"] for move in answer["moves"]]
        assert efforts == sorted(efforts)  # the cheapest first
        customer = {name: row[name] for name in FEATURES}
        checked += await check_moves(client, customer, answer, [], training_ranges)
    assert checked == 2 * len(known) > 1_300


def random_requests(count: int, seed: int) -> list[tuple[dict[str, Any], list[str], str | None]]:
    """New customers across and beyond the training ranges, each with features held and a
    target (or none: every other segment)."""
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(count):
        customer = {
            "avg_credit_limit": int(rng.integers(1, 300_000)),
            **{name: int(rng.integers(0, 26)) for name in FEATURES[1:]},
        }
        fixed = [str(name) for name in rng.choice(FEATURES, int(rng.integers(0, 4)), replace=False)]
        target = [None, *SEGMENTS][int(rng.integers(0, 4))]
        drawn.append((customer, fixed, target))
    return drawn


async def test_new_customers_with_fixed_features_move_where_the_answer_says(
    client: httpx.AsyncClient, trained: TrainingResult
) -> None:
    training_ranges = ranges(trained)
    checked = unreachable = 0
    for customer, fixed, target in random_requests(500, seed=21):
        body = {**customer, "fixed": fixed, "target_segment": target}
        response = await client.post("/segment/moves", json=body)
        assert response.status_code == 200
        answer = response.json()
        assert answer["fixed"] == fixed and answer["customer_key"] is None
        if target is not None:
            assert [move["segment_id"] for move in answer["moves"]] == [target]
        reachable = [move["reachable"] for move in answer["moves"]]
        assert reachable == sorted(reachable, reverse=True)  # unreachable segments last
        checked += await check_moves(client, customer, answer, fixed, training_ranges)
        unreachable += reachable.count(False)
    assert checked > 400 and unreachable > 0


async def test_a_target_out_of_reach_is_answered_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    body = {"customer_key": "38414", "target_segment": "digital-affluent", "fixed": FEATURES[:4]}
    response = await client.post("/segment/moves", json=body)
    assert response.status_code == 200
    (move,) = response.json()["moves"]
    assert move["reachable"] is False and move["values"] is None
    assert "average credit limit" in move["reason"] and "online logins" in move["reason"]


async def test_a_customer_already_in_the_target_needs_no_change(client: httpx.AsyncClient) -> None:
    here = (await client.post("/segment/moves", json={"customer_key": "38414"})).json()
    body = {"customer_key": "38414", "target_segment": here["segment_id"]}
    (move,) = (await client.post("/segment/moves", json=body)).json()["moves"]
    assert move["reachable"] and move["effort"] == 0 and move["changes"] == {}


@pytest.mark.parametrize(
    ("body", "status", "field", "rule"),
    [
        ({"avg_credit_limit": 5000, "total_credit_cards": 2}, 422, "total_calls_made", "missing"),
        ({}, 422, "avg_credit_limit", "missing"),
        ({"customer_key": "38414", "target_segment": "gold"}, 404, "target_segment", "segment"),
        ({"customer_key": "38414", "fixed": ["income"]}, 422, "body.fixed.0", "literal_error"),
        ({"customer_key": "38414", "fixed": "avg_credit_limit"}, 422, "body.fixed", "list_type"),
        ({"customer_key": "no-such-customer"}, 404, None, None),
        ({"customer_key": "38414", "colour": "red"}, 422, "body.colour", "extra_forbidden"),
    ],
)
async def test_bad_requests_name_the_field_and_the_rule(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str, rule: str
) -> None:
    response = await client.post("/segment/moves", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    if field is not None:
        assert (field, rule) in [(item["field"], item["rule"]) for item in error["details"]]
    else:
        assert error["code"] == "customer_not_found"


async def prospects(client: httpx.AsyncClient, segment_id: str, query: str) -> httpx.Response:
    response = await client.get(f"/segments/{segment_id}/prospects?{query}")
    assert response.status_code == 200, response.text
    return response


async def test_prospects_are_the_nearest_customers_of_other_segments_and_each_move_lands(
    client: httpx.AsyncClient, trained: TrainingResult, training_assignments: pd.DataFrame
) -> None:
    segment_of = dict(
        zip(
            training_assignments["customer_key"].astype(str),
            training_assignments["segment_id"],
            strict=True,
        )
    )
    for segment_id in SEGMENTS:
        whole = (await prospects(client, segment_id, "limit=30")).json()
        assert whole["segment_id"] == segment_id
        found = whole["prospects"]
        assert len(found) == 30
        efforts = [prospect["effort"] for prospect in found]
        assert efforts == sorted(efforts) and efforts[0] > 0
        for prospect in found:
            assert prospect["segment_id"] == segment_of[prospect["customer_key"]] != segment_id
            # The same answer as the customer's own moves, which land (checked above).
            body = {"customer_key": prospect["customer_key"], "target_segment": segment_id}
            (move,) = (await client.post("/segment/moves", json=body)).json()["moves"]
            assert (move["values"], move["effort"]) == (prospect["values"], prospect["effort"])
            scored = await client.post("/segment", json=prospect["values"])
            assert scored.json()["segment_id"] == segment_id
        # Pages continue one another; JSON and CSV pages alike.
        first = (await prospects(client, segment_id, "limit=12")).json()
        second = await prospects(
            client, segment_id, f"limit=18&cursor={first['next_cursor']}&format=csv"
        )
        rows = list(csv.DictReader(io.StringIO(second.text)))
        assert [p["customer_key"] for p in first["prospects"]] + [
            row["customer_key"] for row in rows
        ] == [p["customer_key"] for p in found]
        assert "Next-Cursor" in second.headers
        for row, prospect in zip(rows, found[12:], strict=True):
            assert float(row["effort"]) == prospect["effort"]
            for name in FEATURES:
                assert float(row[name]) == prospect["values"][name]
                assert float(row[f"{name}_change"]) == prospect["changes"].get(name, 0)
        # max_effort keeps the nearest only.
        cap = efforts[9]
        capped = (await prospects(client, segment_id, f"limit=1000&max_effort={cap}")).json()
        assert [p["effort"] for p in capped["prospects"]] == [e for e in efforts if e <= cap]
        assert capped["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("cursor=bm90LWEtY3Vyc29y", 422, "invalid_input"),
        ("cursor=WzEuMCwiXHUwMDAwIl0", 422, "invalid_input"),  # [1.0, "\u0000"]
        ("max_effort=-1", 422, "invalid_input"),
        ("limit=0", 422, "invalid_input"),
        ("limit=1001", 422, "invalid_input"),
    ],
)
async def test_bad_prospect_queries_are_refused(
    client: httpx.AsyncClient, query: str, status: int, code: str
) -> None:
    response = await client.get(f"/segments/digital-affluent/prospects?{query}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_prospects_of_an_unknown_segment_or_without_a_store(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        unknown = await client.get("/segments/gold/prospects")
    assert unknown.status_code == 404
    down = settings_for(models_dir, database_url="postgresql://postgres@127.0.0.1:1/unreachable")
    async with serve(down) as client:
        unavailable = await client.get("/segments/digital-affluent/prospects")
        # A new customer's moves need no store.
        moved = await client.post("/segment/moves", json={**CUSTOMER, "target_segment": None})
    assert unavailable.status_code == 503
    assert unavailable.json()["error"]["code"] == "store_unavailable"
    assert moved.status_code == 200 and len(moved.json()["moves"]) == 2
