"""The training job end to end on the bank's real export: choice of k, personas, manifest."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from segmentation.features import FEATURES
from training.job import (
    TrainingOptions,
    TrainingResult,
    UnfaithfulServingNumbers,
    prove_serving_numbers,
    train,
)
from training.loading import sample_data_path
from training.personas import load_playbook

BANK_SHA256 = "d20d9222771134f858148bea1a144615a874e98551cf12f445ec83c217e91a83"
# tests/training/<file> -> the checkout's parent directory, beside which the shared data lives.
SHARED_EXPORT = Path(__file__).resolve().parents[3] / "shared" / "data"
SWEEP_METRICS = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin")
QUANTILES = ("mean", "p25", "median", "p75")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _segment_by_mean(manifest: dict[str, Any], feature: str, pick: Any = max) -> dict[str, Any]:
    segment: dict[str, Any] = pick(
        manifest["segments"], key=lambda s: s["profile"][feature]["mean"]
    )
    return segment


def assert_personas_follow_profiles(manifest: dict[str, Any]) -> None:
    """The persona each profile implies, decided from the profiles, not from the sizes."""
    affluent = _segment_by_mean(manifest, "avg_credit_limit", max)
    support = _segment_by_mean(manifest, "avg_credit_limit", min)
    branch = _segment_by_mean(manifest, "total_visits_bank", max)
    assert affluent is _segment_by_mean(manifest, "total_visits_online", max)
    assert support is _segment_by_mean(manifest, "total_calls_made", max)
    assert len({id(affluent), id(support), id(branch)}) == 3
    assert (affluent["persona"], affluent["size"]) == ("digital-affluent", 50)
    assert (support["persona"], support["size"]) == ("support-seeking", 224)
    assert (branch["persona"], branch["size"]) == ("branch-loyal", 386)


def _comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    ignored = {"created_at", "version", "files", "lineage"}
    return {key: value for key, value in manifest.items() if key not in ignored}


def _read_manifest(result: TrainingResult) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((result.path / "manifest.json").read_text())
    return manifest


def test_default_run_picks_three_segments_by_silhouette_on_bank_export(
    trained_manifest: dict[str, Any],
) -> None:
    metrics = trained_manifest["metrics"]
    assert trained_manifest["k"] == 3
    assert metrics["selection"] == "silhouette"
    assert 0.51 < metrics["silhouette"] < 0.53
    best = max(metrics["sweep"], key=lambda point: point["silhouette"])
    assert best["k"] == 3


def test_default_run_segment_sizes_on_bank_export(trained_manifest: dict[str, Any]) -> None:
    sizes = [segment["size"] for segment in trained_manifest["segments"]]
    assert sizes == [386, 224, 50]
    assert [segment["share"] for segment in trained_manifest["segments"]] == pytest.approx(
        [386 / 660, 224 / 660, 50 / 660]
    )


def test_default_run_personas_follow_profiles_on_bank_export(
    trained_manifest: dict[str, Any],
) -> None:
    assert_personas_follow_profiles(trained_manifest)
    playbook = {persona.id: persona for persona in load_playbook().personas}
    for segment in trained_manifest["segments"]:
        persona = playbook[segment["persona"]]
        # A first training has no earlier ids to inherit: the persona gives the id.
        assert segment["segment_id"] == persona.id
        assert segment["name"] == persona.name
        assert segment["recommended_actions"] == {
            "marketing": list(persona.marketing),
            "service": list(persona.service),
        }


def test_manifest_has_contract_fields_on_bank_export(
    trained: TrainingResult, trained_manifest: dict[str, Any]
) -> None:
    manifest = trained_manifest
    assert manifest["version"] == trained.path.name == trained.version
    assert (trained.path.parent / "latest").read_text().strip() == trained.version
    assert manifest["created_at"].endswith("Z")
    datetime.fromisoformat(manifest["created_at"].replace("Z", "+00:00"))
    assert manifest["data_sha256"] == BANK_SHA256
    assert manifest["n_rows"] == 660
    assert manifest["features"] == list(FEATURES)
    assert manifest["k"] == 3


def test_manifest_metrics_cover_sweep_and_checks_on_bank_export(
    trained_manifest: dict[str, Any],
) -> None:
    metrics = trained_manifest["metrics"]
    assert [point["k"] for point in metrics["sweep"]] == list(range(2, 11))
    for point in metrics["sweep"]:
        assert set(SWEEP_METRICS) <= point.keys()
        assert all(math.isfinite(point[name]) for name in SWEEP_METRICS)
    inertia = [point["inertia"] for point in metrics["sweep"]]
    assert inertia == sorted(inertia, reverse=True)
    assert metrics["knee_k"] in range(2, 11)
    checks = metrics["cross_checks"]
    assert 0.9 < checks["ward_ari"] <= 1.0
    assert 0.9 < checks["gaussian_mixture_ari"] <= 1.0
    assert 0.9 < metrics["stability"]["mean_ari"] <= 1.0
    assert metrics["stability"]["n_resamples"] == 5


def test_manifest_segments_carry_catalog_fields_on_bank_export(
    trained_manifest: dict[str, Any],
) -> None:
    for segment in trained_manifest["segments"]:
        assert {"segment_id", "name", "size", "profile"} <= segment.keys()
        assert set(segment["profile"]) == set(FEATURES)
        for feature in FEATURES:
            stats = segment["profile"][feature]
            assert set(QUANTILES) <= stats.keys()
            assert stats["p25"] <= stats["median"] <= stats["p75"]
            assert stats["min"] <= stats["mean"] <= stats["max"]


def test_manifest_files_match_disk_on_bank_export(
    trained: TrainingResult, trained_manifest: dict[str, Any]
) -> None:
    files = trained_manifest["files"]
    assert set(files) == {"pipeline.joblib", "assignments.csv", "report.html"}
    for name, entry in files.items():
        assert entry["sha256"] == _sha256(trained.path / name)
        assert entry["bytes"] == (trained.path / name).stat().st_size


def test_assignments_cover_every_training_row_on_bank_export(
    trained: TrainingResult, trained_manifest: dict[str, Any], bank_frame: pd.DataFrame
) -> None:
    table = pd.read_csv(trained.path / "assignments.csv", dtype={"customer_key": str})
    assert len(table) == 660
    assert list(table.columns[:2]) == ["customer_key", "segment_id"]
    assert set(FEATURES) <= set(table.columns)
    assert table["customer_key"].tolist() == bank_frame["Customer Key"].astype(str).tolist()
    assert table[list(FEATURES)].to_numpy().tolist() == bank_frame.iloc[:, 2:].to_numpy().tolist()
    sizes = {segment["segment_id"]: segment["size"] for segment in trained_manifest["segments"]}
    assert table["segment_id"].value_counts().to_dict() == sizes


def test_assignments_agree_with_pipeline_on_bank_export(
    trained: TrainingResult, trained_manifest: dict[str, Any]
) -> None:
    table = pd.read_csv(trained.path / "assignments.csv")
    pipeline = joblib.load(trained.path / "pipeline.joblib")
    labels = pipeline.predict(table[list(FEATURES)].to_numpy(dtype=np.float64))
    by_label = {s["label"]: s["segment_id"] for s in trained_manifest["segments"]}
    assert [by_label[label] for label in labels] == table["segment_id"].tolist()


def test_duplicate_keys_are_counted_not_refused_on_bank_export(
    trained_manifest: dict[str, Any],
) -> None:
    quality = trained_manifest["data_quality"]
    assert quality["n_duplicate_keys"] == 5
    assert quality["n_rows_with_duplicate_key"] == 10
    assert len(quality["duplicate_keys"]) == 5
    assert quality["n_identical_feature_rows"] == 11


def test_bundled_sample_has_published_sha256() -> None:
    assert _sha256(sample_data_path()) == BANK_SHA256


def test_bundled_sample_is_byte_identical_to_shared_export() -> None:
    shared = SHARED_EXPORT / "credit_card_customer_data.csv"
    if not shared.exists():
        pytest.skip(f"the shared copy of the bank's export is absent: {shared}")
    assert sample_data_path().read_bytes() == shared.read_bytes()


def test_training_is_deterministic_for_same_data_and_seed(
    tmp_path: Path, quick_train: Callable[..., TrainingResult]
) -> None:
    first = quick_train(tmp_path / "first", seed=5)
    second = quick_train(tmp_path / "second", seed=5)
    assert _comparable(_read_manifest(first)) == _comparable(_read_manifest(second))
    assert (first.path / "assignments.csv").read_bytes() == (
        second.path / "assignments.csv"
    ).read_bytes()
    centres = [
        joblib.load(result.path / "pipeline.joblib")[-1].cluster_centers_
        for result in (first, second)
    ]
    np.testing.assert_array_equal(centres[0], centres[1])


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_personas_follow_profiles_for_any_seed(
    seed: int, tmp_path: Path, quick_train: Callable[..., TrainingResult]
) -> None:
    result = quick_train(tmp_path, seed=seed, k=3, k_max=3)
    assert result.manifest.seed == seed
    assert_personas_follow_profiles(result.manifest.to_document())


class _RecordingProgress:
    def __init__(self) -> None:
        self.tasks: dict[str, list[int]] = {}

    def start(self, description: str, total: int) -> Callable[[], None]:
        counts = self.tasks.setdefault(description, [total, 0])

        def advance() -> None:
            counts[1] += 1

        return advance


def test_progress_reports_every_sweep_step_and_resample(tmp_path: Path) -> None:
    progress = _RecordingProgress()
    train(TrainingOptions(models_dir=tmp_path, k_max=4, n_bootstrap=2), progress=progress)
    assert progress.tasks == {"k sweep": [3, 3], "bootstrap": [2, 2]}


def test_training_proves_the_manifest_numbers_reproduce_the_pipeline(
    trained: TrainingResult,
) -> None:
    pipeline = joblib.load(trained.path / "pipeline.joblib")
    table = pd.read_csv(trained.path / "assignments.csv")
    features = table[list(FEATURES)].to_numpy(dtype=np.float64)
    labels = pipeline.predict(features)
    prove_serving_numbers(trained.manifest, features, labels)  # the published version's
    moved = dict(trained.manifest.segments[0].z_centroid)
    moved["avg_credit_limit"] += 3.0
    changed = replace(
        trained.manifest,
        segments=(
            replace(trained.manifest.segments[0], z_centroid=moved),
            *trained.manifest.segments[1:],
        ),
    )
    with pytest.raises(UnfaithfulServingNumbers, match="training customers would be served"):
        prove_serving_numbers(changed, features, labels)
