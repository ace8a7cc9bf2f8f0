"""The model being served: its scorer, its segment catalog and how its answers are built.

Everything an answer needs that does not depend on the customer (names, actions, ids in
label order, the catalog) is prepared here once, when the model is loaded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from segmentation.features import FEATURE_LABELS, FEATURES
from segmentation.manifest import Manifest, Segment
from segmentation.moves import SegmentMoves
from segmentation.scoring import (
    FAR_FROM_CENTROID,
    FloatArray,
    IntArray,
    ScoredBatch,
    SegmentScorer,
    above_range_reason,
    below_range_reason,
)
from service.errors import SegmentNotFound
from service.scoring.answer_fragments import AnswerFragments

ROUNDED_DIGITS = 6
"""Decimal digits of the scores, confidences and efforts that answers give."""


@dataclass(frozen=True)
class SegmentCard:
    """What every answer says about a segment."""

    segment_id: str
    name: str
    description: str
    recommended_actions: dict[str, list[str]]


class ActiveModel:
    """A verified, self-tested model version ready to answer.

    Parameters
    ----------
    version
        The version name, as ``latest`` names it.
    manifest
        The verified manifest (the scorer's numbers are in it).

    Raises
    ------
    ValueError
        The manifest's numbers do not make a scorer.
    """

    def __init__(self, *, version: str, manifest: Manifest) -> None:
        self.version = version
        self.manifest = manifest
        by_label = manifest.segments_by_label()
        self.cards = [
            SegmentCard(
                segment_id=segment.segment_id,
                name=segment.name,
                description=segment.description,
                recommended_actions=segment.recommended_actions,
            )
            for segment in by_label
        ]
        self.segment_ids = [card.segment_id for card in self.cards]
        self.answer_fragments = AnswerFragments.for_segments(self.cards, version)
        self._cards_by_id = {card.segment_id: card for card in self.cards}
        self._labels_by_id = {card.segment_id: label for label, card in enumerate(self.cards)}
        self.scorer = SegmentScorer.for_version(manifest)
        self._sentences = AtypicalSentences(self.scorer, [card.name for card in self.cards])
        self.moves = SegmentMoves(self.scorer)
        self.catalog = [_catalog_entry(segment, version) for segment in manifest.segments]
        self._catalog_by_id = {entry["segment_id"]: entry for entry in self.catalog}

    def card(self, segment_id: str) -> SegmentCard | None:
        """The segment's card, or None for an id this model does not have."""
        return self._cards_by_id.get(segment_id)

    def label_of(self, segment_id: str) -> int | None:
        """The segment's K-means label, or None for an id this model does not have."""
        return self._labels_by_id.get(segment_id)

    def segment(self, segment_id: str) -> dict[str, Any]:
        """One segment of the catalog."""
        try:
            return self._catalog_by_id[segment_id]
        except KeyError:
            raise SegmentNotFound(
                f"segment_id={segment_id!r} is not a segment of model {self.version}; "
                f"known: {', '.join(self.segment_ids)}"
            ) from None

    def assign(
        self,
        features: FloatArray,
        keys: Sequence[str | None],
        *,
        indices: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Score ``(n, 5)`` valid features and build one assignment per row.

        With ``indices``, each assignment starts with its ``index`` (a batch's input order).
        """
        return self.assignments_from(self.scorer.score(features), features, keys, indices=indices)

    def assign_one(self, values: Sequence[float], key: str | None) -> dict[str, Any]:
        """Score one customer (five valid values) and build its assignment: equal to
        ``assign`` of the same row, without numpy's per-call costs (the live path)."""
        row = self.scorer.score_row(values)
        card, ids = self.cards[row.label], self.segment_ids
        reasons = row.atypical_reasons
        return {
            "customer_key": key,
            "segment_id": card.segment_id,
            "segment_name": card.name,
            "segment_description": card.description,
            "recommended_actions": card.recommended_actions,
            "confidence": rounded_value(row.confidence),
            "distances": {
                segment_id: rounded_value(distance)
                for segment_id, distance in zip(ids, row.distances, strict=True)
            },
            "runner_up_segment_id": ids[row.runner_up_label],
            "atypical": bool(reasons),
            "atypical_reasons": reasons,
            "atypical_explanations": (
                self.explain(reasons, values, row.label, row.distances[row.label])
                if reasons
                else []
            ),
            "model_version": self.version,
        }

    def explain(
        self, reasons: Sequence[str], values: Sequence[float], label: int, distance: float
    ) -> list[str]:
        """Each atypical reason as a sentence an agent can read out, with the numbers."""
        return [self._sentences.sentence(why, values, label, distance) for why in reasons]

    def assignments_from(
        self,
        scored: ScoredBatch,
        features: FloatArray,
        keys: Sequence[str | None],
        *,
        indices: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """One assignment per row of ``scored`` (the scores of ``features``; see
        :meth:`assign`)."""
        ids, cards, version = self.segment_ids, self.cards, self.version
        runner_up_ids = self.segment_ids_of(scored.runner_up_labels)
        confidence = rounded(scored.confidence).tolist()
        distances = rounded(scored.distances).tolist()
        atypical = scored.atypical.tolist()
        reasons = [
            scored.atypical_reasons(row) if flag else [] for row, flag in enumerate(atypical)
        ]
        explanations = self.explanations_of(scored, features, reasons)
        rows = zip(
            indices if indices is not None else itertools.repeat(None, len(atypical)),
            [cards[label] for label in scored.labels.tolist()],
            keys,
            confidence,
            distances,
            runner_up_ids,
            atypical,
            reasons,
            explanations,
            strict=True,
        )
        # One dict literal per customer, everything else prepared column-wise above:
        # this loop is the whole per-customer cost of building a batch's answer.
        records = [
            {
                "index": index,
                "customer_key": key,
                "segment_id": card.segment_id,
                "segment_name": card.name,
                "segment_description": card.description,
                "recommended_actions": card.recommended_actions,
                "confidence": certainty,
                "distances": dict(zip(ids, distance, strict=True)),
                "runner_up_segment_id": runner_up,
                "atypical": flag,
                "atypical_reasons": why,
                "atypical_explanations": said,
                "model_version": version,
            }
            for index, card, key, certainty, distance, runner_up, flag, why, said in rows
        ]
        if indices is None:
            for record in records:
                del record["index"]
        return records

    def explanations_of(
        self,
        scored: ScoredBatch,
        features: FloatArray,
        reasons: Sequence[list[str]],
        rows: Sequence[int] | None = None,
    ) -> list[list[str]]:
        """The sentences of the atypical ``reasons`` of each of ``rows`` of ``scored``
        (every row, in order, by default); empty for a typical row."""
        labels = scored.labels.tolist()
        return [
            self.explain(
                why, features[row].tolist(), labels[row], float(scored.distances[row, labels[row]])
            )
            if why
            else []
            for row, why in zip(range(len(labels)) if rows is None else rows, reasons, strict=True)
        ]

    def segment_ids_of(self, labels: IntArray) -> list[str]:
        """The segment id of each K-means label."""
        ids = self.segment_ids
        return [ids[label] for label in labels.tolist()]

    def summary(self) -> dict[str, Any]:
        """The manifest, as much of it as a client needs."""
        manifest = self.manifest
        return {
            "model_version": self.version,
            "created_at": manifest.created_at,
            "k": manifest.k,
            "n_rows": manifest.n_rows,
            "features": list(manifest.features),
            "data_sha256": manifest.data_sha256,
            "metrics": asdict(manifest.metrics),
            "libraries": manifest.libraries,
            "segments": [entry["segment_id"] for entry in self.catalog],
            "signed": manifest.signed,
        }


def rounded(values: FloatArray) -> FloatArray:
    """Scores as answers give them (and the store keeps them)."""
    return values.round(ROUNDED_DIGITS)  # the method: np.round adds a Python-level dispatch


_SCALE = 10.0**ROUNDED_DIGITS


def rounded_value(value: float) -> float:
    """One score rounded as :func:`rounded` rounds (numpy scales, rounds half to even,
    and scales back; Python's ``round`` to an integer rounds half to even too)."""
    return round(value * _SCALE) / _SCALE


def _catalog_entry(segment: Segment, version: str) -> dict[str, Any]:
    """What ``GET /segments`` says about a segment (the answer's shape, not the manifest's)."""
    return {
        "segment_id": segment.segment_id,
        "name": segment.name,
        "description": segment.description,
        "size": segment.size,
        "share": segment.share,
        "profile": {
            feature: {
                "mean": summary.mean,
                "p25": summary.p25,
                "median": summary.median,
                "p75": summary.p75,
            }
            for feature, summary in segment.profile.items()
        },
        "distinguishing_features": [asdict(trait) for trait in segment.distinguishing_features],
        "recommended_actions": segment.recommended_actions,
        "model_version": version,
    }


class AtypicalSentences:
    """Atypical reason codes said in words, with the customer's numbers and the model's."""

    def __init__(self, scorer: SegmentScorer, segment_names: Sequence[str]) -> None:
        self._ranges: dict[str, tuple[int, str]] = {}
        for position, feature in enumerate(FEATURES):
            label = FEATURE_LABELS[feature]
            self._ranges[above_range_reason(feature)] = (
                position,
                f"{label} above anything seen in training: {{}} > "
                f"{_number(scorer.feature_max[position])}",
            )
            self._ranges[below_range_reason(feature)] = (
                position,
                f"{label} below anything seen in training: {{}} < "
                f"{_number(scorer.feature_min[position])}",
            )
        self._thresholds = scorer.distance_thresholds.tolist()
        self._names = list(segment_names)

    def sentence(self, reason: str, values: Sequence[float], label: int, distance: float) -> str:
        if reason == FAR_FROM_CENTROID:
            return (
                f"unlike most {self._names[label]}: farther from the segment's centre than 99% "
                f"of its training customers ({distance:.2f} > {self._thresholds[label]:.2f} "
                "standard deviations)"
            )
        position, words = self._ranges[reason]
        return words.format(_number(values[position]))


def _number(value: float) -> str:
    """A value as a banker writes it: 250,000 or 2.5."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
