"""The dashboard in headless Chromium against a real service process: it loads cleanly,
shows the API's figures, refreshes them live, and passes axe-core's accessibility rules."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from service.dashboard.pages import LIVE_SECONDS
from tests.service.dashboard.browser import AXE, LAPTOP, TABLET, chromium
from tests.service.dashboard.traffic import (
    SHIFTED_FEATURES,
    batches,
    shifted,
    training_features,
)
from tests.service.helpers import CRM_KEY, KEYS
from tests.service.processes import service_process, wait_for_log

pytestmark = pytest.mark.slow


@contextmanager
def running_service(
    models: Path, tmp_path: Path, environment: dict[str, str] | None = None
) -> Iterator[str]:
    """``python -m service`` over ``models``; yields its address."""
    with service_process(models, tmp_path, 1, environment=environment) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", 1)
        yield f"http://127.0.0.1:{port}"


class Troubles:
    """Everything that went wrong while a page loaded and ran: console errors, uncaught
    exceptions, requests that failed or were answered with an error status."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on(
            "console",
            lambda message: (
                self.seen.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.seen.append(f"failed: {request.url}"))
        page.on(
            "response",
            lambda response: (
                self.seen.append(f"{response.status}: {response.url}")
                if response.status >= 400
                else None
            ),
        )


def assert_accessible(browser: Browser, url: str, viewport: dict[str, int]) -> None:
    """No serious or critical axe-core violation on the page at ``url``. In a context that
    bypasses the page's content security policy: axe is injected as an inline script."""
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        page.add_script_tag(path=str(AXE))
        results: dict[str, Any] = page.evaluate("axe.run()")
    finally:
        context.close()
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']}: "
        f"{[node['target'] for node in violation['nodes']][:5]}"
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{url} at {viewport}:\n" + "\n".join(serious)
    assert results["passes"], "axe-core checked nothing"


def assert_cards_match(page: Page, catalog: list[dict[str, Any]]) -> None:
    cards = page.locator("article[data-segment-id]")
    expect(cards).to_have_count(len(catalog))
    for index, segment in enumerate(catalog):
        card = cards.nth(index)
        assert card.get_attribute("data-segment-id") == segment["segment_id"]
        expect(card.locator("[data-figure=name]")).to_have_text(segment["name"])
        expect(card.locator("[data-figure=size]")).to_have_text(f"{segment['size']:,}")
        expect(card.locator("[data-figure=live-size]")).to_have_text(f"{segment['live_size']:,}")


def assert_charts_labelled(page: Page, expected: int) -> None:
    """Every chart is drawn, and named and described by its own title and description."""
    charts = page.locator("svg[role=img]")
    expect(charts).to_have_count(expected)
    for index in range(expected):
        chart = charts.nth(index)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50
        title_id, description_id = (chart.get_attribute("aria-labelledby") or "").split()
        assert chart.locator(f"title#{title_id}").text_content()
        assert chart.locator(f"desc#{description_id}").text_content()
        assert chart.locator("text").count() >= 3  # its labels


def test_the_dashboard_in_a_browser(
    with_candidate: tuple[Path, str, str],
    tmp_path: Path,
    training_assignments: pd.DataFrame,
) -> None:
    source, _, candidate = with_candidate
    models = tmp_path / "models"
    shutil.copytree(source, models)
    moved = shifted(training_features(training_assignments), 1_000, seed=11)
    with (
        running_service(models, tmp_path, {"DRIFT_WINDOW": "1000"}) as base,
        httpx.Client(base_url=base, timeout=60) as api,
        chromium() as browser,
    ):
        context = browser.new_context(viewport=LAPTOP)
        page = context.new_page()
        troubles = Troubles(page)
        page.clock.install()  # the live refresh runs when the test moves the clock
        page.goto(f"{base}/dashboard")

        catalog = api.get("/segments").json()["segments"]
        assert_cards_match(page, catalog)
        assert_charts_labelled(page, len(catalog))  # no PSI chart yet: the window is empty
        expect(page.locator("tr[data-drift] [data-figure=band]").first).to_have_text("insufficient")
        laptop = tmp_path / "dashboard-laptop.png"
        page.screenshot(path=laptop, full_page=True)
        page.set_viewport_size(TABLET)
        tablet = tmp_path / "dashboard-tablet.png"
        page.screenshot(path=tablet, full_page=True)
        print(f"\nscreenshots: {laptop} {tablet}")

        for body in batches(moved):
            assert api.post("/segment/batch", json=body).status_code == 200
        page.clock.fast_forward((LIVE_SECONDS + 1) * 1000)
        for feature in SHIFTED_FEATURES:
            band = page.locator(f"tr[data-drift={feature}] [data-figure=band]")
            expect(band).to_have_text("act", timeout=15_000)  # updated in place, no reload
        report = api.get("/drift").json()
        assert report["window"]["customers"] == 1_000
        for feature, figure in report["features"].items():
            row = page.locator(f"tr[data-drift={feature}]")
            expect(row.locator("[data-figure=psi]")).to_have_text(f"{figure['psi']:.2f}")
            expect(row.locator("[data-figure=band]")).to_have_text(figure["band"])
        expect(page.locator("[data-figure=retrain]")).to_have_text("Retrain recommended")
        assert_charts_labelled(page, len(catalog) + 1)  # and now the PSI chart
        expect(page.locator("#live-status")).to_contain_text("Live figures as of")

        page.goto(f"{base}/dashboard/models")
        comparison = api.get(f"/models/{candidate}/comparison").json()
        section = page.locator(f"article[data-candidate='{candidate}']")
        cells = section.locator("svg[role=img] g[data-count]")
        drawn = {
            (cell.get_attribute("data-from"), cell.get_attribute("data-to")): int(
                cell.locator("text").text_content() or "-1"
            )
            for cell in cells.all()
        }
        transitions = {(f["from"], f["to"]): f["count"] for f in comparison["transitions"]}
        assert {pair: count for pair, count in drawn.items() if count} == transitions
        verdict = "switch" if comparison["verdict"]["ok"] else "do not switch"
        expect(section.locator("[data-figure=verdict]")).to_contain_text(f"Verdict: {verdict}")
        assert_charts_labelled(page, 1)
        context.close()
        assert troubles.seen == []

        for path in ("/dashboard", "/dashboard/models"):
            for viewport in (LAPTOP, TABLET):
                assert_accessible(browser, f"{base}{path}", viewport)


def test_with_keys_the_browser_signs_in_first(models_dir: Path, tmp_path: Path) -> None:
    environment = {"API_KEYS": KEYS["api_keys"], "ADMIN_API_KEY": KEYS["admin_api_key"]}
    with running_service(models_dir, tmp_path, environment) as base, chromium() as browser:
        context = browser.new_context(viewport=LAPTOP)
        page = context.new_page()
        page.goto(f"{base}/dashboard")
        assert page.url == f"{base}/dashboard/sign-in"
        assert_accessible(browser, page.url, LAPTOP)

        page.fill("#key", "not-a-key")
        with page.expect_response(f"{base}/dashboard/sign-in") as refused:
            page.click("button[type=submit]")
        assert refused.value.status == 403
        expect(page.get_by_role("alert")).to_have_text("That key is not valid.")
        assert context.cookies() == []

        page.fill("#key", CRM_KEY)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard")
        expect(page.locator("article[data-segment-id]").first).to_be_visible()
        expect(page.locator("form.sign-out")).to_contain_text("Signed in as crm")
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] is True
        assert cookie["secure"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/dashboard"

        page.click("form.sign-out button")
        page.wait_for_url(f"{base}/dashboard/sign-in")
        assert context.cookies() == []
        context.close()
