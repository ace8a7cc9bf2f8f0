"""Naming segments: matching their profiles to the playbook's personas, one to one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from segmentation.features import FEATURE_LABELS, FEATURES
from training.profiles import distinguishing_features

FloatArray = npt.NDArray[np.float64]

_DIRECTIONS = {"high": 1.0, "low": -1.0, "average": 0.0}
# z-scores beyond this count as this much: one extreme feature must not outvote the rest.
_Z_CLIP = 2.0
_FEATURE_SLUGS = {
    "avg_credit_limit": "credit-limit",
    "total_credit_cards": "cards",
    "total_visits_bank": "branch-visits",
    "total_visits_online": "online-logins",
    "total_calls_made": "calls",
}


class InvalidPlaybook(ValueError):
    """The playbook file cannot be used; the message names the persona and the field."""


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    description: str
    marketing: tuple[str, ...]
    service: tuple[str, ...]
    signature: dict[str, str]

    def fit(self, z_centroid: FloatArray) -> float:
        """How well a segment centre matches the signature: mean agreement, in clipped z."""
        clipped = np.clip(z_centroid, -_Z_CLIP, _Z_CLIP)
        agreements = []
        for feature, direction in self.signature.items():
            z = float(clipped[FEATURES.index(feature)])
            sign = _DIRECTIONS[direction]
            agreements.append(sign * z if sign else -abs(z))
        return float(np.mean(agreements))


@dataclass(frozen=True)
class Playbook:
    source: str
    min_fit: float
    personas: tuple[Persona, ...]
    generic_description: str
    generic_marketing: tuple[str, ...]
    generic_service: tuple[str, ...]


@dataclass(frozen=True)
class SegmentNaming:
    """What a segment is called and what to do about it."""

    slug: str
    name: str
    description: str
    persona: str | None
    fit: float
    marketing: tuple[str, ...]
    service: tuple[str, ...]

    def recommended_actions(self) -> dict[str, list[str]]:
        return {"marketing": list(self.marketing), "service": list(self.service)}


def default_playbook_path() -> Path:
    return Path(str(resources.files("training") / "playbook.toml"))


def load_playbook(path: Path | None = None) -> Playbook:
    """Read and check a playbook file (the bundled one when ``path`` is None)."""
    source = path or default_playbook_path()
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidPlaybook(f"--playbook {source}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidPlaybook(f"--playbook {source}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidPlaybook(f"--playbook {source}: cannot be read: {error}") from None
    generic = _table(document, "generic", "the playbook")
    entries = document.get("persona", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidPlaybook(f"--playbook {source}: persona must be [[persona]] tables")
    personas = tuple(_persona(entry, position) for position, entry in enumerate(entries))
    if not personas:
        raise InvalidPlaybook(f"--playbook {source}: defines no [[persona]]")
    ids = [persona.id for persona in personas]
    if len(set(ids)) != len(ids):
        raise InvalidPlaybook(f"--playbook {source}: persona ids repeat: {sorted(ids)}")
    min_fit = document.get("min_fit", 0.3)
    if isinstance(min_fit, bool) or not isinstance(min_fit, int | float):
        raise InvalidPlaybook(f"--playbook {source}: min_fit={min_fit!r} should be a number")
    return Playbook(
        source=str(source),
        min_fit=float(min_fit),
        personas=personas,
        generic_description=_text(generic, "description", "[generic]"),
        generic_marketing=_texts(generic, "marketing", "[generic]"),
        generic_service=_texts(generic, "service", "[generic]"),
    )


def _table(document: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = document.get(key)
    if not isinstance(value, dict):
        raise InvalidPlaybook(f"{where} needs a [{key}] table")
    return value


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidPlaybook(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _texts(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidPlaybook(f"{where}: {key} must be a non-empty list of strings")
    return tuple(value)


def _persona(entry: dict[str, Any], position: int) -> Persona:
    where = f"persona #{position + 1} ({entry.get('id', 'no id')})"
    slug = _text(entry, "id", where)
    if slug != slugify(slug):
        raise InvalidPlaybook(f"{where}: id must be a lower-case slug like {slugify(slug)!r}")
    signature = _table(entry, "signature", where)
    for feature, direction in signature.items():
        if feature not in FEATURES:
            raise InvalidPlaybook(f"{where}: signature names unknown feature {feature!r}")
        if not isinstance(direction, str) or direction not in _DIRECTIONS:
            raise InvalidPlaybook(
                f"{where}: signature {feature} = {direction!r} should be high, low or average"
            )
    if not signature:
        raise InvalidPlaybook(f"{where}: signature is empty")
    return Persona(
        id=slug,
        name=_text(entry, "name", where),
        description=_text(entry, "description", where),
        marketing=_texts(entry, "marketing", where),
        service=_texts(entry, "service", where),
        signature=dict(signature),
    )


def slugify(text: str) -> str:
    cleaned = "".join(char if char.isalnum() else "-" for char in text.lower())
    return "-".join(part for part in cleaned.split("-") if part)


def name_segments(z_centroids: FloatArray, playbook: Playbook) -> list[SegmentNaming]:
    """Give every segment (row of ``z_centroids``) its persona, or a descriptive name.

    The pairing maximises the total fit over all segments at once (Hungarian algorithm), so
    it depends only on the profiles, never on the order of the K-means labels.
    """
    fits = np.array([[persona.fit(z) for persona in playbook.personas] for z in z_centroids])
    segment_rows, persona_columns = linear_sum_assignment(fits, maximize=True)
    chosen = dict(zip(segment_rows.tolist(), persona_columns.tolist(), strict=True))
    namings = []
    for segment, z_centroid in enumerate(z_centroids):
        column = chosen.get(segment)
        if column is not None and fits[segment, column] >= playbook.min_fit:
            namings.append(_persona_naming(playbook.personas[column], fits[segment, column]))
        else:
            best = float(fits[segment].max())
            namings.append(_descriptive_naming(z_centroid, playbook, best))
    return namings


def _persona_naming(persona: Persona, fit: float) -> SegmentNaming:
    return SegmentNaming(
        slug=persona.id,
        name=persona.name,
        description=persona.description,
        persona=persona.id,
        fit=float(fit),
        marketing=persona.marketing,
        service=persona.service,
    )


def _descriptive_naming(z_centroid: FloatArray, playbook: Playbook, fit: float) -> SegmentNaming:
    traits = distinguishing_features(z_centroid)
    if traits:
        slug = "-".join(f"{t.direction}-{_FEATURE_SLUGS[t.feature]}" for t in traits)
        phrase = ", ".join(f"{t.direction} {FEATURE_LABELS[t.feature]}" for t in traits)
        name = phrase[0].upper() + phrase[1:]
    else:
        slug, name = "average-customers", "Average customers"
    return SegmentNaming(
        slug=slug,
        name=name,
        description=playbook.generic_description,
        persona=None,
        fit=fit,
        marketing=playbook.generic_marketing,
        service=playbook.generic_service,
    )
