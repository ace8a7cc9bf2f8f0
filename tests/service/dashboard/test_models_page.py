"""GET /dashboard/models: the versions, and each candidate against the active version."""

from __future__ import annotations

from pathlib import Path

from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.dashboard.page_reading import Element, read_page
from tests.service.dashboard.sign_in import signed_in
from tests.service.helpers import ADMIN, CRM_KEY, customer


def heatmap_counts(candidate: Element) -> dict[tuple[str, str], int]:
    """The heatmap's cells, by (segment now, segment under the candidate)."""
    cells = candidate.one("svg", role="img").all("g", data_count=None)
    counts = {}
    for cell in cells:
        count = int(cell.attributes["data-count"])
        assert cell.one("text").text() == f"{count:,}"  # what the reader sees
        counts[(cell.attributes["data-from"], cell.attributes["data-to"])] = count
    return counts


async def test_a_candidates_heatmap_shows_the_counts_of_its_comparison(
    candidate_models: tuple[Path, str, str],
) -> None:
    models, _, candidate = candidate_models
    async with serve(settings_for(models)) as client:
        report = (await client.get(f"/models/{candidate}/comparison")).json()
        response = await client.get("/dashboard/models")
    assert response.status_code == 200, response.text
    section = read_page(response.text).one("article", data_candidate=candidate)
    counts = heatmap_counts(section)
    expected = {(flow["from"], flow["to"]): flow["count"] for flow in report["transitions"]}
    assert {pair: count for pair, count in counts.items() if count} == expected
    assert sum(counts.values()) == report["n_customers"]
    # Every cell of the matrix is drawn: the active version's segments by the candidate's.
    rows = {side["segment_id"] for side in report["segments"] if side["name_against"]}
    columns = {side["segment_id"] for side in report["segments"] if side["name_candidate"]}
    assert set(counts) == {(row, column) for row in rows for column in columns}
    assert report["moved"] > 0  # four segments instead of three: some customers move
    assert section.figure("moved") == f"{report['moved']:,}"
    assert section.figure("n-customers") == f"{report['n_customers']:,}"
    assert section.figure("ari") == f"{report['adjusted_rand_index']:.3f}"
    verdict = "switch" if report["verdict"]["ok"] else "do not switch"
    assert section.figure("verdict").startswith(f"Verdict: {verdict}")
    for reason in report["verdict"]["reasons"]:
        assert reason in section.text()
    names = {
        side["segment_id"]: side["name_against"] or side["name_candidate"]
        for side in report["segments"]
    }
    moves = section.one("ul", class_="moves").all("li")
    off_diagonal = [flow for flow in report["transitions"] if flow["from"] != flow["to"]]
    assert [item.text() for item in moves] == [
        f"{flow['count']:,} customer{'s' if flow['count'] != 1 else ''} from "
        f"{names[flow['from']]} to {names[flow['to']]}"
        for flow in off_diagonal
    ]


async def test_every_version_is_listed_with_its_status_and_history(
    candidate_models: tuple[Path, str, str],
) -> None:
    models, active, candidate = candidate_models
    async with serve(settings_for(models)) as client:
        versions = (await client.get("/models")).json()
        page = read_page((await client.get("/dashboard/models")).text)
    rows = page.all("tr", data_version=None)
    assert [row.attributes["data-version"] for row in rows] == [
        entry["version"] for entry in versions["versions"]
    ]
    statuses = {row.attributes["data-version"]: row.figure("status") for row in rows}
    assert statuses == {active: "active", candidate: "candidate"}
    for entry in versions["versions"]:
        for step in entry["history"]:
            assert step["reason"] in page.text()
    assert len(page.all("article", data_candidate=None)) == 1


async def test_a_shadowed_candidate_shows_the_live_agreement_of_the_shadow_report(
    candidate_models: tuple[Path, str, str],
) -> None:
    models, active, candidate = candidate_models
    async with serve_with_keys(models) as client:
        started = await client.post("/admin/shadow", json={"version": candidate}, headers=ADMIN)
        assert started.status_code == 200, started.text
        for limit in (5_000, 20_000, 50_000, 150_000):
            for online in (0, 3, 12):
                answer = await client.post(
                    "/segment", json=customer(avg_credit_limit=limit, total_visits_online=online)
                )
                assert answer.status_code == 200
        shadow = (await client.get("/admin/shadow", headers=ADMIN)).json()
        cookie = await signed_in(client, CRM_KEY)
        page = await client.get("/dashboard/models", headers={"Cookie": cookie})
        live = (await client.get("/dashboard/models/live", headers={"Cookie": cookie})).json()
    assert shadow["customers"] == 12
    section = read_page(page.text).one("article", data_candidate=candidate)
    assert section.figure("agreement") == f"{shadow['agreement']:.1%}"
    assert section.figure("shadow-customers") == f"{shadow['customers']:,}"
    fragment = read_page(live["fragments"][f"shadow-{candidate}"])
    assert fragment.figure("agreement") == f"{shadow['agreement']:.1%}"
    assert live["model_version"] == active


async def test_no_candidate_says_so(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        page = read_page((await client.get("/dashboard/models")).text)
    assert not page.all("article", data_candidate=None)
    assert "No candidate is waiting" in page.text()


async def test_the_models_page_offers_no_action(candidate_models: tuple[Path, str, str]) -> None:
    models, _, _ = candidate_models
    async with serve(settings_for(models)) as client:
        page = read_page((await client.get("/dashboard/models")).text)
    # Read-only: the only form on the page would be signing out (none: no keys here).
    assert page.all("form") == []
    assert page.all("button") == []
