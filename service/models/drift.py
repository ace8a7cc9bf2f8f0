"""Drift of the live population: the drift window against the served model's training."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from segmentation.drift import drift_report, insufficient_report
from service import metrics
from service.models.active_model import ActiveModel
from service.scoring.drift_window import DriftWindow


def report_drift(model: ActiveModel, window: DriftWindow) -> dict[str, Any]:
    """PSI per feature and for the segment mix, bands, atypical shares and a retrain
    recommendation over the newest customers the served model scored (every worker's);
    the figures are published as Prometheus gauges too."""
    rows = window.rows(model.version)
    baseline = model.manifest.drift_baseline
    if baseline is None:
        report = insufficient_report(
            f"model {model.version} was trained before drift baselines were kept: "
            "retrain it to watch drift"
        )
    else:
        # Scored again for the reasons (the window keeps only the flag): the same model,
        # so the same answers, at a few milliseconds for a full window.
        reasons = model.scorer.score(rows.features).reason_counts()
        segment_ids = rows.segment_ids.tolist()
        report = drift_report(
            baseline, rows.features, segment_ids, rows.atypical, atypical_reasons=reasons
        )
    figures = {feature: values["psi"] for feature, values in report["features"].items()}
    metrics.record_drift(
        {**figures, "segment_mix": report["segment_mix"]["psi"]},
        report["retrain_recommended"],
        window_customers=len(rows),
        atypical_share=report["atypical_share"],
        atypical_by_reason=report["atypical_by_reason"],
    )
    since = (
        datetime.fromtimestamp(float(rows.times[0]), UTC).isoformat(timespec="seconds")
        if len(rows)
        else None
    )
    window_facts = {"customers": len(rows), "size": window.size, "since": since}
    return {"model_version": model.version, "window": window_facts, **report}
