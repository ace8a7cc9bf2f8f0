"""Tests of the HTML model card rendered by training.report."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from segmentation.features import FEATURES
from segmentation.manifest import DistinguishingFeature, Manifest, Stability
from training.report import render_report

REAL_EXPORT = Path("/work/shared/data/credit_card_customer_data.csv")
IMAGE_MARKER = "data:image/png;base64,"
PLOTS_OUTSIDE_SEGMENTS = 4  # elbow, silhouette, segment sizes, 2-D map
HOSTILE = '<script>alert("x")</script>'
VOID_ELEMENTS = frozenset({"meta", "img", "br", "hr", "link", "input"})

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


class Model:
    """A real StandardScaler + KMeans fit and the manifest a training run would write."""

    def __init__(self) -> None:
        frame = pd.read_csv(REAL_EXPORT, encoding="utf-8-sig")
        self.features: FloatArray = frame.iloc[:, 2:7].to_numpy(dtype=np.float64)
        self.scaler = StandardScaler().fit(self.features)
        self.standardised: FloatArray = self.scaler.transform(self.features)
        self.kmeans = KMeans(n_clusters=3, n_init=4, random_state=0).fit(self.standardised)
        labels = self.kmeans.labels_
        # Segments listed from the highest to the lowest credit limit.
        order = np.argsort(-self.kmeans.cluster_centers_[:, 0])
        self.position_of_label = np.argsort(order)
        self.positions: IntArray = self.position_of_label[labels].astype(np.intp)
        self.document = _manifest(self, [int(label) for label in order])
        self.manifest = Manifest.from_document(self.document)

    def positions_for(self, features: FloatArray) -> tuple[IntArray, FloatArray]:
        standardised: FloatArray = self.scaler.transform(features)
        labels = self.kmeans.predict(standardised)
        return self.position_of_label[labels].astype(np.intp), standardised


_NAMES = (
    ("digital-affluent", "Affluent digital customers"),
    ("branch-mainstream", "Branch-loyal mainstream customers"),
    ("phone-reliant", "Phone-reliant low-limit customers"),
)


def _sweep(standardised: FloatArray) -> list[dict[str, float]]:
    rows = []
    for k in range(2, 6):
        model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(standardised)
        rows.append(
            {
                "k": k,
                "inertia": float(model.inertia_),
                "silhouette": float(silhouette_score(standardised, model.labels_)),
                "calinski_harabasz": float(calinski_harabasz_score(standardised, model.labels_)),
                "davies_bouldin": float(davies_bouldin_score(standardised, model.labels_)),
            }
        )
    return rows


def _profile(rows: FloatArray) -> dict[str, dict[str, float]]:
    return {
        feature: {
            "mean": float(rows[:, i].mean()),
            "p25": float(np.percentile(rows[:, i], 25)),
            "median": float(np.median(rows[:, i])),
            "p75": float(np.percentile(rows[:, i], 75)),
            "min": float(rows[:, i].min()),
            "max": float(rows[:, i].max()),
        }
        for i, feature in enumerate(FEATURES)
    }


def _segment(model: Model, position: int, label: int) -> dict[str, Any]:
    segment_id, name = _NAMES[position]
    rows = model.features[model.positions == position]
    z = model.kmeans.cluster_centers_[label]
    distinguishing = [
        {
            "feature": FEATURES[i],
            "z": round(float(z[i]), 2),
            "direction": "high" if z[i] > 0 else "low",
        }
        for i in np.argsort(-np.abs(z))
        if abs(z[i]) >= 0.5
    ]
    return {
        "segment_id": segment_id,
        "label": label,
        "name": name,
        "description": f"Customers of the {name.lower()} group.",
        "persona": segment_id,
        "persona_fit": 1.5 + position / 10,
        "size": len(rows),
        "share": len(rows) / len(model.features),
        "profile": _profile(rows),
        "centroid": dict(zip(FEATURES, map(float, rows.mean(axis=0)), strict=True)),
        "z_centroid": dict(zip(FEATURES, map(float, z), strict=True)),
        "distinguishing_features": distinguishing,
        "recommended_actions": {
            "marketing": [f"Offer {segment_id} a tailored card upgrade"],
            "service": [f"Route {segment_id} to the preferred channel"],
        },
        "atypical_distance": 3.1,
    }


def _manifest(model: Model, order: list[int]) -> dict[str, Any]:
    segments = [_segment(model, position, label) for position, label in enumerate(order)]
    sweep = _sweep(model.standardised)
    return {
        "format_version": 1,
        "version": "20261123T184512Z-d20d9222",
        "created_at": "2026-11-23T18:45:12Z",
        "data_source": "bundled sample: credit_card_customer_data.csv",
        "data_sha256": "d20d9222" * 8,
        "n_rows": len(model.features),
        "features": list(FEATURES),
        "k": 3,
        "seed": 0,
        "libraries": {"python": "3.11.7", "scikit-learn": "1.9.1"},
        "metrics": {
            "selection": "silhouette",
            "k_range": [2, 5],
            "sweep": sweep,
            "knee_k": 3,
            "silhouette": sweep[1]["silhouette"],
            "sweep_sample_size": len(model.features),
            "silhouette_sample_size": len(model.features),
            "cross_checks": {"ward_ari": 0.97, "gaussian_mixture_ari": 0.91, "sample_size": 660},
            "stability": {"mean_ari": 0.99, "min_ari": 0.97, "n_resamples": 20},
        },
        "scaler": {
            "mean": dict(zip(FEATURES, map(float, model.scaler.mean_), strict=True)),
            "scale": dict(zip(FEATURES, map(float, model.scaler.scale_), strict=True)),
        },
        "scoring": {
            "feature_min": dict(zip(FEATURES, map(float, model.features.min(axis=0)), strict=True)),
            "feature_max": dict(zip(FEATURES, map(float, model.features.max(axis=0)), strict=True)),
        },
        "data_quality": {
            "n_rows": 660,
            "n_duplicate_keys": 5,
            "n_rows_with_duplicate_key": 10,
            "duplicate_keys": ["47437", "37252", "97935", "96929", "50706"],
            "n_identical_feature_rows": 11,
        },
        "segments": segments,
        "persona_matching": {
            "playbook": "playbook.toml",
            "fits": [
                {"segment_id": s["segment_id"], "persona": s["persona"], "fit": s["persona_fit"]}
                for s in segments
            ],
        },
        "lineage": {
            "previous_version": None,
            "matched": {},
            "moved_customers": 0,
            "compared_customers": 0,
        },
        "files": {},
    }


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def report(model: Model) -> str:
    return _render(model, model.manifest)


def _render(model: Model, manifest: Manifest) -> str:
    return render_report(
        manifest, segment_positions=model.positions, standardised=model.standardised
    )


class _TagBalance(HTMLParser):
    """Records tags left open or closed out of order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_report_is_complete_html_document_when_manifest_is_full(report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    assert report.rstrip().endswith("</html>")
    for part in ('<html lang="en">', '<meta charset="utf-8">', "<title>", "<body>", "<style>"):
        assert part in report
    parser = _TagBalance()
    parser.feed(report)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []


def test_report_shows_every_segment_name_id_and_action_when_manifest_is_full(
    model: Model, report: str
) -> None:
    for segment in model.manifest.segments:
        assert segment.name in report
        assert segment.segment_id in report
        for action in (
            *segment.recommended_actions["marketing"],
            *segment.recommended_actions["service"],
        ):
            assert action in report


def test_report_embeds_one_image_per_plot_when_manifest_is_full(model: Model, report: str) -> None:
    k = len(model.manifest.segments)
    assert report.count(IMAGE_MARKER) == PLOTS_OUTSIDE_SEGMENTS + k
    assert len(
        re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]+">', report)
    ) == (PLOTS_OUTSIDE_SEGMENTS + k)


def test_report_references_no_external_resource_when_manifest_is_full(report: str) -> None:
    lowered = report.lower()
    for forbidden in (
        'src="http',
        "src='http",
        "<link",
        "<script",
        "@import",
        "url(",
        'href="http',
    ):
        assert forbidden not in lowered


def test_report_escapes_markup_when_segment_text_contains_script_tag(model: Model) -> None:
    document = copy.deepcopy(model.document)
    segment = document["segments"][0]
    segment["name"] = f"VIP {HOSTILE}"
    segment["segment_id"] = f"vip-{HOSTILE}"
    segment["description"] = HOSTILE
    segment["recommended_actions"] = {"marketing": [HOSTILE], "service": [HOSTILE]}
    document["data_quality"]["duplicate_keys"] = [HOSTILE]
    document["version"] = HOSTILE

    report = _render(model, Manifest.from_document(document))

    assert "<script" not in report.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in report


def test_report_says_not_available_or_none_where_the_manifest_has_no_value(model: Model) -> None:
    metrics = replace(
        model.manifest.metrics,
        knee_k=None,
        stability=Stability(mean_ari=None, min_ari=None, n_resamples=0),
    )
    segments = (replace(model.manifest.segments[0], persona=None), *model.manifest.segments[1:])
    manifest = replace(model.manifest, metrics=metrics, segments=segments)

    report = _render(model, manifest)

    assert 'Knee of the inertia curve: k = <span class="na">not available</span>' in report
    assert '<dt>Bootstrap stability, mean ARI</dt><dd><span class="na">not available' in report
    assert "persona: none" in report
    assert report.count(IMAGE_MARKER) == PLOTS_OUTSIDE_SEGMENTS + len(manifest.segments)


def test_report_describes_distinguishing_feature_in_plain_words_when_z_is_given(
    model: Model,
) -> None:
    traits = (
        DistinguishingFeature(feature="avg_credit_limit", z=2.83, direction="high"),
        DistinguishingFeature(feature="total_calls_made", z=-1.1, direction="low"),
    )
    first = replace(model.manifest.segments[0], distinguishing_features=traits)
    manifest = replace(model.manifest, segments=(first, *model.manifest.segments[1:]))

    report = _render(model, manifest)

    assert "high average credit limit (z = +2.83)" in report
    assert "low calls to the bank (z = -1.10)" in report


def test_report_formats_credit_limit_as_money_when_profile_is_given(
    model: Model, report: str
) -> None:
    median = model.manifest.segments[0].profile["avg_credit_limit"].median
    assert f"{median:,.0f}" in report
    assert "," in f"{median:,.0f}"


def test_report_highlights_chosen_k_when_sweep_contains_it(report: str) -> None:
    assert re.search(r'<tr class="chosen"><td>3</td>', report)
    assert report.count('<tr class="chosen">') == 1


def test_report_rejects_positions_when_they_name_no_segment(model: Model) -> None:
    positions = model.positions.copy()
    positions[0] = len(model.manifest.segments)
    with pytest.raises(ValueError, match="segment_positions"):
        render_report(model.manifest, segment_positions=positions, standardised=model.standardised)


def _large_input(model: Model, n: int) -> tuple[IntArray, FloatArray]:
    rng = np.random.default_rng(7)
    return model.positions_for(model.features[rng.integers(0, len(model.features), size=n)])


def test_report_renders_when_input_has_200000_rows(model: Model) -> None:
    positions, standardised = _large_input(model, 200_000)

    report = render_report(model.manifest, segment_positions=positions, standardised=standardised)

    assert report.count(IMAGE_MARKER) == PLOTS_OUTSIDE_SEGMENTS + len(model.manifest.segments)
    assert "5,000 of 200,000 customers" in report


def test_report_is_identical_when_rendered_twice_from_sampled_input(model: Model) -> None:
    positions, standardised = _large_input(model, 6_000)

    first, second = (
        render_report(model.manifest, segment_positions=positions, standardised=standardised)
        for _ in range(2)
    )

    assert first == second
