"""Loading a model version for serving: verify, check compatibility, unpickle, self-test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sklearn

from segmentation.artifact import ASSIGNMENTS_FILE, ArtifactError, read_latest, verify_version
from segmentation.features import FEATURES
from segmentation.manifest import Manifest
from segmentation.kernels import warm_up
from service.models.active_model import ActiveModel
from service.models.snapshot import TrainingSnapshot

logger = logging.getLogger(__name__)


def load_model(
    models_dir: Path,
    version: str | None = None,
    *,
    signing_keys: tuple[str, ...] = (),
    allow_sklearn_mismatch: bool = False,
    self_test_rows: int = 10_000,
) -> tuple[ActiveModel, TrainingSnapshot]:
    """Load ``version`` (default: the one `latest` names) and prove it answers as trained.

    Raises
    ------
    ArtifactError
        For a missing, unverifiable, incompatible or self-contradicting version; nothing
        is unpickled before the manifest, its signature and the file hashes checked out.
    """
    version = version or read_latest(models_dir)
    verified = verify_version(models_dir, version, signing_keys=signing_keys)
    manifest = verified.manifest
    _check_compatibility(manifest, allow_sklearn_mismatch=allow_sklearn_mismatch)
    pipeline = verified.load_pipeline()
    _check_pipeline(pipeline, manifest)
    warm_up()  # compiled kernels loaded now, not on the first request
    model = ActiveModel(version=version, manifest=manifest, pipeline=pipeline)
    snapshot = TrainingSnapshot.read(verified.path / ASSIGNMENTS_FILE)
    self_test(model, snapshot, rows=self_test_rows)
    logger.info(
        "model %s verified and self-tested on %d rows", version, min(len(snapshot), self_test_rows)
    )
    return model, snapshot


def _check_compatibility(manifest: Manifest, *, allow_sklearn_mismatch: bool) -> None:
    if manifest.features != FEATURES:
        raise ArtifactError(
            "features_mismatch",
            f"the model was trained on features {list(manifest.features)}, "
            f"the service expects {list(FEATURES)}",
        )
    trained_with = manifest.libraries.get("scikit-learn")
    if trained_with != sklearn.__version__:
        message = (
            f"the model was trained with scikit-learn {trained_with}, "
            f"the service runs {sklearn.__version__}"
        )
        if not allow_sklearn_mismatch:
            raise ArtifactError(
                "library_mismatch",
                message + " (set ALLOW_SKLEARN_VERSION_MISMATCH=true to serve it anyway)",
            )
        logger.warning("%s; served because ALLOW_SKLEARN_VERSION_MISMATCH is set", message)


def _check_pipeline(pipeline: Any, manifest: Manifest) -> None:
    try:
        n_clusters = pipeline[-1].cluster_centers_.shape[0]
        n_features = pipeline[0].mean_.shape[0]
    except (AttributeError, IndexError, TypeError, KeyError):
        raise ArtifactError(
            "pipeline_invalid", "pipeline.joblib is not a fitted StandardScaler -> KMeans pipeline"
        ) from None
    labels = sorted(segment.label for segment in manifest.segments)
    if n_features != len(FEATURES) or n_clusters != manifest.k or labels != list(range(n_clusters)):
        raise ArtifactError(
            "pipeline_invalid",
            f"the pipeline has {n_clusters} centres over {n_features} features; the manifest "
            f"describes k={manifest.k} segments with labels {labels}",
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
