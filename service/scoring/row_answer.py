"""A batch's answer in rows, rendered from the scorer's arrays without an object per customer.

Every result of the row answer has the same fields in the same order, and all but a few of
its bytes are the same for every customer of a segment. So the results are assembled as
one list of text fragments, joined once: the model's pre-rendered per-segment fragments (see
:mod:`service.scoring.answer_fragments`), the numbers rendered at once by orjson (which
writes a numpy array's floats exactly as it writes Python's), and, for the few items that
differ (atypical customers, items not scored), fragments rendered one by one. The text
is what ``orjson.dumps`` gives for the answer as one dict per customer; tests hold the
two equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from segmentation.scoring import BoolArray, FloatArray, IntArray, ScoredBatch
from service.models.active_model import ActiveModel, rounded
from service.scoring.answer_fragments import AnswerFragments, ObjectArray, Recorded
from service.scoring.customer_input import CustomerBatch


@dataclass(frozen=True)
class ScoredRows:
    """A batch's scored items in input order, as columns: what its answer is rendered from."""

    indices: npt.NDArray[np.intp]
    """Input index of each row, ascending."""
    keys: list[str | None]
    labels: IntArray
    runner_up_labels: IntArray
    confidence: FloatArray
    distances: FloatArray
    """Rounded, as answers give them (``(n, k)``, by segment label)."""
    atypical: BoolArray
    reasons: dict[int, list[str]]
    """The atypical reason codes of each atypical row."""
    explanations: dict[int, list[str]]
    """The same reasons in words."""
    recorded: npt.NDArray[np.intp]
    """What became of each row's record, as a place in ``recorded_states``."""
    recorded_states: tuple[Recorded | None, ...] = (None,)


def scored_rows(
    model: ActiveModel,
    scored: ScoredBatch,
    features: FloatArray,
    keys: Sequence[str | None],
    positions: Sequence[int],
    recorded: Sequence[int] = (),
    recorded_as: Recorded | None = None,
) -> ScoredRows:
    """The rows of ``scored`` (the scores of ``features``, of the items at input
    ``positions``) in input order; the rows ``recorded`` (of ``scored``) say
    ``recorded_as``."""
    at = np.asarray(positions, dtype=np.intp)
    in_order = bool((at[1:] > at[:-1]).all())
    order = np.arange(len(at)) if in_order else np.argsort(at, kind="stable")
    # Where each row of `scored` goes: the rows are few to move only when out of order.
    place = order if in_order else np.argsort(order, kind="stable")
    atypical = scored.atypical
    flagged = np.flatnonzero(atypical).tolist()
    reasons = [scored.atypical_reasons(row) for row in flagged]
    explanations = model.explanations_of(scored, features, reasons, flagged)
    places = place[flagged].tolist()
    codes = np.zeros(len(at), dtype=np.intp)
    codes[place[np.asarray(recorded, dtype=np.intp)]] = 1
    return ScoredRows(
        indices=at[order],
        keys=list(keys) if in_order else [keys[row] for row in order.tolist()],
        labels=scored.labels[order],
        runner_up_labels=scored.runner_up_labels[order],
        confidence=rounded(scored.confidence[order]),
        distances=rounded(scored.distances[order]),
        atypical=atypical[order],
        reasons=dict(zip(places, reasons, strict=True)),
        explanations=dict(zip(places, explanations, strict=True)),
        recorded=codes,
        recorded_states=(None, recorded_as),
    )


def with_recorded(rows: ScoredRows, positions: Sequence[int], recorded: Recorded) -> ScoredRows:
    """``rows``, the rows of the items at input ``positions`` saying ``recorded``."""
    codes = rows.recorded.copy()
    codes[np.searchsorted(rows.indices, np.asarray(positions, dtype=np.intp))] = len(
        rows.recorded_states
    )
    return dataclasses.replace(
        rows, recorded=codes, recorded_states=(*rows.recorded_states, recorded)
    )


class RowsResponse(dict[str, Any]):
    """A batch's answer in rows: ``{"model_version", "counts", "n_errors", "results"}``,
    with ``results`` already rendered (an ``orjson.Fragment``: ``orjson.dumps`` of this
    dict writes the whole answer) and what it was rendered from kept beside it, for the
    CSV answer and the metrics.

    Without ``as_json`` (an answer that will be sent as CSV) the results are not rendered:
    ``results`` then holds a placeholder that JSON encoders refuse (``TypeError``).
    """

    def __init__(
        self,
        *,
        fragments: AnswerFragments,
        rows: ScoredRows,
        errors: dict[int, dict[str, Any]],
        error_keys: dict[int, str | None],
        as_json: bool = True,
    ) -> None:
        counts = np.bincount(rows.labels, minlength=len(fragments.segment_ids)).tolist()
        super().__init__(
            model_version=fragments.version,
            counts=dict(zip(fragments.segment_ids, counts, strict=True)),
            n_errors=len(errors),
            results=(
                orjson.Fragment(_results_json(fragments, rows, errors, error_keys))
                if as_json
                else NOT_RENDERED
            ),
        )
        self.fragments = fragments
        self.rows = rows
        self.errors = errors
        self.error_keys = error_keys

    def with_recorded(self, positions: Sequence[int], recorded: Recorded) -> RowsResponse:
        """This answer, the items at input ``positions`` saying ``recorded`` instead."""
        return RowsResponse(
            fragments=self.fragments,
            rows=with_recorded(self.rows, positions, recorded),
            errors=self.errors,
            error_keys=self.error_keys,
            as_json=self["results"] is not NOT_RENDERED,
        )

    def atypical_reasons(self) -> Iterator[str]:
        """Every atypical reason of the scored customers, in input order."""
        rows = self.rows.reasons
        return (reason for row in sorted(rows) for reason in rows[row])


class _NotRendered:
    """The results of an answer sent as CSV, which no one renders as JSON."""

    def __repr__(self) -> str:
        return "<results not rendered as JSON>"


NOT_RENDERED = _NotRendered()


def rows_response(
    model: ActiveModel,
    batch: CustomerBatch,
    rows: ScoredRows,
    errors: dict[int, dict[str, Any]],
    *,
    as_json: bool = True,
) -> RowsResponse:
    """The row answer to ``batch``: its scored ``rows`` and the items in ``errors``
    (``results`` rendered as JSON unless told otherwise, see :class:`RowsResponse`)."""
    return RowsResponse(
        fragments=model.answer_fragments,
        rows=rows,
        errors=errors,
        error_keys={index: batch.key_of_error(index) for index in errors},
        as_json=as_json,
    )


def number_texts(values: npt.NDArray[Any]) -> list[str]:
    """Each of ``values`` (numbers, one dimension) as ``orjson.dumps`` writes it."""
    if not len(values):
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")


def _key_texts(keys: list[str | None]) -> list[str]:
    """Each key as ``orjson.dumps`` writes it: split from one list when no key holds a comma."""
    if keys.count(None) == len(keys):
        return ["null"] * len(keys)
    texts = orjson.dumps(keys).decode()[1:-1]
    if texts.count(",") == len(keys) - 1:
        return texts.split(",")
    return [orjson.dumps(key).decode() for key in keys]


def _results_json(
    fragments: AnswerFragments,
    rows: ScoredRows,
    errors: dict[int, dict[str, Any]],
    error_keys: dict[int, str | None],
) -> str:
    """The ``results`` list as JSON: the scored rows and the errors, in input order."""
    count, k = len(rows.indices), len(fragments.segment_ids)
    width = 7 + 2 * k
    numbers = np.empty((count, 1 + k))
    numbers[:, 0] = rows.confidence
    numbers[:, 1:] = rows.distances
    texts = number_texts(numbers.ravel())
    pieces: list[str] = [',{"index":'] * (count * width)
    pieces[1::width] = number_texts(rows.indices)
    pieces[2::width] = [',"customer_key":'] * count
    pieces[3::width] = _key_texts(rows.keys)
    pieces[4::width] = fragments.json_segments[rows.labels].tolist()
    pieces[5::width] = texts[:: 1 + k]
    for segment in range(k):
        pieces[6 + 2 * segment :: width] = [fragments.distance_names[segment]] * count
        pieces[7 + 2 * segment :: width] = texts[1 + segment :: 1 + k]
    tails = _tails(fragments, rows.recorded_states)
    pieces[width - 1 :: width] = tails[rows.recorded, rows.runner_up_labels].tolist()
    for row, reasons in rows.reasons.items():
        atypical = {
            "atypical": True,
            "atypical_reasons": reasons,
            "atypical_explanations": rows.explanations[row],
        }
        state = rows.recorded_states[rows.recorded[row]]
        pieces[row * width + width - 1] = fragments.json_tail(
            rows.runner_up_labels[row], atypical, state
        )
    if errors:
        failed = sorted(errors)
        results = [
            ","
            + orjson.dumps(
                {"index": index, "customer_key": error_keys[index], "error": errors[index]}
            ).decode()
            for index in failed
        ]
        pieces = with_rows_between(pieces, width, rows.indices, failed, results)
    if pieces:
        pieces[0] = "[" + pieces[0][1:]  # the first result has no comma before it
        pieces.append("]")
        # Joined as text: joining bytes first lists every piece's buffer (80 bytes each),
        # megabytes more memory written than the answer itself.
        return "".join(pieces)
    return "[]"


def _tails(fragments: AnswerFragments, states: tuple[Recorded | None, ...]) -> ObjectArray:
    tails = np.empty((len(states), len(fragments.segment_ids)), dtype=object)
    for code, state in enumerate(states):
        tails[code] = fragments.json_tails(state)
    return tails


def with_rows_between(
    pieces: list[str],
    width: int,
    indices: npt.NDArray[np.intp],
    others: list[int],
    rendered: list[str],
) -> list[str]:
    """Rows in ``pieces`` (``width`` pieces each, of the items at input ``indices``,
    ascending) with each of the ``rendered`` items at input ``others`` (ascending) in its
    place."""
    before = np.searchsorted(indices, others).tolist()
    merged: list[str] = []
    start = 0
    for rows_before, piece in zip(before, rendered, strict=True):
        merged += pieces[start : rows_before * width]
        start = rows_before * width
        merged.append(piece)
    merged += pieces[start:]
    return merged
