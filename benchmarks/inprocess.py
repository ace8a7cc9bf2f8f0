"""Figures measured without HTTP: the scorer's own speed and the service's footprint."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.servers import RunningServer, peak_resident_memory_mb, post, resident_memory_mb
from segmentation.features import FEATURES, canonical_column_name
from segmentation.scoring import FloatArray, SegmentScorer
from service.models.model_loading import load_model
from training.synthetic import generate_customers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringFigures:
    """``SegmentScorer.score`` rows per second, one customer at a time and a million at once."""

    single_rows_per_second: float
    single_calls: int
    bulk_rows: int
    bulk_rows_per_second: float
    bulk_seconds: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServiceFootprint:
    """Start-up time and resident memory of one service worker."""

    startup_seconds: float
    rss_after_ready_mb: float | None
    rss_after_batch_mb: float | None
    batch_rows: int
    batch_status: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def serving_scorer(models_dir: Path) -> SegmentScorer:
    """The scorer exactly as the service builds it: verified, checked and self-tested."""
    signing_key = os.environ.get("MODEL_SIGNING_KEY")
    model, _ = load_model(models_dir, signing_keys=(signing_key,) if signing_key else ())
    return model.scorer


def measure_scoring(
    scorer: SegmentScorer,
    single_customers: list[FloatArray],
    *,
    bulk_rows: int = 1_000_000,
    single_seconds: float = 2.0,
    repeats: int = 3,
) -> ScoringFigures:
    """Time ``scorer.score`` on ``(1, 5)`` arrays in a loop, then on ``bulk_rows`` customers.

    The bulk figure is the best of ``repeats`` calls after one warm-up call: on a shared
    machine the best run is the one least disturbed by other work.
    """
    calls = _time_single(scorer, single_customers, single_seconds)
    bulk = _synthetic_features(bulk_rows)
    scorer.score(bulk)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.score(bulk)
        timings.append(time.perf_counter() - started)
    return ScoringFigures(
        single_rows_per_second=calls / single_seconds,
        single_calls=calls,
        bulk_rows=bulk_rows,
        bulk_rows_per_second=bulk_rows / min(timings),
        bulk_seconds=[round(seconds, 4) for seconds in timings],
    )


def _time_single(scorer: SegmentScorer, customers: list[FloatArray], seconds: float) -> int:
    """How many one-customer calls fit in ``seconds`` (checked every 1,000 calls)."""
    for features in customers[:100]:
        scorer.score(features)
    calls = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for index in range(1000):
            scorer.score(customers[index % len(customers)])
        calls += 1000
    # Scale to the exact elapsed time rather than the nominal duration.
    return round(calls * seconds / (time.perf_counter() - started))


def _synthetic_features(rows: int) -> FloatArray:
    frame = generate_customers(rows, seed=0)
    frame.columns = [canonical_column_name(str(name)) for name in frame.columns]
    return np.ascontiguousarray(frame[list(FEATURES)].to_numpy(dtype=np.float64))


def measure_footprint(
    server: RunningServer, *, batch_body: bytes, batch_rows: int, content_type: str
) -> ServiceFootprint:
    """RSS once ready, then after one ``batch_rows`` batch; start-up time as the server saw it."""
    after_ready = resident_memory_mb(server.pid)
    status, _ = post(server.spec.base_url + "/segment/batch", batch_body, content_type)
    return ServiceFootprint(
        startup_seconds=server.startup_seconds or float("nan"),
        rss_after_ready_mb=after_ready,
        rss_after_batch_mb=resident_memory_mb(server.pid),
        batch_rows=batch_rows,
        batch_status=status,
    )


def peak_memory_mb(server: RunningServer) -> float | None:
    """VmHWM: the most resident memory the worker ever had, read before it is stopped."""
    return peak_resident_memory_mb(server.pid)
