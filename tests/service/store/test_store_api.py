"""The store behind the API: recording, history, members, live counts, concurrency, outages."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.api.app import create_app
from service.customer_records import STATUS_SECONDS
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable
from tests.service.conftest import serve, settings_for
from tests.service.helpers import serve_app
from tests.service.store.conftest import database_gone, set_connections
from training.job import TrainingOptions, train

BANK_CUSTOMERS = 660
UNIQUE_BANK_KEYS = 655


def customer(key: str | None, calls: int = 9) -> dict[str, Any]:
    item: dict[str, Any] = {
        "avg_credit_limit": 50000,
        "total_credit_cards": 3,
        "total_visits_bank": 0,
        "total_visits_online": 10,
        "total_calls_made": calls,
    }
    if key is not None:
        item["customer_key"] = key
    return item


def table_count(database_url: str, table: str) -> int:
    store = CustomerStore(database_url)
    with store.engine.connect() as connection:
        value = int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    store.dispose()
    return value


async def test_activation_imports_snapshot_once_across_restarts(
    models_dir: Path, database_url: str
) -> None:
    settings = settings_for(models_dir, database_url=database_url)
    for _ in range(2):
        async with serve(settings) as client:
            assert (await client.get("/ready")).json()["store"] == "ok"
    assert table_count(database_url, "assignment_history") == BANK_CUSTOMERS
    assert table_count(database_url, "latest_assignments") == UNIQUE_BANK_KEYS


async def test_scoring_with_key_is_recorded_and_listed_in_history(
    models_dir: Path, database_url: str
) -> None:
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        single = await client.post("/segment", json=customer("87073", calls=9))
        assert single.json()["recorded"] is True
        batch = await client.post(
            "/segment/batch", json={"customers": [customer("87073", calls=0), customer(None)]}
        )
        results = batch.json()["results"]
        assert results[0]["recorded"] is True
        assert "recorded" not in results[1]
        body = (await client.get("/customers/87073")).json()
    assert body["source"] == "batch"
    assert body["features"]["total_calls_made"] == 0
    assert type(body["features"]["total_calls_made"]) is int  # a count, not 0.0
    assert [h["source"] for h in body["history"]] == ["batch", "single", "training"]
    stamps = [h["assigned_at"] for h in body["history"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_a_failed_batch_write_unmarks_only_what_it_was_writing(
    models_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(store: CustomerStore, assignments: object) -> None:
        raise StoreUnavailable("OperationalError: refused by the test")

    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        monkeypatch.setattr(CustomerStore, "record", refuse)
        response = await client.post(
            "/segment/batch",
            json={"customers": [{"customer_key": "38414"}, customer("new-1"), customer(None)]},
        )
    known, new, anonymous = response.json()["results"]
    assert known["recorded"] is True  # on record already, from this very model
    assert new["recorded"] is False
    assert "recorded" not in anonymous and anonymous["segment_id"]


async def test_scoring_without_key_is_not_recorded(models_dir: Path, database_url: str) -> None:
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        response = await client.post("/segment", json=customer(None))
    assert "recorded" not in response.json()
    assert table_count(database_url, "assignment_history") == BANK_CUSTOMERS


async def test_members_are_paged_once_each_as_json_and_csv(
    models_dir: Path, database_url: str
) -> None:
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        catalog = (await client.get("/segments")).json()["segments"]
        live = {s["segment_id"]: s["live_size"] for s in catalog}
        assert sum(live.values()) == UNIQUE_BANK_KEYS
        keys: list[str] = []
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/segments/branch-loyal/customers", params=params)).json()
            keys += [member["customer_key"] for member in page["customers"]]
            assert all(type(m["total_calls_made"]) is int for m in page["customers"])
            assert {m["segment_id"] for m in page["customers"]} <= {"branch-loyal"}
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(keys) == len(set(keys)) == live["branch-loyal"]

        first = await client.get("/segments/branch-loyal/customers?limit=50&format=csv")
        assert first.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(first.text)))
        assert [row["customer_key"] for row in rows] == keys[:50]
        # Counts as whole numbers and booleans as in JSON, for the campaign tools reading it.
        assert {row["atypical"] for row in rows} <= {"true", "false"}
        assert all(row["total_credit_cards"].isdigit() for row in rows)
        second = await client.get(
            "/segments/branch-loyal/customers",
            params={"limit": 50, "cursor": first.headers["next-cursor"]},
            headers={"accept": "text/csv"},
        )
        assert [r["customer_key"] for r in csv.DictReader(io.StringIO(second.text))] == keys[50:100]

        unknown = await client.get("/segments/nobody/customers")
        assert unknown.status_code == 404
        bad_cursor = await client.get("/segments/branch-loyal/customers?cursor=***")
        assert bad_cursor.status_code == 422  # not even base64url: the document says so
        assert bad_cursor.json()["error"]["details"][0]["field"] == "query.cursor"


async def test_batch_items_with_only_a_key_are_answered_from_the_store(
    models_dir: Path, database_url: str
) -> None:
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        expected = (await client.get("/customers/38414")).json()
        response = await client.post(
            "/segment/batch",
            json={"customers": [{"customer_key": "38414"}, {"customer_key": "no-such-key"}]},
        )
    known, unknown = response.json()["results"]
    assert known["segment_id"] == expected["segment_id"]
    assert known["recorded"] is True
    assert unknown["error"]["code"] == "customer_not_found"
    assert unknown["customer_key"] == "no-such-key"
    # The stored assignment came from this very model: nothing new was written.
    assert table_count(database_url, "assignment_history") == BANK_CUSTOMERS


async def test_key_only_items_are_rescored_when_active_model_is_newer(
    models_dir: Path, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(models_dir, database_url=database_url)
    async with serve(settings) as client:
        await client.post("/segment", json=customer("new-customer-1"))
    newer = train(
        TrainingOptions(models_dir=models_dir, seed=3, n_bootstrap=2, k_max=4, promote=True)
    )
    async with serve(settings) as client:
        response = await client.post(
            "/segment/batch", json={"customers": [{"customer_key": "new-customer-1"}]}
        )
        result = response.json()["results"][0]
        history = (await client.get("/customers/new-customer-1")).json()["history"]
    assert result["model_version"] == newer.version
    assert [h["model_version"] for h in history] == [newer.version, history[1]["model_version"]]
    assert history[1]["model_version"] != newer.version


async def test_parallel_clients_leave_one_latest_row_per_customer(
    models_dir: Path, database_url: str
) -> None:
    clients, rounds, keys_per_request = 8, 5, 40
    touched: set[str] = set()

    async def client_writes(client: httpx.AsyncClient, number: int) -> int:
        written = 0
        for round_number in range(rounds):
            # Overlapping keys: every client writes keys shared with its neighbours.
            keys = [f"c{number * 3 + round_number + i}" for i in range(keys_per_request)]
            touched.update(keys)
            items = [customer(key, calls=(number + i) % 10) for i, key in enumerate(keys)]
            batch = await client.post("/segment/batch", json={"customers": items})
            assert all(result["recorded"] for result in batch.json()["results"])
            single = await client.post("/segment", json=customer(keys[0], calls=number % 10))
            assert single.json()["recorded"] is True
            written += len(items) + 1
        return written

    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        totals = await asyncio.gather(*(client_writes(client, n) for n in range(clients)))
    assert table_count(database_url, "assignment_history") == BANK_CUSTOMERS + sum(totals)
    assert len(touched) < clients * rounds * keys_per_request
    assert table_count(database_url, "latest_assignments") == UNIQUE_BANK_KEYS + len(touched)


async def test_unreachable_store_keeps_scoring_with_recorded_false(models_dir: Path) -> None:
    settings = settings_for(
        models_dir, database_url="postgresql://postgres@127.0.0.1:1/unreachable"
    )
    async with serve(settings) as client:
        ready = await client.get("/ready")
        scored = await client.post("/segment", json=customer("87073"))
        batch = await client.post("/segment/batch", json={"customers": [customer("87073")]})
        looked_up = await client.get("/customers/87073")
        segments = await client.get("/segments")
        members = await client.get("/segments/branch-loyal/customers")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["store"].startswith("unavailable")
    assert scored.status_code == 200 and scored.json()["recorded"] is False
    assert batch.json()["results"][0]["recorded"] is False
    assert looked_up.status_code == 200 and looked_up.json()["source"] == "training"
    assert type(looked_up.json()["features"]["total_credit_cards"]) is int
    assert all(s["live_size"] is None for s in segments.json()["segments"])
    assert members.status_code == 503
    assert members.json()["error"]["code"] == "store_unavailable"


async def test_database_going_away_mid_run_degrades_then_recovers(
    models_dir: Path, postgres_url: str
) -> None:
    database_url = postgres_url
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        assert (await client.post("/segment", json=customer("k1"))).json()["recorded"] is True
        with database_gone(database_url):
            during = await client.post("/segment", json=customer("k2"))
            ready = await client.get("/ready")
        after = await client.post("/segment", json=customer("k3"))
        ready_after = await client.get("/ready")
    assert during.status_code == 200 and during.json()["recorded"] is False
    assert ready.json()["status"] == "degraded"
    assert after.json()["recorded"] is True
    assert ready_after.json()["status"] == "ready"
    assert table_count(database_url, "assignment_history") == BANK_CUSTOMERS + 2


async def test_snapshot_import_missed_in_an_outage_lands_when_the_store_returns(
    models_dir: Path, postgres_url: str
) -> None:
    settings = settings_for(models_dir, database_url=postgres_url, model_poll_seconds=0.05)
    set_connections(postgres_url, allowed=False)
    try:
        async with serve(settings) as client:
            assert (await client.get("/ready")).json()["status"] == "degraded"
            before = (await client.get("/customers/87073")).json()
            set_connections(postgres_url, allowed=True)
            for _ in range(200):
                # Only the store keeps a history; the snapshot fallback has none.
                after = (await client.get("/customers/87073")).json()
                if after["history"]:
                    break
                await asyncio.sleep(0.05)
    finally:
        set_connections(postgres_url, allowed=True)
    assert before["history"] == []
    assert [entry["source"] for entry in after["history"]] == ["training"]
    assert table_count(postgres_url, "assignment_history") == BANK_CUSTOMERS
    assert table_count(postgres_url, "latest_assignments") == UNIQUE_BANK_KEYS


async def test_a_look_up_in_an_outage_answers_from_the_snapshot_or_503(
    models_dir: Path, postgres_url: str, training_assignments: Any
) -> None:
    trained_key = str(training_assignments["customer_key"].iloc[0])
    async with serve(settings_for(models_dir, database_url=postgres_url)) as client:
        assert (await client.post("/segment", json=customer("crm-1"))).json()["recorded"]
        with database_gone(postgres_url):
            stored = await client.get("/customers/crm-1")
            trained = await client.get(f"/customers/{trained_key}")
    # Not "not found": the store, which knows the customer, could not be asked.
    assert stored.status_code == 503, stored.text
    assert stored.json()["error"]["code"] == "store_unavailable"
    assert trained.status_code == 200 and trained.json()["source"] == "training"


async def test_a_key_or_cursor_no_customer_can_have_is_422_not_an_outage(
    models_dir: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    nul_cursor = base64.urlsafe_b64encode(b"a\x00b").decode().rstrip("=")
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        key = await client.get("/customers/a%00b")
        cursor = await client.get(f"/segments/branch-loyal/customers?cursor={nul_cursor}")
        ready = await client.get("/ready")
    assert key.status_code == 422 and key.json()["error"]["details"][0]["field"] == "customer_key"
    assert cursor.status_code == 422 and cursor.json()["error"]["details"][0]["field"] == "cursor"
    assert ready.json()["status"] == "ready"
    assert "unavailable" not in caplog.text


FORMULA_KEYS = [
    '=HYPERLINK("http://attacker.example","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
]


async def test_a_member_export_cannot_run_a_formula_in_a_spreadsheet(
    models_dir: Path, database_url: str
) -> None:
    async with serve(settings_for(models_dir, database_url=database_url)) as client:
        for key in FORMULA_KEYS:
            answer = await client.post("/segment", json={**customer(key), "total_calls_made": 0})
            assert answer.json()["recorded"] is True
        segment = answer.json()["segment_id"]
        exported = await client.get(f"/segments/{segment}/customers?limit=10000&format=csv")
        listed = await client.get(f"/segments/{segment}/customers?limit=10000")
    cells = [row["customer_key"] for row in csv.DictReader(io.StringIO(exported.text))]
    # OWASP's rule: a leading apostrophe, which a spreadsheet shows as text.
    assert sorted(cell for cell in cells if cell.startswith("'")) == sorted(
        "'" + key for key in FORMULA_KEYS
    )
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    # The JSON export and the store keep the keys as sent.
    assert set(FORMULA_KEYS) <= {m["customer_key"] for m in listed.json()["customers"]}


@pytest.mark.parametrize(
    "key", ["a\u202eb", "a\u2028b", "a\u200bb", "a\x85b", "\ufeffkey"], ids=repr
)
async def test_keys_that_display_as_another_are_refused(models_dir: Path, key: str) -> None:
    async with serve(settings_for(models_dir)) as client:
        answer = await client.post("/segment", json=customer(key))
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "customer_key"


async def test_readiness_probes_ask_the_store_at_most_once_a_second(models_dir: Path) -> None:
    app = create_app(settings_for(models_dir))
    async with serve_app(app) as client:
        store = app.state.records.store
        pings = 0
        ping = store.ping

        def counted_ping() -> None:
            nonlocal pings
            pings += 1
            ping()

        store.ping = counted_ping
        answers = [await client.get("/ready") for _ in range(50)]
        assert pings == 1
        await asyncio.sleep(STATUS_SECONDS)
        answers.append(await client.get("/ready"))
    assert pings == 2
    assert {answer.json()["store"] for answer in answers} == {"ok"}
