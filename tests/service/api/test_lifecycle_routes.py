"""GET /models, POST /admin/promote and /admin/reject: statuses, history, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from segmentation.artifact import PIPELINE_FILE, read_latest
from segmentation.comparison import ComparedVersion, compare
from segmentation.features import FEATURES
from segmentation.lifecycle import LIFECYCLE_FILE
from tests.service.api.test_admin import answers_come_from
from tests.service.conftest import serve_with_keys
from tests.service.helpers import ADMIN, ADMIN_KEY, CRM_KEY, KEYS, assert_error, customer
from tests.service.processes import log_count, service_process, wait_for_log


async def promote(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/admin/promote", json=body, headers=headers or ADMIN)


async def reject(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/admin/reject", json=body, headers=ADMIN)


async def listed(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/models")
    assert response.status_code == 200, response.text
    return {entry["version"]: entry for entry in response.json()["versions"]}


async def test_a_retrain_waits_as_a_candidate_beside_the_active_version(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        body = (await client.get("/models")).json()
        entries = await listed(client)
        await answers_come_from(client, first)
    assert body["active"] == first and body["shadow"] is None
    assert [entry["version"] for entry in body["versions"]] == [second, first]  # newest first
    assert entries[first]["status"] == "active"
    assert entries[second]["status"] == "candidate"
    assert [t["status"] for t in entries[second]["history"]] == ["candidate"]
    assert entries[second]["history"][0]["by"] == "python -m training"
    assert entries[second]["n_rows"] == 660
    assert entries[second]["k"] >= 2 and 0 < entries[second]["silhouette"] < 1
    assert read_latest(models) == first


async def test_promoting_a_candidate_serves_it_and_records_who_and_why(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        response = await promote(client, {"version": second, "reason": "seed 1 agrees"})
        assert response.status_code == 200, response.text
        assert response.json() == {"model_version": second, "previous_version": first}
        await answers_come_from(client, second)
        entries = await listed(client)
    assert read_latest(models) == second
    assert entries[second]["status"] == "active"
    last = entries[second]["history"][-1]
    assert (last["status"], last["by"], last["reason"]) == ("active", "admin", "seed 1 agrees")
    assert entries[first]["status"] == "retired"
    assert entries[first]["history"][-1]["reason"] == f"replaced by {second}: seed 1 agrees"


async def test_a_rollback_promotes_the_retired_version_again(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        assert (await promote(client, {"version": second, "reason": "try"})).status_code == 200
        response = await promote(client, {"version": first, "reason": "roll back"})
        assert response.status_code == 200, response.text
        await answers_come_from(client, first)
        entries = await listed(client)
    assert (entries[first]["status"], entries[second]["status"]) == ("active", "retired")
    assert [t["status"] for t in entries[second]["history"]] == ["candidate", "active", "retired"]


async def test_a_rejected_candidate_cannot_be_promoted(versions: tuple[Path, str, str]) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        response = await reject(client, {"version": second, "reason": "moves too many"})
        assert response.status_code == 200, response.text
        assert response.json() == {"model_version": second, "status": "rejected"}
        refused = await promote(client, {"version": second, "reason": "anyway"})
        again = await reject(client, {"version": second, "reason": "twice"})
        entries = await listed(client)
        await answers_come_from(client, first)
    assert "rejected" in assert_error(refused, 409, "version_conflict")["message"]
    assert "is rejected" in assert_error(again, 409, "version_conflict")["message"]
    assert entries[second]["status"] == "rejected"
    assert entries[second]["history"][-1]["reason"] == "moves too many"
    assert read_latest(models) == first


async def test_a_reload_goes_on_record_too(versions: tuple[Path, str, str]) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        response = await client.post("/admin/reload", json={"version": second}, headers=ADMIN)
        assert response.status_code == 200
        entries = await listed(client)
    assert entries[second]["history"][-1]["reason"] == "POST /admin/reload"
    assert entries[first]["status"] == "retired"


REFUSALS = [
    ("unknown", {"version": "20200101T000000Z-00000000", "reason": "x"}, 404, "version_not_found"),
    ("escaping name", {"version": "../etc", "reason": "x"}, 422, "invalid_input"),
    ("active", {"version": "{first}", "reason": "again"}, 409, "version_conflict"),
    ("no reason", {"version": "{second}"}, 422, "invalid_input"),
    ("blank reason", {"version": "{second}", "reason": "   "}, 422, "invalid_input"),
    ("reason too long", {"version": "{second}", "reason": "x" * 1001}, 422, "invalid_input"),
    ("extra field", {"version": "{second}", "reason": "x", "force": True}, 422, "invalid_input"),
    ("not an object", ["{second}"], 422, "invalid_input"),
]


@pytest.mark.parametrize(("case", "body", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
@pytest.mark.parametrize("action", ["promote", "reject"])
async def test_bad_lifecycle_requests_are_refused_and_change_nothing(
    versions: tuple[Path, str, str], case: str, body: Any, status: int, code: str, action: str
) -> None:
    models, first, second = versions
    text = json.dumps(body).replace("{first}", first).replace("{second}", second)
    before = _disk_state(models)
    async with serve_with_keys(models) as client:
        response = await client.post(
            f"/admin/{action}", content=text, headers={**ADMIN, "Content-Type": "application/json"}
        )
        assert_error(response, status, code)
        await answers_come_from(client, first)
    assert _disk_state(models) == before


async def test_a_tampered_candidate_is_not_promoted_and_nothing_changes(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    (models / second / PIPELINE_FILE).write_bytes(b"not the pipeline that was hashed")
    before = _disk_state(models)
    async with serve_with_keys(models) as client:
        response = await promote(client, {"version": second, "reason": "x"})
        error = assert_error(response, 409, "version_rejected")
        await answers_come_from(client, first)
    assert "hash_mismatch" in json.dumps(error)
    assert _disk_state(models) == before


async def test_a_client_key_cannot_change_the_lifecycle(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    before = _disk_state(models)
    async with serve_with_keys(models) as client:
        for action in ("promote", "reject"):
            response = await client.post(
                f"/admin/{action}",
                json={"version": second, "reason": "x"},
                headers={"X-API-Key": CRM_KEY},
            )
            assert_error(response, 403, "forbidden")
    assert _disk_state(models) == before


async def test_a_damaged_history_answers_503_and_keeps_serving(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    (models / LIFECYCLE_FILE).write_text("{not json")
    async with serve_with_keys(models) as client:
        assert_error(await client.get("/models"), 503, "lifecycle_unavailable")
        refused = await promote(client, {"version": second, "reason": "x"})
        assert_error(refused, 503, "lifecycle_unavailable")
        await answers_come_from(client, first)
    assert read_latest(models) == first


def _disk_state(models: Path) -> dict[str, str]:
    """What a refused request must leave as it was: `latest`, the history, every file."""
    return {
        str(path.relative_to(models)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(models.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@pytest.mark.slow
def test_a_promotion_switches_every_worker_with_the_reason_on_record(
    versions: tuple[Path, str, str], tmp_path: Path
) -> None:
    models, first, second = versions
    settings = {
        "API_KEYS": KEYS["api_keys"],
        "ADMIN_API_KEY": ADMIN_KEY,
        "MODEL_POLL_SECONDS": "0.2",
    }
    with service_process(models, tmp_path, 2, environment=settings) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", 2)

        async def run() -> tuple[set[str], set[str], dict[str, Any]]:
            limits = httpx.Limits(max_connections=8)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
                client.headers["X-API-Key"] = CRM_KEY
                before = await _versions_answering(client)
                response = await promote(client, {"version": second, "reason": "two workers"})
                assert response.status_code == 200, response.text
                await asyncio.sleep(1.0)  # five polls of `latest`
                after = await _versions_answering(client)
                return before, after, (await client.get("/models")).json()

        before, after, body = asyncio.run(run())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert before == {first}
    assert after == {second}
    assert log_count(log, f"serving model {second}") == 2  # each worker swapped
    active = next(entry for entry in body["versions"] if entry["version"] == second)
    assert active["history"][-1]["reason"] == "two workers"


async def _versions_answering(client: httpx.AsyncClient) -> set[str]:
    """The versions 200 concurrent answers came from, over connections to both workers."""
    answers = await asyncio.gather(*(client.post("/segment", json=customer()) for _ in range(200)))
    assert all(answer.status_code == 200 for answer in answers)
    return {answer.json()["model_version"] for answer in answers}


def _offline(models: Path, candidate: str, against: str, features: np.ndarray) -> dict[str, Any]:
    return compare(
        ComparedVersion.load(models, candidate), ComparedVersion.load(models, against), features
    ).to_document()


async def test_the_comparison_covers_training_and_store_customers_as_offline(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    newcomers = [
        customer(customer_key=f"new-{n}", avg_credit_limit=9000 + 1000 * n) for n in range(3)
    ]
    async with serve_with_keys(models) as client:
        for newcomer in newcomers:
            assert (await client.post("/segment", json=newcomer)).json()["recorded"] is True
        response = await client.get(f"/models/{second}/comparison")
        assert response.status_code == 200, response.text
        body = response.json()
    training = ComparedVersion.load(models, second).training
    extra = np.array([[newcomer[feature] for feature in FEATURES] for newcomer in newcomers])
    expected = _offline(models, second, first, np.vstack([training.features, extra]))
    assert body.pop("customers") == {
        "training": 660,
        "store_only": 3,
        "store_available": True,
        "store_capped": False,
    }
    assert body == json.loads(json.dumps(expected))
    assert body["n_customers"] == 663
    assert body["against"] == first


async def test_the_comparison_takes_thresholds_and_another_version(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as client:
        strict = await client.get(
            f"/models/{second}/comparison", params={"max_moved_share": 0, "against": first}
        )
        itself = await client.get(f"/models/{first}/comparison", params={"against": first})
    moved = strict.json()["moved"]
    assert strict.json()["verdict"]["ok"] is (moved == 0)
    assert strict.json()["thresholds"]["max_moved_share"] == 0
    assert itself.json()["moved"] == 0 and itself.json()["adjusted_rand_index"] == 1.0


async def test_the_comparison_without_the_store_says_so(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    unreachable = "postgresql://postgres@127.0.0.1:1/none"
    async with serve_with_keys(models, database_url=unreachable) as client:
        response = await client.get(f"/models/{second}/comparison")
    assert response.status_code == 200, response.text
    assert response.json()["customers"] == {
        "training": 660,
        "store_only": None,
        "store_available": False,
        "store_capped": False,
    }
    assert response.json()["n_customers"] == 660


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/models/20200101T000000Z-00000000/comparison", {}, 404, "version_not_found"),
        (
            "/models/{second}/comparison",
            {"against": "20200101T000000Z-0"},
            404,
            "version_not_found",
        ),
        ("/models/{second}/comparison", {"against": "../x"}, 422, "invalid_input"),
        ("/models/{second}/comparison", {"max_moved_share": 2}, 422, "invalid_input"),
        ("/models/{second}/comparison", {"min_adjusted_rand_index": "high"}, 422, "invalid_input"),
        ("/models/.hidden/comparison", {}, 422, "invalid_input"),
    ],
)
async def test_bad_comparison_requests_get_a_clear_error(
    versions: tuple[Path, str, str], path: str, params: dict[str, Any], status: int, code: str
) -> None:
    models, _, second = versions
    async with serve_with_keys(models) as client:
        response = await client.get(path.replace("{second}", second), params=params)
    assert_error(response, status, code)


async def test_a_tampered_version_is_not_compared(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    (models / second / PIPELINE_FILE).write_bytes(b"not the pipeline that was hashed")
    async with serve_with_keys(models) as client:
        response = await client.get(f"/models/{second}/comparison")
    assert "hash_mismatch" in json.dumps(assert_error(response, 409, "version_rejected"))


async def test_a_worker_behind_on_latest_records_the_right_previous_version(
    versions: tuple[Path, str, str],
) -> None:
    models, first, second = versions
    async with serve_with_keys(models) as ahead, serve_with_keys(models) as behind:
        promoted = await promote(ahead, {"version": second, "reason": "forward"})
        assert promoted.status_code == 200
        # `behind` still serves the first version (it polls `latest` once an hour here).
        rolled_back = await promote(behind, {"version": first, "reason": "back"})
        assert rolled_back.status_code == 200, rolled_back.text
        assert rolled_back.json() == {"model_version": first, "previous_version": second}
        entries = await listed(behind)
    assert [t["status"] for t in entries[second]["history"]] == ["candidate", "active", "retired"]
    assert entries[second]["history"][-1]["reason"] == f"replaced by {first}: back"
    assert entries[first]["status"] == "active"
