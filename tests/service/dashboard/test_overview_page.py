"""GET /dashboard: the same figures as the JSON endpoints, rendered on the server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from segmentation.features import FEATURES
from service.dashboard import wording
from tests.service.conftest import serve, settings_for
from tests.service.dashboard.page_reading import Element, read_page
from tests.service.dashboard.traffic import batches, resampled, shifted, training_features

PAGE_WEIGHT_LIMIT = 300_000


async def page(client: httpx.AsyncClient, path: str = "/dashboard") -> Element:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return read_page(response.text)


async def send(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        response = await client.post("/segment/batch", json=body)
        assert response.status_code == 200, response.text


async def test_one_card_per_segment_with_the_names_and_sizes_of_get_segments(
    models_dir: Path, training_assignments: pd.DataFrame
) -> None:
    crm = resampled(training_features(training_assignments), 300, seed=3)
    async with serve(settings_for(models_dir)) as client:
        await send(client, batches(crm, key_prefix="crm"))
        catalog = (await client.get("/segments")).json()["segments"]
        overview = await page(client)
    cards = overview.all("article", data_segment_id=None)
    assert [card.attributes["data-segment-id"] for card in cards] == [
        segment["segment_id"] for segment in catalog
    ]
    live_total = sum(segment["live_size"] for segment in catalog)
    assert live_total == training_assignments["customer_key"].nunique() + 300
    for card, segment in zip(cards, catalog, strict=True):
        assert card.figure("name") == segment["name"]
        assert card.figure("size") == f"{segment['size']:,}"
        assert card.figure("share") == f"{segment['share']:.1%}"
        assert card.figure("live-size") == f"{segment['live_size']:,}"
        assert card.figure("live-share") == f"{segment['live_size'] / live_total:.1%}"
        assert segment["description"] in card.text()
        for action in segment["recommended_actions"]["marketing"]:
            assert action in card.text()
        for action in segment["recommended_actions"]["service"]:
            assert action in card.text()
        for trait in segment["distinguishing_features"]:
            said = wording.trait(trait["feature"], trait["z"], trait["direction"])
            assert said in card.text()


async def test_each_profile_chart_is_labelled_and_has_its_figures_as_a_table(
    models_dir: Path,
) -> None:
    async with serve(settings_for(models_dir)) as client:
        catalog = (await client.get("/segments")).json()["segments"]
        overview = await page(client)
    for segment in catalog:
        card = overview.one("article", data_segment_id=segment["segment_id"])
        chart = card.one("svg", role="img")
        title_id, description_id = chart.attributes["aria-labelledby"].split()
        assert card.one("title", id=title_id).text() == (
            f"Profile of {segment['name']} against all customers"
        )
        described = card.one("desc", id=description_id).text()
        assert all(wording.feature_label(feature) in described for feature in FEATURES)
        assert len(chart.all("rect")) == len(FEATURES)
        rows = card.one("table").one("tbody").all("tr")
        for row, feature in zip(rows, FEATURES, strict=True):
            profile = segment["profile"][feature]
            cells = [cell.text() for cell in row.all("td")]
            assert row.one("th").text() == wording.feature_label(feature)
            assert cells[0] == wording.feature_value(feature, profile["median"])
            assert cells[2] == wording.feature_value(feature, profile["mean"])


async def test_the_drift_panel_shows_the_figures_of_get_drift(
    models_dir: Path, training_assignments: pd.DataFrame
) -> None:
    moved = shifted(training_features(training_assignments), 600, seed=5)
    async with serve(settings_for(models_dir, drift_window=500)) as client:
        await send(client, batches(moved))
        report = (await client.get("/drift")).json()
        overview = await page(client)
    drift = overview.one("section", data_live_fragment="drift")
    figures = {**report["features"], "segment_mix": report["segment_mix"]}
    for key, figure in figures.items():
        row = drift.one("tr", data_drift=key)
        assert row.figure("psi") == f"{figure['psi']:.2f}"
        assert row.figure("band") == figure["band"]
        assert wording.BAND_MEANINGS[figure["band"]] in row.text()  # the band in words too
    assert {key for key, figure in figures.items() if figure["band"] == "act"} >= {
        "avg_credit_limit",
        "total_visits_online",
    }
    assert report["retrain_recommended"] is True
    assert drift.figure("retrain") == "Retrain recommended"
    for reason in report["reasons"]:
        assert reason in drift.text()
    assert drift.figure("window-customers") == f"{report['window']['customers']:,}"
    assert drift.figure("atypical-share") == f"{report['atypical_share']:.1%}"
    shown = {row.attributes["data-reason"]: row for row in drift.all("tr", data_reason=None)}
    assert set(shown) == {code for code, share in report["atypical_by_reason"].items() if share}
    assert "avg_credit_limit_above_training_range" in shown
    for code, row in shown.items():
        assert row.figure("reason-share") == f"{report['atypical_by_reason'][code]:.1%}"
    chart = drift.one("svg", role="img")
    assert "Population stability index" in chart.one("title").text()


async def test_a_window_too_small_says_so_instead_of_figures(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        report = (await client.get("/drift")).json()
        overview = await page(client)
    drift = overview.one("section", data_live_fragment="drift")
    assert {row.figure("band") for row in drift.all("tr", data_drift=None)} == {"insufficient"}
    assert drift.figure("retrain") == "Too early to tell"
    assert report["reasons"][0] in drift.text()
    assert not drift.all("svg")


async def test_the_active_model_panel_says_which_version_and_who_made_it_active(
    models_dir: Path,
) -> None:
    async with serve(settings_for(models_dir)) as client:
        summary = (await client.get("/model")).json()
        versions = (await client.get("/models")).json()
        overview = await page(client)
    panel = overview.one("section", data_live_fragment="active")
    assert panel.figure("version") == summary["model_version"]
    assert panel.figure("n-rows") == f"{summary['n_rows']:,}"
    assert panel.figure("k") == str(summary["k"])
    assert panel.figure("silhouette") == f"{summary['metrics']['silhouette']:.3f}"
    (active,) = [v for v in versions["versions"] if v["version"] == summary["model_version"]]
    made_active = active["history"][-1]
    assert panel.figure("activated-by") == made_active["by"]
    assert panel.figure("activation-reason") == made_active["reason"]
    report_link = panel.one("a", href=f"/dashboard/models/{summary['model_version']}/report")
    assert "Training report" in report_link.text()


async def test_the_live_figures_are_the_pages_panels_rendered_again(
    models_dir: Path, training_assignments: pd.DataFrame
) -> None:
    async with serve(settings_for(models_dir, drift_window=500)) as client:
        before = await page(client)
        await send(client, batches(shifted(training_features(training_assignments), 500, seed=2)))
        live = (await client.get("/dashboard/live")).json()
        after = await page(client)
        report = (await client.get("/drift")).json()
    assert live["model_version"] == before.one("main").attributes["data-model-version"]
    for name, html in live["fragments"].items():
        fragment = read_page(html)
        on_page = after.one(data_live_fragment=name)
        assert fragment.text() == on_page.text(), name
    drift = read_page(live["fragments"]["drift"])
    assert (
        drift.one("tr", data_drift="avg_credit_limit").figure("band")
        == (report["features"]["avg_credit_limit"]["band"])
    )
    # Before the traffic the window was empty: the live figures did change.
    assert (
        before.one(data_live_fragment="drift").text()
        != after.one(data_live_fragment="drift").text()
    )


async def test_the_page_loads_nothing_from_elsewhere_and_weighs_little(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        response = await client.get("/dashboard")
        loaded = re.findall(r"""(?:src|href)="([^"]+)\"""", response.text)
        assets = [
            await client.get(path) for path in loaded if path.startswith("/dashboard/static/")
        ]
    assert {"/dashboard/static/dashboard.css", "/dashboard/static/dashboard.js"} <= set(loaded)
    # Every address is the service's own (or a place on the page).
    assert all(path[0] in "/#" and not path.startswith("//") for path in loaded)
    assert all(asset.status_code == 200 for asset in assets)
    for text in (response.text, *(asset.text for asset in assets if "svg" not in asset.url.path)):
        assert "http://" not in text and "https://" not in text  # no CDN, no web font
    weight = len(response.content) + sum(len(asset.content) for asset in assets)
    assert weight < PAGE_WEIGHT_LIMIT
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert response.headers["cache-control"] == "no-store"


async def test_an_unknown_static_file_is_404_with_the_error_shape(models_dir: Path) -> None:
    async with serve(settings_for(models_dir)) as client:
        missing = await client.get("/dashboard/static/secrets.txt")
        climbing = await client.get("/dashboard/static/..%2F..%2Fconfig.py")
        css = await client.get("/dashboard/static/dashboard.css")
        again = await client.get(
            "/dashboard/static/dashboard.css", headers={"If-None-Match": css.headers["etag"]}
        )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert climbing.status_code == 404
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert again.status_code == 304 and again.content == b""
