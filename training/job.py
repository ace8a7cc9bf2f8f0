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

from segmentation.assignments_file import VersionAssignments
from segmentation.comparison import ComparedVersion, compare
from segmentation.drift import training_baseline
from segmentation.features import FEATURES, canonical_column_name
from segmentation.manifest import (
    FORMAT_VERSION,
    DriftBaseline,
    Lineage,
    Manifest,
    PersonaFit,
    PersonaMatching,
    Scaler,
    Segment,
    SelectionMetrics,
    SweepPoint,
    TrainingRanges,
)
from segmentation.scoring import SegmentScorer
from training import lineage, selection
from training.comparison_page import write_comparison
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
    promote: bool = False
    """Make the new version the active one; otherwise it is a candidate (unless it is the
    first version of ``models_dir``, which is always made active)."""


@dataclass
class TrainingResult:
    version: str
    path: Path
    manifest: Manifest
    """As published (under its final name, listing its files, signed when a key was given)."""
    promoted: bool
    """Whether `latest` names it now; otherwise it waits as a candidate."""
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


@dataclass(frozen=True)
class _Sweep:
    """The candidates for k, the evidence for each, and the k chosen from it."""

    k: int
    k_values: list[int]
    points: list[SweepPoint]
    sample: npt.NDArray[np.intp]
    """The customers the sweep and the checks work on (all of them, when few)."""


@dataclass(frozen=True)
class _Fitted:
    pipeline: Any
    labels: npt.NDArray[np.intp]
    standardised: FloatArray
    z_centroids: FloatArray


def train(options: TrainingOptions, *, progress: Progress | None = None) -> TrainingResult:
    """Run the whole job and publish the model; raises on bad input with nothing written.

    The steps, each timed in ``TrainingResult.timings``: load, validate, sweep, fit,
    check, profile, name, prove, report, publish, compare (with the version that was active, on
    this version's training customers, into ``comparison.json`` and ``comparison.html``).

    Raises
    ------
    InvalidCustomerData
        The data (or the options for it) cannot be trained on; named by column and rule.
    InvalidPlaybook
        The playbook is missing or malformed (checked before any fitting).
    UnfaithfulServingNumbers
        The manifest's numbers would not score the training customers as the pipeline does.
    """
    progress = progress or _Silent()
    clock = _Stopwatch()
    with clock.stage("load"):
        # The playbook first: a broken one must be refused before minutes of fitting.
        playbook = load_playbook(options.playbook)
        export = _load(options)
    with clock.stage("validate"):
        customers = validate_customers(export.frame, min_rows=_fewest_rows(options))
    with clock.stage("sweep"):
        sweep = _sweep(options, customers.features, progress)
    with clock.stage("fit"):
        fitted = _fit(customers.features, sweep, options.seed)
    with clock.stage("check"):
        metrics = _check(options, customers.features, sweep, fitted, progress)
    with clock.stage("profile"):
        profiles = _profile(customers.features, fitted)
    with clock.stage("name"):
        segments, lineage_summary = _name(options, playbook, profiles, customers, fitted.labels)
    positions = _segment_positions(segments, fitted.labels)
    segment_ids = [segments[position].segment_id for position in positions]
    baseline = training_baseline(customers.features, segment_ids)
    manifest = _manifest(
        options, export, customers, fitted, metrics, segments, lineage_summary, baseline
    )
    with clock.stage("prove"):
        prove_serving_numbers(manifest, customers.features, fitted.labels)
    with clock.stage("report"):
        report_html = render_report(
            manifest, segment_positions=positions, standardised=fitted.standardised
        )
    with clock.stage("publish"):
        published = publish_version(
            options.models_dir,
            manifest,
            pipeline=fitted.pipeline,
            assignments=VersionAssignments(
                keys=list(customers.keys), segment_ids=segment_ids, features=customers.features
            ),
            report_html=report_html,
            signing_key=options.signing_key,
            promote=options.promote,
        )
    with clock.stage("compare"):
        _compare_with_previous(options, published.path, customers.features, lineage_summary)
    return TrainingResult(
        version=published.path.name,
        path=published.path,
        manifest=published.manifest,
        promoted=published.promoted,
        timings=clock.timings,
    )


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


def _sweep(options: TrainingOptions, features: FloatArray, progress: Progress) -> _Sweep:
    """Fit every candidate k on the sample; k is the option's, or the best silhouette's."""
    k_values = _k_values(options, len(features))
    sample = selection.sample_rows(len(features), options.sample_size, seed=options.seed)
    points = selection.sweep_k(
        features[sample],
        k_values,
        seed=options.seed,
        silhouette_sample_size=options.silhouette_sample_size,
        advance=progress.start("k sweep", len(k_values)),
    )
    k = options.k or selection.best_k_by_silhouette(points)
    return _Sweep(k=k, k_values=k_values, points=points, sample=sample)


def _fit(features: FloatArray, sweep: _Sweep, seed: int) -> _Fitted:
    """Fit on everything; on large data start from the centres found on the sample."""
    k, sample = sweep.k, sweep.sample
    if len(sample) == len(features):
        pipeline = selection.build_pipeline(k, seed=seed).fit(features)
    else:
        on_sample = selection.build_pipeline(k, seed=seed).fit(features[sample])
        centres = on_sample[0].inverse_transform(on_sample[-1].cluster_centers_)
        mean, scale = features.mean(axis=0), features.std(axis=0)
        scale[scale == 0] = 1.0
        init = (centres - mean) / scale
        pipeline = selection.build_pipeline(k, seed=seed, init=init).fit(features)
    return _Fitted(
        pipeline=pipeline,
        labels=np.asarray(pipeline.predict(features), dtype=np.intp),
        standardised=pipeline[0].transform(features),
        z_centroids=np.asarray(pipeline[-1].cluster_centers_, dtype=np.float64),
    )


def _check(
    options: TrainingOptions,
    features: FloatArray,
    sweep: _Sweep,
    fitted: _Fitted,
    progress: Progress,
) -> SelectionMetrics:
    """The evidence for the chosen k: the sweep, two other methods, bootstrap refits."""
    sample, k = sweep.sample, sweep.k
    checks = selection.cross_check(
        fitted.standardised[sample],
        fitted.labels[sample],
        k,
        seed=options.seed,
        ward_sample_size=options.ward_sample_size,
    )
    stability = selection.bootstrap_stability(
        features[sample],
        fitted.labels[sample],
        k,
        seed=options.seed,
        n_resamples=options.n_bootstrap,
        advance=progress.start("bootstrap", options.n_bootstrap),
    )
    chosen = next(point for point in sweep.points if point.k == k)
    return SelectionMetrics(
        selection="fixed" if options.k else "silhouette",
        k_range=(sweep.k_values[0], sweep.k_values[-1]),
        sweep=tuple(sweep.points),
        knee_k=selection.knee_k(sweep.points),
        silhouette=chosen.silhouette,
        sweep_sample_size=len(sample),
        silhouette_sample_size=min(len(sample), options.silhouette_sample_size),
        cross_checks=checks,
        stability=stability,
    )


def _profile(features: FloatArray, fitted: _Fitted) -> list[SegmentProfile]:
    z_centroids, labels = fitted.z_centroids, fitted.labels
    return profile_segments(
        features,
        labels,
        z_centroids=z_centroids,
        centroids=fitted.pipeline[0].inverse_transform(z_centroids),
        distances_to_own=np.linalg.norm(fitted.standardised - z_centroids[labels], axis=1),
    )


def _name(
    options: TrainingOptions,
    playbook: Playbook,
    profiles: list[SegmentProfile],
    customers: CustomerTable,
    labels: npt.NDArray[np.intp],
) -> tuple[tuple[Segment, ...], Lineage]:
    """Names, actions and stable ids for every segment, largest segment first."""
    namings = name_segments(np.array([p.z_vector() for p in profiles]), playbook)
    previous = lineage.read_previous_model(options.models_dir)
    centroids = np.array([[p.centroid[f] for f in FEATURES] for p in profiles])
    personas = [naming.persona for naming in namings]
    inherited = lineage.inherited_ids(centroids, personas, previous) if previous else {}
    reserved = previous.segment_ids if previous else []
    ids = lineage.unique_ids([naming.slug for naming in namings], inherited, reserved)
    moved, compared = (
        lineage.count_moves(previous, customers.keys, [ids[label] for label in labels])
        if previous
        else (0, 0)
    )
    summary = Lineage(
        previous_version=previous.version if previous else None,
        matched={ids[position]: old for position, old in inherited.items()},
        moved_customers=moved,
        compared_customers=compared,
    )
    segments = [
        Segment(
            segment_id=ids[p.label],
            label=p.label,
            name=namings[p.label].name,
            description=namings[p.label].description,
            persona=namings[p.label].persona,
            persona_fit=round(namings[p.label].fit, 4),
            size=p.size,
            share=p.share,
            profile=p.profile,
            centroid=p.centroid,
            z_centroid=p.z_centroid,
            distinguishing_features=p.distinguishing_features,
            recommended_actions=namings[p.label].recommended_actions(),
            atypical_distance=p.atypical_distance,
        )
        for p in profiles
    ]
    segments.sort(key=lambda segment: (-segment.size, segment.label))
    return tuple(segments), summary


def _manifest(
    options: TrainingOptions,
    export: CustomerExport,
    customers: CustomerTable,
    fitted: _Fitted,
    metrics: SelectionMetrics,
    segments: tuple[Segment, ...],
    lineage_summary: Lineage,
    drift_baseline: DriftBaseline,
) -> Manifest:
    features = customers.features
    scaler = fitted.pipeline[0]
    created_at = datetime.now(UTC).replace(microsecond=0)
    return Manifest(
        format_version=FORMAT_VERSION,
        version=version_name(created_at, export.sha256),
        created_at=created_at.isoformat().replace("+00:00", "Z"),
        data_source=export.source,
        data_sha256=export.sha256,
        n_rows=len(customers),
        features=FEATURES,
        k=len(segments),
        seed=options.seed,
        libraries=_library_versions(),
        metrics=metrics,
        data_quality=customers.quality,
        scaler=Scaler(mean=_by_feature(scaler.mean_), scale=_by_feature(scaler.scale_)),
        scoring=TrainingRanges(
            feature_min=_by_feature(features.min(axis=0)),
            feature_max=_by_feature(features.max(axis=0)),
        ),
        segments=segments,
        persona_matching=PersonaMatching(
            playbook=str(options.playbook or "bundled playbook.toml"),
            fits=tuple(
                PersonaFit(segment_id=s.segment_id, persona=s.persona, fit=s.persona_fit)
                for s in segments
            ),
        ),
        lineage=lineage_summary,
        drift_baseline=drift_baseline,
    )


class UnfaithfulServingNumbers(RuntimeError):
    """The numbers the service scores with disagree with the fitted pipeline."""


def prove_serving_numbers(
    manifest: Manifest, features: FloatArray, labels: npt.NDArray[np.intp]
) -> None:
    """Check that the manifest's numbers alone (what the service scores with, never
    unpickling) label every training customer as ``pipeline.predict`` did.

    They can only disagree where two centres are all but equally near and scikit-learn's
    expanded arithmetic rounds the other way; then nothing is published.

    Raises
    ------
    UnfaithfulServingNumbers
        Some training customer would be labelled differently.
    """
    scored = SegmentScorer.for_version(manifest).score(features).labels
    differ = np.flatnonzero(scored != labels)
    if differ.size:
        first = int(differ[0])
        raise UnfaithfulServingNumbers(
            f"{differ.size} of {len(labels)} training customers would be served another "
            f"segment than the pipeline gives (first: row {first + 1}, label "
            f"{int(scored[first])} instead of {int(labels[first])})"
        )


def _by_feature(values: FloatArray) -> dict[str, float]:
    return dict(zip(FEATURES, map(float, values), strict=True))


def _segment_positions(
    segments: tuple[Segment, ...], labels: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Each customer's index in ``segments`` (largest first), from their K-means label."""
    by_label = {segment.label: position for position, segment in enumerate(segments)}
    return np.array([by_label[label] for label in range(len(segments))], dtype=np.intp)[labels]


def _compare_with_previous(
    options: TrainingOptions, version_dir: Path, features: FloatArray, lineage_summary: Lineage
) -> None:
    """Compare the new version with the one that was active; a failure is only logged."""
    previous = lineage_summary.previous_version
    if previous is None:
        return
    keys = (options.signing_key,) if options.signing_key else ()
    try:
        against = ComparedVersion.load(options.models_dir, previous, signing_keys=keys)
        candidate = ComparedVersion.load(options.models_dir, version_dir.name, signing_keys=keys)
        write_comparison(version_dir, compare(candidate, against, features))
    except Exception as error:  # the version is published: a comparison must not undo that
        logger.warning("%s was not compared with %s: %s", version_dir.name, previous, error)


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
