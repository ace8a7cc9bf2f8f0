"""The models page's panels (every version, each candidate's comparison, the shadow),
built from the answers of ``GET /models``, ``GET /models/{version}/comparison`` and
``GET /admin/shadow``: only worded and laid out, never recomputed. Plain frozen classes,
for the templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.dashboard import wording
from service.dashboard.charts import Heatmap, transition_heatmap


@dataclass(frozen=True)
class HistoryStep:
    status: str
    at: str
    by: str
    reason: str


@dataclass(frozen=True)
class VersionRow:
    version: str
    status: str
    meaning: str
    created_at: str
    n_rows: str
    k: str
    silhouette: str
    problem: str | None
    shadowing: bool
    history: tuple[HistoryStep, ...]


def version_rows(versions: Mapping[str, Any]) -> tuple[VersionRow, ...]:
    """Every version of ``GET /models``, newest first, with its status and history."""
    rows = []
    for entry in versions["versions"]:
        silhouette = entry.get("silhouette")
        rows.append(
            VersionRow(
                version=entry["version"],
                status=entry["status"],
                meaning=wording.STATUS_MEANINGS.get(entry["status"], entry["status"]),
                created_at=wording.moment(entry.get("created_at")),
                n_rows="unknown" if entry.get("n_rows") is None else wording.count(entry["n_rows"]),
                k="unknown" if entry.get("k") is None else str(entry["k"]),
                silhouette="unknown" if silhouette is None else f"{silhouette:.3f}",
                problem=entry.get("problem"),
                shadowing=entry["version"] == versions.get("shadow"),
                history=tuple(
                    HistoryStep(
                        status=step["status"],
                        at=wording.moment(step["at"]),
                        by=step["by"],
                        reason=step["reason"],
                    )
                    for step in entry["history"]
                ),
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class Flow:
    from_name: str
    to_name: str
    count: int


@dataclass(frozen=True)
class ComparisonView:
    candidate: str
    against: str
    switch: bool
    reasons: tuple[str, ...]
    n_customers: int
    customers_note: str
    moved: int
    moved_share: str
    adjusted_rand_index: str
    heatmap: Heatmap
    flows: tuple[Flow, ...]
    moves: tuple[Flow, ...]
    """The flows between different segments: who would move where, the largest first."""


def comparison_view(report: Mapping[str, Any]) -> ComparisonView:
    """A candidate against the active version, from ``GET /models/{version}/comparison``."""
    sides = report["segments"]
    names = {
        side["segment_id"]: side["name_against"] or side["name_candidate"] or side["segment_id"]
        for side in sides
    }
    from_ids = [side["segment_id"] for side in sides if side["name_against"] is not None]
    to_ids = [side["segment_id"] for side in sides if side["name_candidate"] is not None]
    counts = {(flow["from"], flow["to"]): flow["count"] for flow in report["transitions"]}
    flows = tuple(
        Flow(from_name=names[flow["from"]], to_name=names[flow["to"]], count=flow["count"])
        for flow in report["transitions"]
    )
    moves = tuple(
        flow
        for flow, source in zip(flows, report["transitions"], strict=True)
        if source["from"] != source["to"]
    )
    moved_words = (
        "nobody would change segment"
        if not moves
        else "; ".join(f"{f.count:,} from {f.from_name} to {f.to_name}" for f in moves)
    )
    heatmap = transition_heatmap(
        f"heatmap-{report['candidate']}",
        f"Where the customers of {report['against']} would go under {report['candidate']}",
        f"{report['n_customers']:,} customers compared, rows by their segment now, columns by "
        f"their segment under the candidate; {moved_words}.",
        from_ids=from_ids,
        to_ids=to_ids,
        names=names,
        counts=counts,
    )
    return ComparisonView(
        candidate=report["candidate"],
        against=report["against"],
        switch=bool(report["verdict"]["ok"]),
        reasons=tuple(report["verdict"]["reasons"]),
        n_customers=report["n_customers"],
        customers_note=_customers_note(report.get("customers") or {}),
        moved=report["moved"],
        moved_share=wording.percent(report["moved_share"]),
        adjusted_rand_index=f"{report['adjusted_rand_index']:.3f}",
        heatmap=heatmap,
        flows=flows,
        moves=moves,
    )


def _customers_note(customers: Mapping[str, Any]) -> str:
    training = customers.get("training")
    if training is None:
        return ""
    if not customers.get("store_available"):
        return f"the candidate's {training:,} training customers (the store could not be asked)"
    note = (
        f"the candidate's {training:,} training customers and "
        f"{customers.get('store_only') or 0:,} more the store knows"
    )
    return note + (" (the first 200,000 by key)" if customers.get("store_capped") else "")


@dataclass(frozen=True)
class ShadowView:
    version: str
    started_at: str
    stopped: str | None
    requests: int
    customers: int
    agreement: str | None
    flows: tuple[Flow, ...]


def shadow_view(report: Mapping[str, Any], names: Mapping[str, str]) -> ShadowView | None:
    """The shadow's live tally (``GET /admin/shadow``), or None when no shadow ever ran."""
    if report.get("version") is None:
        return None
    agreement = report.get("agreement")
    return ShadowView(
        version=report["version"],
        started_at=wording.moment(report.get("started_at")),
        stopped=report.get("stopped"),
        requests=report["requests"],
        customers=report["customers"],
        agreement=None if agreement is None else wording.percent(agreement),
        flows=tuple(
            Flow(
                from_name=names.get(flow["from"], flow["from"]),
                to_name=names.get(flow["to"], flow["to"]),
                count=flow["count"],
            )
            for flow in report["transitions"]
        ),
    )
