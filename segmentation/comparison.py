"""Two model versions on the same customers: who would move where, and whether to switch.

An operator about to promote a candidate asks "if we switch, who moves where?". Both
versions score the same customers; segment ids are stable across versions (training gives
a segment the id of the old segment it matches), so a customer *moves* when the two ids
differ. The verdict checks the figures against thresholds the operator may set and says,
in words, what each check found.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from segmentation.artifact import ASSIGNMENTS_FILE, ArtifactError, verify_version
from segmentation.assignments_file import VersionAssignments, read_assignments
from segmentation.drift import ACT, population_psi
from segmentation.features import FEATURES
from segmentation.manifest import Manifest, Segment
from segmentation.scoring import SegmentScorer

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must meet to be recommended; the operator may set each."""

    max_moved_share: float = 0.05
    """At most this share of the compared customers may change segment."""
    min_adjusted_rand_index: float = 0.9
    """The two segmentations must agree at least this much (1: the same grouping)."""
    allow_lost_personas: bool = False
    """Whether a persona the active version has may be missing from the candidate."""
    max_population_psi: float = ACT
    """Each feature of the candidate's training customers may differ from the active
    version's by at most this population stability index."""


@dataclass(frozen=True)
class ComparedVersion:
    """A verified version ready to score: its manifest, its scorer, its training customers."""

    manifest: Manifest
    scorer: SegmentScorer
    training: VersionAssignments

    @classmethod
    def load(
        cls, models_dir: Path, version: str, *, signing_keys: tuple[str, ...] = ()
    ) -> ComparedVersion:
        """Verify ``version`` (hashes, and the signature when keys are given), then build its
        scorer from the manifest and read its training customers.

        Raises
        ------
        ArtifactError
            The version is missing, does not verify, or its manifest cannot score.
        """
        verified = verify_version(models_dir, version, signing_keys=signing_keys)
        manifest = verified.manifest
        try:
            scorer = SegmentScorer.for_version(manifest)
        except ValueError as error:
            raise ArtifactError(
                "manifest_invalid", f"{version}'s manifest cannot score: {error}"
            ) from None
        try:
            training = read_assignments(verified.path / ASSIGNMENTS_FILE)
        except (OSError, ValueError, KeyError) as error:
            raise ArtifactError(
                "assignments_invalid", f"{version}'s {ASSIGNMENTS_FILE} cannot be read: {error}"
            ) from None
        return cls(manifest=verified.manifest, scorer=scorer, training=training)

    def segment_ids(self, features: FloatArray) -> list[str]:
        """The segment id of each customer (``(n, 5)`` features in original units)."""
        ids = [segment.segment_id for segment in self.manifest.segments_by_label()]
        return [ids[label] for label in self.scorer.score(features).labels.tolist()]


@dataclass(frozen=True)
class Flow:
    """Customers in ``from_segment`` under the version compared against, ``to_segment`` under
    the candidate."""

    from_segment: str
    to_segment: str
    count: int


@dataclass(frozen=True)
class SegmentSideBySide:
    """One segment id under both versions (None where a version does not have it)."""

    segment_id: str
    name_against: str | None
    name_candidate: str | None
    persona_against: str | None
    persona_candidate: str | None
    customers_against: int
    """Of the compared customers, how many the version compared against puts here."""
    customers_candidate: int
    centre_against: dict[str, float] | None
    centre_candidate: dict[str, float] | None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...]
    """One sentence per check, with the figure and the limit; then what changes in words."""


@dataclass(frozen=True)
class Comparison:
    candidate: str
    against: str
    n_customers: int
    moved: int
    moved_share: float
    adjusted_rand_index: float
    transitions: tuple[Flow, ...]
    """Every (from, to) pair with at least one customer, the largest first."""
    segments: tuple[SegmentSideBySide, ...]
    personas_gained: tuple[str, ...]
    personas_lost: tuple[str, ...]
    population_psi: dict[str, float]
    """Per feature, the candidate's training customers against the other version's."""
    metrics: dict[str, dict[str, float | int | None]]
    """Training figures side by side: ``{"k": {"against": 3, "candidate": 4}, ...}``."""
    thresholds: Thresholds
    verdict: Verdict

    def to_document(self) -> dict[str, Any]:
        """As JSON data; each transition as ``{"from", "to", "count"}`` (the contract's)."""
        document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        document["transitions"] = [
            {"from": flow.from_segment, "to": flow.to_segment, "count": flow.count}
            for flow in self.transitions
        ]
        return document


def compare(
    candidate: ComparedVersion,
    against: ComparedVersion,
    features: FloatArray,
    thresholds: Thresholds | None = None,
) -> Comparison:
    """Score ``features`` (``(n, 5)``, original units) with both versions and compare.

    Raises
    ------
    ValueError
        No customers to compare on.
    """
    thresholds = thresholds or Thresholds()
    if len(features) == 0:
        raise ValueError("there are no customers to compare the versions on")
    before = against.segment_ids(features)
    after = candidate.segment_ids(features)
    flows = Counter(zip(before, after, strict=True))
    moved = sum(count for (old, new), count in flows.items() if old != new)
    n = len(features)
    agreement = adjusted_rand_index(flows)
    personas_before = _personas(against.manifest)
    personas_after = _personas(candidate.manifest)
    sides = _side_by_side(against.manifest, candidate.manifest, Counter(before), Counter(after))
    population = {
        feature: population_psi(
            against.training.features[:, column], candidate.training.features[:, column]
        )
        for column, feature in enumerate(FEATURES)
    }
    figures = _Figures(
        moved=moved,
        n=n,
        agreement=agreement,
        lost=tuple(sorted(personas_before - personas_after)),
        flows=flows,
        sides=sides,
        population=population,
    )
    return Comparison(
        candidate=candidate.manifest.version,
        against=against.manifest.version,
        n_customers=n,
        moved=moved,
        moved_share=moved / n,
        adjusted_rand_index=agreement,
        transitions=tuple(
            Flow(from_segment=old, to_segment=new, count=count)
            for (old, new), count in sorted(flows.items(), key=lambda item: (-item[1], item[0]))
        ),
        segments=sides,
        personas_gained=tuple(sorted(personas_after - personas_before)),
        personas_lost=figures.lost,
        population_psi=population,
        metrics=_metrics(against.manifest, candidate.manifest),
        thresholds=thresholds,
        verdict=_verdict(figures, thresholds),
    )


@dataclass(frozen=True)
class _Figures:
    moved: int
    n: int
    agreement: float
    lost: tuple[str, ...]
    flows: Counter[tuple[str, str]]
    sides: tuple[SegmentSideBySide, ...]
    population: dict[str, float]


def _verdict(figures: _Figures, thresholds: Thresholds) -> Verdict:
    share = figures.moved / figures.n
    moved_ok = share <= thresholds.max_moved_share
    agreement_ok = figures.agreement >= thresholds.min_adjusted_rand_index
    personas_ok = thresholds.allow_lost_personas or not figures.lost
    shifted = {f: v for f, v in figures.population.items() if v > thresholds.max_population_psi}
    reasons = [
        f"{share:.1%} of the {figures.n:,} customers would change segment ({figures.moved:,}); "
        f"{'within' if moved_ok else 'more than'} the {thresholds.max_moved_share:.1%} allowed",
        f"the two segmentations agree at {figures.agreement:.3f} (adjusted Rand index); "
        f"{'at least' if agreement_ok else 'below'} the {thresholds.min_adjusted_rand_index:.2f} "
        "required",
    ]
    if figures.lost:
        lost = ", ".join(repr(persona) for persona in figures.lost)
        allowed = "allowed" if thresholds.allow_lost_personas else "not allowed"
        reasons.append(f"persona {lost} would disappear ({allowed})")
    else:
        reasons.append("every persona of the active version is kept")
    if shifted:
        listed = ", ".join(f"{feature} (PSI {value:.2f})" for feature, value in shifted.items())
        reasons.append(
            "the candidate was trained on customers unlike the other version's: "
            f"{listed}, above the {thresholds.max_population_psi:.2f} allowed"
        )
    else:
        feature, value = max(figures.population.items(), key=lambda item: item[1])
        reasons.append(
            "the candidate was trained on customers like the other version's: every feature's "
            f"PSI within {thresholds.max_population_psi:.2f} (largest: {feature}, {value:.2f})"
        )
    reasons += _what_changes(figures)
    ok = moved_ok and agreement_ok and personas_ok and not shifted
    return Verdict(ok=ok, reasons=tuple(reasons))


def _what_changes(figures: _Figures) -> list[str]:
    """Segments that end or begin, in words, with where their customers go or come from."""
    words = []
    for side in figures.sides:
        if side.name_candidate is None:
            destinations = _largest(
                (new, count)
                for (old, new), count in figures.flows.items()
                if old == side.segment_id
            )
            words.append(
                f"segment {side.segment_id!r} ({side.name_against}) would be retired: its "
                f"{side.customers_against:,} customers go to {destinations or 'no segment'}"
            )
        elif side.name_against is None:
            sources = _largest(
                (old, count)
                for (old, new), count in figures.flows.items()
                if new == side.segment_id
            )
            words.append(
                f"segment {side.segment_id!r} ({side.name_candidate}) is new: its "
                f"{side.customers_candidate:,} customers come from {sources or 'no segment'}"
            )
    return words


def _largest(pairs: Any) -> str:
    ordered = sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
    return ", ".join(f"{segment_id!r} ({count:,})" for segment_id, count in ordered)


def _personas(manifest: Manifest) -> set[str]:
    return {segment.persona for segment in manifest.segments if segment.persona is not None}


def _side_by_side(
    against: Manifest,
    candidate: Manifest,
    counts_against: Counter[str],
    counts_candidate: Counter[str],
) -> tuple[SegmentSideBySide, ...]:
    old = {segment.segment_id: segment for segment in against.segments}
    new = {segment.segment_id: segment for segment in candidate.segments}
    ordered = [*old, *(segment_id for segment_id in new if segment_id not in old)]
    return tuple(
        _segment_side_by_side(
            segment_id, old.get(segment_id), new.get(segment_id), counts_against, counts_candidate
        )
        for segment_id in ordered
    )


def _segment_side_by_side(
    segment_id: str,
    before: Segment | None,
    after: Segment | None,
    counts_against: Counter[str],
    counts_candidate: Counter[str],
) -> SegmentSideBySide:
    return SegmentSideBySide(
        segment_id=segment_id,
        name_against=before.name if before else None,
        name_candidate=after.name if after else None,
        persona_against=before.persona if before else None,
        persona_candidate=after.persona if after else None,
        customers_against=counts_against[segment_id],
        customers_candidate=counts_candidate[segment_id],
        centre_against=_centre(before),
        centre_candidate=_centre(after),
    )


def _centre(segment: Segment | None) -> dict[str, float] | None:
    return {feature: segment.centroid[feature] for feature in FEATURES} if segment else None


def _metrics(against: Manifest, candidate: Manifest) -> dict[str, dict[str, float | int | None]]:
    def side(manifest: Manifest) -> dict[str, float | int | None]:
        stability = manifest.metrics.stability
        return {
            "k": manifest.k,
            "n_rows": manifest.n_rows,
            "silhouette": manifest.metrics.silhouette,
            "knee_k": manifest.metrics.knee_k,
            "stability_mean_ari": stability.mean_ari,
        }

    before, after = side(against), side(candidate)
    return {name: {"against": before[name], "candidate": after[name]} for name in before}


def adjusted_rand_index(flows: Counter[tuple[str, str]]) -> float:
    """The adjusted Rand index of two labelings of the same customers, from how many went
    from each label of the first to each of the second (Hubert and Arabie's, as
    scikit-learn's ``adjusted_rand_score`` computes it, in exact integers until the end).

    1.0 for the same partition (whatever the names), about 0 for unrelated ones.
    """
    n = sum(flows.values())
    rows: Counter[str] = Counter()
    columns: Counter[str] = Counter()
    for (first, second), count in flows.items():
        rows[first] += count
        columns[second] += count
    same_in_both = sum(count * count for count in flows.values())
    # Pairs of customers counted over ordered pairs, as scikit-learn's pair confusion matrix.
    together_in_both = same_in_both - n
    only_in_second = sum(count * count for count in columns.values()) - same_in_both
    only_in_first = sum(count * count for count in rows.values()) - same_in_both
    apart_in_both = n * n - only_in_second - only_in_first - same_in_both
    if only_in_first == 0 and only_in_second == 0:
        return 1.0
    numerator = 2 * (together_in_both * apart_in_both - only_in_first * only_in_second)
    denominator = (together_in_both + only_in_first) * (only_in_first + apart_in_both) + (
        together_in_both + only_in_second
    ) * (only_in_second + apart_in_both)
    return numerator / denominator
