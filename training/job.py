"""The training job: load -> validate -> sweep -> fit -> check -> profile -> name -> publish."""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy
import sklearn

from segmentation.artifact import FORMAT_VERSION
from segmentation.assignments_file import VersionAssignments
from segmentation.features import FEATURES, canonical_column_name
from training import lineage, selection
from training.loading import (
    CustomerExport,
    InvalidCustomerData,
    read_customer_file,
    sample_data_path,
)
from training.personas import Playbook, load_playbook, name_segments
from training.profiles import SegmentProfile, profile_segments
from training.publishing import publish_version, version_name
from training.report import render_report
from training.synthetic import generate_customers
from training.validation import CustomerTable, validate_customers

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class Progress(Protocol):
    """Where the job reports progress: ``start`` a task of ``total`` steps, get its advance."""

    def start(self, description: str, total: int) -> Callable[[], None]: ...


class _Silent:
    def start(self, description: str, total: int) -> Callable[[], None]:
        return lambda: None


@dataclass(frozen=True)
class TrainingOptions:
    """What to train on and how; the command line's options."""

    models_dir: Path
    data: Path | None = None
    synthetic: int | None = None
    k: int | None = None
    k_min: int = 2
    k_max: int = 10
    seed: int = 0
    playbook: Path | None = None
    n_bootstrap: int = 20
    sample_size: int = 20_000
    """Customers the k sweep, cross-checks and bootstrap work on when the data is larger."""
    silhouette_sample_size: int = 10_000
    ward_sample_size: int = 5_000
    signing_key: str | None = None


@dataclass
class TrainingResult:
    version: str
    path: Path
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Stopwatch:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started
        logger.info("stage %s took %.2f s", name, self.timings[name])


def train(options: TrainingOptions, *, progress: Progress | None = None) -> TrainingResult:
    """Run the whole job and publish the model; raises on bad input with nothing written."""
    progress = progress or _Silent()
    clock = _Stopwatch()
    with clock.stage("load"):
        # The playbook first: a broken one must be refused before minutes of fitting.
        playbook = load_playbook(options.playbook)
        export = _load(options)
    with clock.stage("validate"):
        customers = validate_customers(export.frame, min_rows=_fewest_rows(options))
    features = customers.features
    k_values = _k_values(options, len(customers))
    sample = selection.sample_rows(len(features), options.sample_size, seed=options.seed)
    with clock.stage("sweep"):
        sweep = selection.sweep_k(
            features[sample],
            k_values,
            seed=options.seed,
            silhouette_sample_size=options.silhouette_sample_size,
            advance=progress.start("k sweep", len(k_values)),
        )
    k = options.k or selection.best_k_by_silhouette(sweep)
    with clock.stage("fit"):
        pipeline = _fit(features, sample, k, options.seed)
        labels = np.asarray(pipeline.predict(features), dtype=np.intp)
    scaler, kmeans = pipeline[0], pipeline[-1]
    standardised = scaler.transform(features)
    z_centroids = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
    with clock.stage("cross_check"):
        checks = selection.cross_check(
            standardised[sample],
            labels[sample],
            k,
            seed=options.seed,
            ward_sample_size=options.ward_sample_size,
        )
    with clock.stage("stability"):
        stability = selection.bootstrap_stability(
            features[sample],
            labels[sample],
            k,
            seed=options.seed,
            n_resamples=options.n_bootstrap,
            advance=progress.start("bootstrap", options.n_bootstrap),
        )
    with clock.stage("profile"):
        profiles = profile_segments(
            features,
            labels,
            z_centroids=z_centroids,
            centroids=scaler.inverse_transform(z_centroids),
            distances_to_own=np.linalg.norm(standardised - z_centroids[labels], axis=1),
        )
    with clock.stage("name"):
        segments, lineage_summary = _catalog(options, playbook, profiles, customers, labels)
    metrics = {
        "selection": "fixed" if options.k else "silhouette",
        "k_range": [k_values[0], k_values[-1]],
        "sweep": [point.as_dict() for point in sweep],
        "knee_k": selection.knee_k(sweep),
        "silhouette": next(point.silhouette for point in sweep if point.k == k),
        "sweep_sample_size": len(sample),
        "silhouette_sample_size": min(len(sample), options.silhouette_sample_size),
        "cross_checks": checks,
        "stability": stability,
    }
    created_at = datetime.now(UTC).replace(microsecond=0)
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version_name(created_at, export.sha256),
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data_source": export.source,
        "data_sha256": export.sha256,
        "n_rows": len(customers),
        "features": list(FEATURES),
        "k": k,
        "seed": options.seed,
        "libraries": _library_versions(),
        "metrics": metrics,
        "data_quality": customers.quality.as_dict(),
        "scaler": {
            "mean": dict(zip(FEATURES, map(float, scaler.mean_), strict=True)),
            "scale": dict(zip(FEATURES, map(float, scaler.scale_), strict=True)),
        },
        "scoring": {
            "feature_min": dict(zip(FEATURES, map(float, features.min(axis=0)), strict=True)),
            "feature_max": dict(zip(FEATURES, map(float, features.max(axis=0)), strict=True)),
        },
        "segments": segments,
        "persona_matching": {
            "playbook": str(options.playbook or "bundled playbook.toml"),
            "fits": [
                {"segment_id": s["segment_id"], "persona": s["persona"], "fit": s["persona_fit"]}
                for s in segments
            ],
        },
        "lineage": lineage_summary,
    }
    by_label = {segment["label"]: position for position, segment in enumerate(segments)}
    positions = np.array([by_label[label] for label in range(k)], dtype=np.intp)[labels]
    with clock.stage("report"):
        report_html = render_report(
            manifest, features=features, segment_positions=positions, standardised=standardised
        )
    with clock.stage("publish"):
        path = publish_version(
            options.models_dir,
            manifest,
            pipeline=pipeline,
            assignments=VersionAssignments(
                keys=list(customers.keys),
                segment_ids=[segments[position]["segment_id"] for position in positions],
                features=customers.features,
            ),
            report_html=report_html,
            signing_key=options.signing_key,
        )
    manifest["version"] = path.name
    return TrainingResult(version=path.name, path=path, manifest=manifest, timings=clock.timings)


def _load(options: TrainingOptions) -> CustomerExport:
    if options.synthetic is not None:
        frame = generate_customers(options.synthetic, seed=options.seed)
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        ).hexdigest()
        export = CustomerExport(
            frame=frame,
            source=f"synthetic: {options.synthetic} customers, seed {options.seed}",
            sha256=digest,
        )
    else:
        export = read_customer_file(options.data or sample_data_path())
    export.frame.columns = [canonical_column_name(str(c)) for c in export.frame.columns]
    return export


def _fewest_rows(options: TrainingOptions) -> int:
    # The silhouette is defined for 2 <= k <= n - 1, so k segments need k + 1 customers.
    return (options.k or options.k_min) + 1


def _k_values(options: TrainingOptions, n_rows: int) -> list[int]:
    highest = min(options.k_max, n_rows - 1)
    values = list(range(options.k_min, highest + 1))
    if options.k is not None and options.k not in values:
        values = sorted({*values, options.k})
    return values


def _fit(features: FloatArray, sample: npt.NDArray[np.intp], k: int, seed: int) -> Any:
    """Fit on everything; on large data start from the centres found on the sample."""
    if len(sample) == len(features):
        return selection.build_pipeline(k, seed=seed).fit(features)
    on_sample = selection.build_pipeline(k, seed=seed).fit(features[sample])
    centres = on_sample[0].inverse_transform(on_sample[-1].cluster_centers_)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    return selection.build_pipeline(k, seed=seed, init=(centres - mean) / scale).fit(features)


def _catalog(
    options: TrainingOptions,
    playbook: Playbook,
    profiles: list[SegmentProfile],
    customers: CustomerTable,
    labels: npt.NDArray[np.intp],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Names, actions and stable ids for every segment, largest segment first."""
    namings = name_segments(np.array([p.z_vector() for p in profiles]), playbook)
    previous = lineage.read_previous_model(options.models_dir)
    centroids = np.array([[p.centroid[f] for f in FEATURES] for p in profiles])
    inherited = lineage.inherited_ids(centroids, previous) if previous else {}
    ids = lineage.unique_ids([naming.slug for naming in namings], inherited)
    summary: dict[str, Any] = {
        "previous_version": previous.version if previous else None,
        "matched": {ids[position]: old for position, old in inherited.items()},
        "moved_customers": 0,
        "compared_customers": 0,
    }
    if previous:
        moved, compared = lineage.count_moves(
            previous, customers.keys, [ids[label] for label in labels]
        )
        summary.update(moved_customers=moved, compared_customers=compared)
    segments: list[dict[str, Any]] = [
        {
            "segment_id": ids[p.label],
            "label": p.label,
            "name": namings[p.label].name,
            "description": namings[p.label].description,
            "persona": namings[p.label].persona,
            "persona_fit": round(namings[p.label].fit, 4),
            "size": p.size,
            "share": p.share,
            "profile": p.profile,
            "centroid": p.centroid,
            "z_centroid": p.z_centroid,
            "distinguishing_features": p.distinguishing_features,
            "recommended_actions": namings[p.label].recommended_actions(),
            "atypical_distance": p.atypical_distance,
        }
        for p in profiles
    ]
    segments.sort(key=lambda segment: (-segment["size"], segment["label"]))
    return segments, summary


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }


__all__ = ["InvalidCustomerData", "TrainingOptions", "TrainingResult", "train"]
