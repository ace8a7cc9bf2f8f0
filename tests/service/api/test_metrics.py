"""GET /metrics: the families, route templates as labels, and the scoring counters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from segmentation.scoring import FAR_FROM_CENTROID, above_range_reason
from service import metrics
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS, customer

FAMILIES = {
    "segmentation_http_requests",
    "segmentation_http_request_duration_seconds",
    "segmentation_assignments",
    "segmentation_atypical_customers",
    "segmentation_active_model",
    "segmentation_model_reloads",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def test_metrics_are_prometheus_text_with_every_family(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= FAMILIES


async def test_requests_are_counted_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    segment_id = (await client.get("/segments")).json()["segments"][0]["segment_id"]
    for key in ("k-1", "k-2", "k-3"):
        await client.get(f"/customers/{key}")
    await client.get(f"/segments/{segment_id}")
    await client.get("/no/such/path/12345")
    text = (await client.get("/metrics")).text
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert {"/segments", "/segments/{segment_id}", "/customers/{customer_key}"} <= routes
    assert "unmatched" in routes
    # Only label values are checked: sample values (CPU seconds, sums) may hold any digits.
    labels = " ".join(re.findall(r"\{[^}]*\}", text))
    assert not any(key in labels for key in ("k-1", "k-2", "12345", f'/segments/{segment_id}"'))
    assert (
        value(
            text,
            "segmentation_http_requests_total",
            method="GET",
            route="/segments/{segment_id}",
            status="200",
        )
        or 0
    ) >= 1
    assert (
        value(
            text,
            "segmentation_http_request_duration_seconds_count",
            method="GET",
            route="/customers/{customer_key}",
        )
        or 0
    ) >= 3


async def test_refused_requests_keep_their_route_template(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        before = (await client.get("/metrics")).text
        await client.get("/segments/some-segment")
        await client.post("/segment", json=customer(), headers={"X-API-Key": "wrong"})
        after = (await client.get("/metrics")).text
    labels = {"method": "GET", "route": "/segments/{segment_id}", "status": "401"}
    count = value(after, "segmentation_http_requests_total", **labels)
    assert count == (value(before, "segmentation_http_requests_total", **labels) or 0) + 1
    forbidden = {"method": "POST", "route": "/segment", "status": "403"}
    assert (value(after, "segmentation_http_requests_total", **forbidden) or 0) >= 1


async def test_unknown_methods_are_one_label(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/segments")
    text = (await client.get("/metrics")).text
    assert 'method="BREW"' not in text
    assert 'method="other"' in text


async def test_metrics_need_no_key_when_keys_are_set(models_dir: Path) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        await client.get("/segments", headers={"X-API-Key": CRM_KEY})
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "segmentation_http_requests_total" in response.text


async def test_active_model_gauge_names_the_served_version(client: httpx.AsyncClient) -> None:
    version = (await client.get("/model")).json()["model_version"]
    text = (await client.get("/metrics")).text
    assert value(text, "segmentation_active_model", version=version) == 1.0
    active = [
        labels
        for (name, labels), sample in samples(text).items()
        if name == "segmentation_active_model" and sample == 1.0
    ]
    assert active == [frozenset({("version", version)})]
    info = {
        labels: sample
        for (name, labels), sample in samples(text).items()
        if name == "segmentation_model_info"
    }
    assert info == {frozenset({("version", version)}): 1.0}


async def test_no_created_series_are_exposed(client: httpx.AsyncClient) -> None:
    await client.get("/segments")
    text = (await client.get("/metrics")).text
    assert "segmentation_http_requests_total" in text
    assert "_created" not in text


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_record_assignments_counts_each_customer_by_segment() -> None:
    before = counter("segmentation_assignments_total", segment_id="branch-loyal")
    other = counter("segmentation_assignments_total", segment_id="digital-affluent")
    metrics.record_assignments(["branch-loyal"])
    metrics.record_assignments(["branch-loyal", "digital-affluent", "branch-loyal"])
    assert counter("segmentation_assignments_total", segment_id="branch-loyal") == before + 3
    assert counter("segmentation_assignments_total", segment_id="digital-affluent") == other + 1


def test_record_atypical_counts_reasons_and_bounds_the_label() -> None:
    high_limit = above_range_reason("avg_credit_limit")
    before = counter("segmentation_atypical_customers_total", reason=high_limit)
    far = counter("segmentation_atypical_customers_total", reason=FAR_FROM_CENTROID)
    other = counter("segmentation_atypical_customers_total", reason="other")
    metrics.record_atypical([high_limit, FAR_FROM_CENTROID, high_limit, "made-up reason 42"])
    assert counter("segmentation_atypical_customers_total", reason=high_limit) == before + 2
    assert counter("segmentation_atypical_customers_total", reason=FAR_FROM_CENTROID) == far + 1
    assert counter("segmentation_atypical_customers_total", reason="other") == other + 1
    assert counter("segmentation_atypical_customers_total", reason="made-up reason 42") == 0


def test_set_active_version_keeps_one_series() -> None:
    metrics.set_active_version("v-old", None)
    metrics.set_active_version("v-new", "v-old")
    assert counter("segmentation_active_model", version="v-new") == 1.0
    assert metrics.REGISTRY.get_sample_value("segmentation_active_model", {"version": "v-old"}) in (
        None,
        0.0,
    )


def test_several_workers_share_their_metrics_through_files(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, /metrics adds up every worker's counters."""
    worker = (
        "from service import metrics\n"
        "metrics.record_assignments(['branch-loyal'] * 2)\n"
        "metrics.set_active_version('v1', None)\n"
    )
    reader = (
        "import sys\n"
        "from service import metrics\n"
        "assert metrics.MULTIPROCESS\n"
        "body, content_type = metrics.exposition()\n"
        "sys.stdout.write(body.decode())\n"
    )
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=environment, check=True)
    text = subprocess.run(
        [sys.executable, "-c", reader], env=environment, check=True, capture_output=True, text=True
    ).stdout
    assert value(text, "segmentation_assignments_total", segment_id="branch-loyal") == 4.0
    gauges = [
        dict(labels)
        for (name, labels), sample in samples(text).items()
        if name == "segmentation_active_model" and sample == 1.0
    ]
    assert len(gauges) == 2 and {gauge["version"] for gauge in gauges} == {"v1"}
    info = {
        labels: sample
        for (name, labels), sample in samples(text).items()
        if name == "segmentation_model_info"
    }
    assert info == {frozenset({("version", "v1")}): 1.0}  # one series for all the workers


async def test_scoring_routes_count_assignments_and_atypical_reasons(
    client: httpx.AsyncClient,
) -> None:
    def read(text: str, name: str, **labels: str) -> float:
        return value(text, name, **labels) or 0.0

    before = (await client.get("/metrics")).text
    single = (await client.post("/segment", json={**customer(), "total_calls_made": 60})).json()
    batch = (await client.post("/segment/batch", json={"customers": [customer()] * 3})).json()
    after = (await client.get("/metrics")).text
    calls = above_range_reason("total_calls_made")
    assert calls in single["atypical_reasons"]
    assert read(after, "segmentation_atypical_customers_total", reason=calls) == (
        read(before, "segmentation_atypical_customers_total", reason=calls) + 1
    )
    batch_segment = batch["results"][0]["segment_id"]
    expected = 3 + (single["segment_id"] == batch_segment)
    assert read(after, "segmentation_assignments_total", segment_id=batch_segment) == (
        read(before, "segmentation_assignments_total", segment_id=batch_segment) + expected
    )
