"""Loading a model version for serving: verify, check compatibility, build the scorer from
the manifest, self-test. Nothing is unpickled: the service never imports scikit-learn."""

from __future__ import annotations

import logging
from pathlib import Path

from segmentation.artifact import ASSIGNMENTS_FILE, ArtifactError, read_latest, verify_version
from segmentation.features import FEATURES
from segmentation.manifest import Manifest
from service.models.active_model import ActiveModel
from service.models.snapshot import TrainingSnapshot

logger = logging.getLogger(__name__)


def load_model(
    models_dir: Path,
    version: str | None = None,
    *,
    signing_keys: tuple[str, ...] = (),
    self_test_rows: int = 10_000,
) -> tuple[ActiveModel, TrainingSnapshot]:
    """Load ``version`` (default: the one `latest` names) and prove it answers as trained.

    Raises
    ------
    ArtifactError
        For a missing, unverifiable, incompatible or self-contradicting version.
    """
    version = version or read_latest(models_dir)
    verified = verify_version(models_dir, version, signing_keys=signing_keys)
    manifest = verified.manifest
    _check_compatibility(manifest)
    try:
        model = ActiveModel(version=version, manifest=manifest)
    except ValueError as error:
        raise ArtifactError("manifest_invalid", f"the manifest cannot score: {error}") from None
    snapshot = TrainingSnapshot.read(verified.path / ASSIGNMENTS_FILE)
    self_test(model, snapshot, rows=self_test_rows)
    logger.info(
        "model %s verified and self-tested on %d rows", version, min(len(snapshot), self_test_rows)
    )
    return model, snapshot


def _check_compatibility(manifest: Manifest) -> None:
    if manifest.features != FEATURES:
        raise ArtifactError(
            "features_mismatch",
            f"the model was trained on features {list(manifest.features)}, "
            f"the service expects {list(FEATURES)}",
        )


def self_test(model: ActiveModel, snapshot: TrainingSnapshot, *, rows: int) -> None:
    """Re-score training customers on the serving path; any disagreement refuses the model."""
    count = min(rows, len(snapshot))
    if count == 0:
        raise ArtifactError("self_test_failed", "the training snapshot holds no customers")
    scored = model.scorer.score(snapshot.features[:count])
    ids = model.segment_ids
    mismatches = [
        row
        for row, label in enumerate(scored.labels.tolist())
        if ids[label] != snapshot.segment_ids[row]
    ]
    if mismatches:
        first = mismatches[0]
        raise ArtifactError(
            "self_test_failed",
            f"{len(mismatches)} of {count} training customers score differently from training "
            f"(first: row {first + 1}, key {snapshot.keys[first]}: "
            f"{ids[scored.labels[first]]} instead of {snapshot.segment_ids[first]})",
        )
