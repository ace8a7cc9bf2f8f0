"""What a batch's row answer says of each segment, rendered once when a model is loaded.

A row answer repeats each customer's segment (its id, name, description and recommended
actions: most of the answer's bytes) in every result, as the contract asks. Rendering it
once per segment, as JSON and as CSV, lets a batch's answer be assembled from these
fragments and the scorer's arrays without an object per customer (see
:mod:`service.scoring.row_answer` and :mod:`service.scoring.csv_answer`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from service.spreadsheet_csv import FORMULA_LEADS, spreadsheet_safe

if TYPE_CHECKING:
    from service.models.active_model import SegmentCard

ObjectArray = npt.NDArray[np.object_]
"""Fragments in an array, so that a column of labels picks each row's at once."""

Recorded = Mapping[str, bool]
"""What an answer says of its record (``service.customer_records.Recorded``)."""

_TYPICAL = {"atypical": False, "atypical_reasons": [], "atypical_explanations": []}


@dataclass(frozen=True)
class AnswerFragments:
    """A model's per-segment fragments of a row answer, as JSON and as CSV (both text).

    A JSON result is ``{"index":I,"customer_key":K`` then ``json_segments[label]`` (the
    segment's fields up to ``"confidence":``), the confidence, ``distance_names[j]`` and
    the distance to each segment ``j``, then a tail from :meth:`json_tails` (runner-up,
    atypical fields, model version, what became of the record), ``}`` included. A CSV row
    is the index, the key, ``csv_segments[label]``, the numbers, and a tail from
    :meth:`csv_tails`.
    """

    version: str
    segment_ids: tuple[str, ...]
    json_segments: ObjectArray
    distance_names: tuple[str, ...]
    csv_segments: ObjectArray

    @classmethod
    def for_segments(cls, cards: Sequence[SegmentCard], version: str) -> AnswerFragments:
        """The fragments of the segments ``cards`` (in label order) of model ``version``."""
        ids = tuple(card.segment_id for card in cards)
        json_segments = [
            ","
            + _json(
                {
                    "segment_id": card.segment_id,
                    "segment_name": card.name,
                    "segment_description": card.description,
                    "recommended_actions": card.recommended_actions,
                }
            )[1:-1]
            + ',"confidence":'
            for card in cards
        ]
        names = ["," + _json(segment_id) + ":" for segment_id in ids]
        names[0] = ',"distances":{' + names[0][1:]
        csv_segments = ["," + csv_line([card.segment_id, card.name])[:-1] + "," for card in cards]
        return cls(
            version=version,
            segment_ids=ids,
            json_segments=as_objects(json_segments),
            distance_names=tuple(names),
            csv_segments=as_objects(csv_segments),
        )

    def json_tail(
        self, runner_up_label: int, atypical: Mapping[str, Any], recorded: Recorded | None
    ) -> str:
        """A result's end: ``}`` closing the distances, the runner-up, the ``atypical``
        fields, the model version, ``recorded`` (if given) and the closing ``}``."""
        fields: dict[str, Any] = {
            "runner_up_segment_id": self.segment_ids[runner_up_label],
            **atypical,
            "model_version": self.version,
        }
        if recorded is not None:
            # Keys as the answer's dict had them: "recorded" first, as it was set before.
            fields["recorded"] = True
            fields.update(recorded)
        return "}," + _json(fields)[1:]

    def json_tails(self, recorded: Recorded | None) -> ObjectArray:
        """The tail of a typical result, by runner-up label."""
        return as_objects(
            [self.json_tail(label, _TYPICAL, recorded) for label in range(len(self.segment_ids))]
        )

    def csv_tail(
        self, runner_up_label: int, reasons: Sequence[str], recorded: Recorded | None
    ) -> str:
        """A CSV row's cells after the distances (the error's empty), line end included."""
        cells: list[Any] = [
            "",
            self.segment_ids[runner_up_label],
            bool(reasons),
            ";".join(reasons),
            self.version,
            "" if recorded is None else {"recorded": True, **recorded}["recorded"],
            "",
        ]
        return csv_line(cells)

    def csv_tails(self, recorded: Recorded | None) -> ObjectArray:
        """The tail of a typical row, by runner-up label."""
        return as_objects(
            [self.csv_tail(label, (), recorded) for label in range(len(self.segment_ids))]
        )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def as_objects(values: Iterable[Any]) -> ObjectArray:
    """``values`` as a one-dimensional array of objects (numpy would make text a string
    array, and a sequence of tuples two-dimensional)."""
    items = list(values)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


_BOOLEAN = {True: "true", False: "false"}
_CSV_SPECIAL = (",", '"', "\n", "\r")
"""Characters that make the csv module quote a cell (a superset: checked before writing)."""


def csv_line(values: Sequence[Any]) -> str:
    """One CSV line as :func:`service.spreadsheet_csv.to_csv` writes a row: booleans as
    JSON spells them, text cells safe to open in a spreadsheet, ``\\n`` at the end."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        _BOOLEAN[value] if isinstance(value, bool) else spreadsheet_safe(value) for value in values
    )
    return buffer.getvalue()


def csv_text_cells(values: list[str]) -> list[str]:
    """Text cells of a column as ``csv_line`` writes each, at once when none needs care."""
    text = "\n".join(values)
    plain = text.count("\n") == len(values) - 1 and not any(
        special in text for special in _CSV_SPECIAL[:2] + _CSV_SPECIAL[3:]
    )
    if plain and not any(text.startswith(lead) or "\n" + lead in text for lead in FORMULA_LEADS):
        return values
    return [csv_line(["", value])[1:-1] for value in values]
