"""The typed manifest: one reader that checks everything, one writer, the file's layout kept."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from segmentation.artifact import read_manifest, sign_manifest
from segmentation.manifest import FORMAT_VERSION, Manifest, ManifestError
from training.job import TrainingResult


@pytest.fixture
def document(trained: TrainingResult) -> dict[str, Any]:
    written: dict[str, Any] = json.loads((trained.path / "manifest.json").read_text())
    return written


def test_the_file_reads_back_to_the_manifest_training_returned(
    trained: TrainingResult, document: dict[str, Any]
) -> None:
    assert read_manifest(trained.path) == trained.manifest
    assert trained.manifest.to_document() == document
    assert json.loads(trained.manifest.to_json()) == document


def test_an_unsigned_manifest_is_written_without_a_signature_field(
    trained: TrainingResult,
) -> None:
    assert not trained.manifest.signed
    assert "signature" not in trained.manifest.to_document()
    signed = sign_manifest(trained.manifest, "a key")
    assert signed.signed
    assert signed.to_document()["signature"]["algorithm"] == "hmac-sha256"


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_another_format_version_is_refused_before_any_field_is_read(
    document: dict[str, Any], version: object
) -> None:
    document["format_version"] = version
    del document["segments"]
    with pytest.raises(ManifestError, match=f"format_version={version!r} is not {FORMAT_VERSION}"):
        Manifest.from_document(document)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["segments"][1].update(size="386"),
            r"Expected `int`, got `str` - at `\$.segments\[1\].size`",
        ),
        (lambda d: d["segments"][0].update(size=True), r"Expected `int`, got `bool`"),
        (
            lambda d: d["segments"][0].pop("name"),
            r"missing required field `name` - at `\$.segments\[0\]`",
        ),
        (lambda d: d["metrics"].update(selection="guess"), r"`\$.metrics.selection`"),
        (
            lambda d: d["scaler"]["mean"].update(avg_credit_limit="a lot"),
            r"`\$.scaler.mean\[...\]`",
        ),
        (lambda d: d["files"]["pipeline.joblib"].pop("sha256"), r"`sha256`"),
    ],
)
def test_a_missing_or_mistyped_field_is_refused_by_its_path(
    document: dict[str, Any], change: Any, message: str
) -> None:
    change(document)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_document(document)


def test_fields_a_later_writer_adds_are_ignored(document: dict[str, Any]) -> None:
    extended = copy.deepcopy(document)
    extended["shadow_report"] = {"anything": [1, 2, 3]}
    extended["segments"][0]["colour"] = "#123456"
    assert Manifest.from_document(extended) == Manifest.from_document(document)


@pytest.mark.parametrize("not_an_object", [[], "manifest", 3, None])
def test_a_document_that_is_not_an_object_is_refused(not_an_object: object) -> None:
    with pytest.raises(ManifestError, match="not a JSON object"):
        Manifest.from_document(not_an_object)


def test_segments_by_label_follow_the_labels_not_the_catalog_order(
    trained: TrainingResult,
) -> None:
    by_label = trained.manifest.segments_by_label()
    assert [segment.label for segment in by_label] == list(range(trained.manifest.k))
    assert {segment.segment_id for segment in by_label} == {
        segment.segment_id for segment in trained.manifest.segments
    }


def test_a_version_trained_before_drift_baselines_reads_without_one(
    document: dict[str, Any],
) -> None:
    assert document["drift_baseline"]["segment_mix"]  # what training writes now
    del document["drift_baseline"]
    assert Manifest.from_document(document).drift_baseline is None


def test_a_figure_that_is_not_a_number_is_never_written(trained: TrainingResult) -> None:
    broken = replace(
        trained.manifest, metrics=replace(trained.manifest.metrics, silhouette=float("nan"))
    )
    with pytest.raises(ValueError, match="JSON compliant"):
        broken.to_json()
