"""Stable segment ids across retrains: a new segment inherits the id of the old one it matches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from segmentation.artifact import ASSIGNMENTS_FILE, ArtifactError, read_latest, read_manifest
from segmentation.assignments_file import read_assignments
from segmentation.features import FEATURES

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PreviousModel:
    """What a retrain needs of the model it replaces."""

    version: str
    segment_ids: list[str]
    centroids: FloatArray
    """Centres in original units, one row per segment, in ``segment_ids`` order."""
    scale: FloatArray
    """The previous scaler's standard deviations, to make feature differences comparable."""
    personas: list[str | None]
    """The persona of each segment, in ``segment_ids`` order (None: a descriptive name)."""
    assignments: dict[str, str]
    """Training customer key -> segment id (last record wins)."""


def read_previous_model(models_dir: Path) -> PreviousModel | None:
    """The active model of ``models_dir``, or None when there is none that can be read."""
    try:
        version = read_latest(models_dir)
        manifest = read_manifest(models_dir / version)
        segments = manifest.segments
        scale = np.array([manifest.scaler.scale[feature] for feature in FEATURES])
        centroids = np.array([[s.centroid[feature] for feature in FEATURES] for s in segments])
        assignments = read_assignments(models_dir / version / ASSIGNMENTS_FILE, with_features=False)
    except ArtifactError as error:
        if error.code != "model_missing":
            logger.warning("previous model ignored for id matching: %s", error.message)
        return None
    except (KeyError, TypeError, ValueError, OSError) as error:
        logger.warning("previous model ignored for id matching: %s", error)
        return None
    return PreviousModel(
        version=version,
        segment_ids=[segment.segment_id for segment in segments],
        centroids=centroids,
        scale=scale,
        personas=[segment.persona for segment in segments],
        # A key given twice: its last record wins, as everywhere.
        assignments=dict(zip(assignments.keys, assignments.segment_ids, strict=True)),
    )


def inherited_ids(
    centroids: FloatArray, personas: Sequence[str | None], previous: PreviousModel
) -> dict[int, str]:
    """The ids new segments keep from the previous model, by position in ``centroids``.

    With as many segments as before, new and old segments are paired by nearest centres
    (the optimal one-to-one pairing), so an id survives a persona being renamed in the
    playbook. With another number of segments, centres no longer line up with meanings
    (a fourth segment splits one of three), so an id goes only to the segment with the
    same persona: an id always means the persona it meant. Segments without a persona, or
    whose persona is new, get new ids; old segments left without a match are retired.

    Centres are compared in original units divided by the previous model's standard
    deviations, so a credit-limit difference does not drown every count difference.
    """
    if len(centroids) != len(previous.centroids):
        old_by_persona = {
            persona: segment_id
            for persona, segment_id in zip(previous.personas, previous.segment_ids, strict=True)
            if persona is not None
        }
        return {
            position: old_by_persona[persona]
            for position, persona in enumerate(personas)
            if persona is not None and persona in old_by_persona
        }
    gaps = (centroids[:, None, :] - previous.centroids[None, :, :]) / previous.scale
    cost = np.sqrt((gaps**2).sum(axis=2))
    new_rows, old_rows = linear_sum_assignment(cost)
    return {
        int(new): previous.segment_ids[old]
        for new, old in zip(new_rows.tolist(), old_rows.tolist(), strict=True)
    }


def unique_ids(
    proposed: Sequence[str], inherited: dict[int, str], reserved: Sequence[str] = ()
) -> list[str]:
    """Inherited ids first; every other segment takes its proposed slug, numbered if taken
    or ``reserved`` (the previous version's ids: a retired id is never given to another
    segment)."""
    taken = {*inherited.values(), *reserved}
    ids = []
    for position, slug in enumerate(proposed):
        if position in inherited:
            ids.append(inherited[position])
            continue
        candidate, number = slug, 2
        while candidate in taken:
            candidate, number = f"{slug}-{number}", number + 1
        taken.add(candidate)
        ids.append(candidate)
    return ids


def count_moves(
    previous: PreviousModel, keys: npt.NDArray[np.object_], segment_ids: Sequence[str]
) -> tuple[int, int]:
    """(customers whose segment changed, customers in both trainings), last record per key."""
    current = dict(zip(keys.tolist(), segment_ids, strict=True))
    shared = current.keys() & previous.assignments.keys()
    moved = sum(current[key] != previous.assignments[key] for key in shared)
    return moved, len(shared)
