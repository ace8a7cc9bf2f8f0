"""The manifest: what training says about a model version, and all the service may rely on.

Frozen, typed classes for ``manifest.json`` and its parts, one reader (:meth:`Manifest.
from_document`, which checks the format version and every field's type) and one writer
(:meth:`Manifest.to_json`). Everything else reads attributes, never keys.

The file's layout is the contract's (``../shared/CONTRACT.md``) and did not change when
these classes came: a manifest written before them reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec

FORMAT_VERSION = 1
"""The layout this code reads and writes; any other is refused, never guessed at."""


class ManifestError(ValueError):
    """A document that is not a manifest of :data:`FORMAT_VERSION`; says which field and why."""


@dataclass(frozen=True)
class SweepPoint:
    """The evidence for one candidate number of segments."""

    k: int
    inertia: float
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float


@dataclass(frozen=True)
class CrossChecks:
    """Agreement (adjusted Rand index) of the chosen clustering with two other methods."""

    ward_ari: float
    gaussian_mixture_ari: float
    sample_size: int


@dataclass(frozen=True)
class Stability:
    """Agreement of refits on bootstrap resamples with the chosen clustering (None: none run)."""

    mean_ari: float | None
    min_ari: float | None
    n_resamples: int


@dataclass(frozen=True)
class SelectionMetrics:
    """How the number of segments was chosen, and how sound the result is."""

    selection: Literal["fixed", "silhouette"]
    k_range: tuple[int, int]
    sweep: tuple[SweepPoint, ...]
    knee_k: int | None
    """The elbow of the inertia curve, when it has one."""
    silhouette: float
    sweep_sample_size: int
    silhouette_sample_size: int
    cross_checks: CrossChecks
    stability: Stability

    def sweep_point(self, k: int) -> SweepPoint | None:
        """The sweep's evidence for ``k``, if ``k`` was swept."""
        return next((point for point in self.sweep if point.k == k), None)


@dataclass(frozen=True)
class DataQuality:
    """What validation noticed in the training data without refusing it."""

    n_rows: int
    n_duplicate_keys: int
    n_rows_with_duplicate_key: int
    duplicate_keys: tuple[str, ...]
    """Keys with more than one record (the last record wins for look-up), the first few."""
    n_identical_feature_rows: int
    """Rows whose five features repeat an earlier row (different customers, same behaviour)."""


@dataclass(frozen=True)
class Scaler:
    """The StandardScaler's mean and scale per feature."""

    mean: dict[str, float]
    scale: dict[str, float]


@dataclass(frozen=True)
class TrainingRanges:
    """Each feature's range in training; a customer outside it is flagged atypical."""

    feature_min: dict[str, float]
    feature_max: dict[str, float]


@dataclass(frozen=True)
class FeatureSummary:
    """One feature over one segment's customers, in original units."""

    mean: float
    p25: float
    median: float
    p75: float
    min: float
    max: float


@dataclass(frozen=True)
class DistinguishingFeature:
    """A feature on which a segment's centre stands out (``z`` in standard deviations)."""

    feature: str
    z: float
    direction: Literal["high", "low"]


@dataclass(frozen=True)
class Segment:
    """One segment: who its customers are and what to do about them."""

    segment_id: str
    """Stable across retraining when the segment is the same (see ``training.lineage``)."""
    label: int
    """The K-means label of this version (not stable: use ``segment_id``)."""
    name: str
    description: str
    persona: str | None
    """The playbook persona the segment matched; None when none fitted (a descriptive name)."""
    persona_fit: float
    size: int
    share: float
    profile: dict[str, FeatureSummary]
    centroid: dict[str, float]
    z_centroid: dict[str, float]
    distinguishing_features: tuple[DistinguishingFeature, ...]
    recommended_actions: dict[str, list[str]]
    """Actions by kind (``marketing``, ``service``), as the playbook gives them."""
    atypical_distance: float
    """The distance to the centre (standardised units) that 99% of its customers stay within."""


@dataclass(frozen=True)
class PersonaFit:
    """How well the playbook persona a segment got fits it (the matcher's score)."""

    segment_id: str
    persona: str | None
    fit: float


@dataclass(frozen=True)
class PersonaMatching:
    """Which playbook named the segments, and how well each persona fitted."""

    playbook: str
    fits: tuple[PersonaFit, ...]


@dataclass(frozen=True)
class Lineage:
    """How this version's segments relate to the previous version's."""

    previous_version: str | None
    matched: dict[str, str]
    """This version's segment id -> the previous version's id it inherited."""
    moved_customers: int
    compared_customers: int


@dataclass(frozen=True)
class FeatureBins:
    """One feature's training distribution: the inner bin edges (its deciles, each value
    once) and the share of training customers in each of the ``len(edges) + 1`` bins."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]


@dataclass(frozen=True)
class DriftBaseline:
    """What the live population is compared with (see ``segmentation.drift``)."""

    features: dict[str, FeatureBins]
    segment_mix: dict[str, float]
    """The share of training customers in each segment, by segment id."""


@dataclass(frozen=True)
class FileEntry:
    """One file of the version: its sha256 (hex) and size in bytes."""

    sha256: str
    bytes: int


@dataclass(frozen=True)
class Signature:
    """The manifest's HMAC over everything else in it (see ``segmentation.artifact``)."""

    algorithm: str
    value: str


@dataclass(frozen=True)
class Manifest:
    """A model version's manifest; ``files`` and ``signature`` are added when it is published."""

    format_version: int
    version: str
    created_at: str
    """ISO 8601 in UTC, to the second (``2026-11-23T18:45:12Z``)."""
    data_source: str
    data_sha256: str
    n_rows: int
    features: tuple[str, ...]
    k: int
    seed: int
    libraries: dict[str, str]
    metrics: SelectionMetrics
    data_quality: DataQuality
    scaler: Scaler
    scoring: TrainingRanges
    segments: tuple[Segment, ...]
    """Largest segment first."""
    persona_matching: PersonaMatching
    lineage: Lineage
    drift_baseline: DriftBaseline | None = None
    """None in versions trained before drift was watched."""
    files: dict[str, FileEntry] = field(default_factory=dict)
    signature: Signature | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def segments_by_label(self) -> list[Segment]:
        """The segments in K-means label order (the order the scorer's labels index)."""
        return sorted(self.segments, key=lambda segment: segment.label)

    def with_files(self, version: str, files: dict[str, FileEntry]) -> Manifest:
        """The manifest as published: under its final version name, listing its files."""
        return replace(self, version=version, files=files, signature=None)

    def with_signature(self, signature: Signature) -> Manifest:
        return replace(self, signature=signature)

    def to_document(self) -> dict[str, Any]:
        """The manifest as JSON data, as ``manifest.json`` holds it (no signature if unsigned)."""
        # Through JSON and back: lists, not tuples, exactly as a reader of the file sees them,
        # and a NaN or an infinity refused (msgspec alone would write them as null).
        text = json.dumps(msgspec.to_builtins(self), allow_nan=False)
        document: dict[str, Any] = json.loads(text)
        if self.signature is None:
            document.pop("signature", None)
        return document

    def to_json(self) -> str:
        """The text of ``manifest.json``."""
        return json.dumps(self.to_document(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_document(cls, document: Any) -> Manifest:
        """Read a manifest from JSON data, checking its format version first, then every field.

        Fields this version does not know are ignored (a later writer may add some).

        Raises
        ------
        ManifestError
            Not a JSON object, another format version, or a missing or mistyped field,
            named by its path (``$.segments[0].size``).
        """
        if not isinstance(document, dict):
            raise ManifestError("the manifest is not a JSON object")
        if document.get("format_version") != FORMAT_VERSION:
            raise ManifestError(
                f"format_version={document.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        try:
            return msgspec.convert(document, type=cls)
        except msgspec.ValidationError as error:
            raise ManifestError(str(error)) from None
