"""The service's Prometheus metrics: what they are called, their labels, how they are read.

Every label takes values from a bounded set (route templates, HTTP methods and statuses,
segment ids, atypical reason codes, model versions, reload outcomes), so memory and the
size of ``/metrics`` stay flat however many requests and customers pass through.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``python -m service --workers N`` sets it), each
worker writes its values to files there and ``/metrics`` adds up every worker's, so any
worker answers for all of them; the active-model gauge keeps one series per worker
(``pid`` label) so that operators see each worker follow a new version.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from segmentation.features import FEATURES
from segmentation.scoring import FAR_FROM_CENTROID, above_range_reason, below_range_reason

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
"""Whether values live in shared files (read once, at import, as prometheus_client does)."""

UNMATCHED_ROUTE = "unmatched"
"""The route label of a request that matches no route (a 404, or a probe for paths)."""

OTHER = "other"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

ATYPICAL_REASONS = frozenset(
    {
        *(below_range_reason(feature) for feature in FEATURES),
        *(above_range_reason(feature) for feature in FEATURES),
        FAR_FROM_CENTROID,
    }
)

RELOAD_TRIGGERS = ("admin", "watcher")
RELOAD_OUTCOMES = ("success", "refused", "not_found", "error")

# Fast routes answer in well under a millisecond; a large batch takes seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip

# A `_created` series beside every counter and histogram doubles what is scraped and stored
# for a timestamp that dashboards do not use (and OpenMetrics does not require).
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
if not MULTIPROCESS:
    # Per-process figures (memory, CPU, open files): meaningless summed over workers.
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "segmentation_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "segmentation_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ASSIGNMENTS = Counter(
    "segmentation_assignments",
    "Customers assigned to each segment (single and batch scoring).",
    ["segment_id"],
    registry=REGISTRY,
)
ATYPICAL_CUSTOMERS = Counter(
    "segmentation_atypical_customers",
    "Atypical customers scored, by reason code: a rising rate is an early sign of drift.",
    ["reason"],
    registry=REGISTRY,
)
ACTIVE_MODEL = Gauge(
    "segmentation_active_model",
    "1 for the model version this process serves (0 for versions it served before).",
    ["version"],
    multiprocess_mode="liveall",
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "segmentation_model_info",
    "1 for the model version served (the platforms' info convention); during a switch, "
    "briefly both versions.",
    ["version"],
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
MODEL_RELOADS = Counter(
    "segmentation_model_reloads",
    "Attempts to change the served model, by trigger (admin, watcher) and outcome.",
    ["trigger", "outcome"],
    registry=REGISTRY,
)
LIVE_COMMIT_ANSWERS = Histogram(
    "segmentation_store_live_commit_answers",
    "Live answers (POST /segment with a customer key) kept by one store commit: how much "
    "concurrent requests share their commits.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)


DRIFT_PSI = Gauge(
    "segmentation_drift_psi",
    "Population stability index of the drift window against training, by feature "
    "(segment_mix for the segment mix); set each time drift is reported.",
    ["feature"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
DRIFT_ATYPICAL_SHARE = Gauge(
    "segmentation_drift_atypical_share",
    "Share of the drift window's customers that are atypical, by reason code (reason=all: "
    "for any reason); set each time drift is reported.",
    ["reason"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
DRIFT_WINDOW_CUSTOMERS = Gauge(
    "segmentation_drift_window_customers",
    "Customers in the drift window (every worker's) when drift was last reported.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
DRIFT_RETRAIN_RECOMMENDED = Gauge(
    "segmentation_drift_retrain_recommended",
    "1 when the last drift report recommended retraining, else 0.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)


SHADOW_CUSTOMERS = Counter(
    "segmentation_shadow_customers",
    "Customers scored by the shadow version too, by segment under the active version and "
    "under the shadow (equal labels: agreement).",
    ["active", "shadow"],
    registry=REGISTRY,
)

RESCORED_CUSTOMERS = Counter(
    "segmentation_store_rescored_customers",
    "Known customers assigned again by the active model after a switch of model.",
    registry=REGISTRY,
)
RESCORING_REMAINING = Gauge(
    "segmentation_store_rescoring_remaining_customers",
    "Known customers whose latest assignment another version than the active one made, "
    "as of the rescoring's latest page (0 once it finished).",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)


def method_label(method: str) -> str:
    """The method, or ``other`` for anything non-standard (clients choose the method)."""
    return method if method in KNOWN_METHODS else OTHER


def record_assignments(segment_ids: Sequence[str]) -> None:
    """Count scored customers by the segment each was assigned to.

    Parameters
    ----------
    segment_ids
        The segment id of every scored customer (one entry per customer).
    """
    if len(segment_ids) == 1:
        _assigned_to(segment_ids[0]).inc()
        return
    for segment_id, count in collections.Counter(segment_ids).items():
        ASSIGNMENTS.labels(segment_id).inc(count)


@functools.cache
def _assigned_to(segment_id: str) -> Counter:
    """The assignments counter of one segment (``labels`` costs more than the increment,
    and one customer's call pays it; segment ids are few)."""
    return ASSIGNMENTS.labels(segment_id)


def record_segment_counts(counts: Mapping[str, int]) -> None:
    """Count a batch's scored customers, already tallied by segment."""
    for segment_id, count in counts.items():
        if count:
            ASSIGNMENTS.labels(segment_id).inc(count)


def record_atypical(reasons: Iterable[str]) -> None:
    """Count atypical customers by reason.

    Parameters
    ----------
    reasons
        The ``atypical_reasons`` of every atypical customer scored, flattened: a customer
        with two reasons counts once under each. Codes outside the scorer's own set are
        counted as ``other`` so that the label stays bounded.
    """
    for reason, count in collections.Counter(reasons).items():
        label = reason if reason in ATYPICAL_REASONS else OTHER
        ATYPICAL_CUSTOMERS.labels(label).inc(count)


def set_active_version(version: str, previous: str | None) -> None:
    """Make ``version`` the one version this process reports as served."""
    for gauge in (ACTIVE_MODEL, MODEL_INFO):
        if previous is not None and previous != version:
            gauge.labels(previous).set(0)
        if not MULTIPROCESS:
            # One series, however many versions this process has served. (Shared files
            # keep every series; there the previous version's is set to 0 above.)
            gauge.clear()
        gauge.labels(version).set(1)


def record_reload(trigger: str, outcome: str) -> None:
    """Count one attempt to change the served model (see RELOAD_TRIGGERS and _OUTCOMES)."""
    MODEL_RELOADS.labels(trigger, outcome).inc()


def record_live_commit(answers: int) -> None:
    """Count one store commit of ``answers`` live answers."""
    LIVE_COMMIT_ANSWERS.observe(answers)


def exposition() -> tuple[bytes, str]:
    """Every metric in Prometheus text format, and its content type."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_stopped() -> None:
    """Drop this worker's live series from the shared files when it exits."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def record_drift(
    psi_by_feature: Mapping[str, float | None],
    retrain: bool,
    *,
    window_customers: int,
    atypical_share: float | None,
    atypical_by_reason: Mapping[str, float] | None,
) -> None:
    """Publish a drift report's figures (NaN where there is none)."""
    # NaN, not the last figure, when there is none now: a stale figure would look current.
    for feature, value in psi_by_feature.items():
        DRIFT_PSI.labels(feature).set(_or_nan(value))
    DRIFT_ATYPICAL_SHARE.labels("all").set(_or_nan(atypical_share))
    for reason in ATYPICAL_REASONS:
        DRIFT_ATYPICAL_SHARE.labels(reason).set(
            _or_nan(None if atypical_by_reason is None else atypical_by_reason.get(reason))
        )
    DRIFT_WINDOW_CUSTOMERS.set(window_customers)
    DRIFT_RETRAIN_RECOMMENDED.set(1 if retrain else 0)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def record_shadow(active: str, shadow: str, count: int) -> None:
    """Count customers the shadow assigned to ``shadow`` and the active model to ``active``."""
    SHADOW_CUSTOMERS.labels(active, shadow).inc(count)


def record_rescored(count: int) -> None:
    """Count customers the active model assigned again after a switch."""
    RESCORED_CUSTOMERS.inc(count)


def set_rescoring_remaining(count: int) -> None:
    """Publish how many customers are left to rescore."""
    RESCORING_REMAINING.set(count)
