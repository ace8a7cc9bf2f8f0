"""Assembles the FastAPI application: lifespan, error handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool

from service.allocator import keep_large_buffers
from service.api.batch_threads import BatchThreads
from service.api.docs import install_docs
from service.api.error_handlers import install_error_handlers
from service.api.middleware import install_middleware
from service.api.middleware.access import warn_if_open
from service.api.middleware.shared_budget import SharedBudget
from service.api.query_parameters import refuse_unknown_query_parameters
from service.api.routes import (
    admin,
    customers,
    dashboard,
    drift,
    health,
    inference_protocol,
    metrics,
    model,
    moves,
    scoring,
    segments,
)
from service.api.routes.live_path import ServiceApi
from service.api.routes.openapi import errors
from service.config import Settings, get_settings
from service.customer_records import CustomerRecords
from service.logging_setup import configure_logging, flush_logs
from service.metrics import worker_stopped
from service.models.active_model import ActiveModel
from service.models.model_holder import ModelHolder, Serving
from service.models.rescoring import StoreRescoring
from service.models.shadow import Shadow
from service.scoring.drift_window import DriftWindow
from service.shared_state import SharedState, shared_state
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; the model is loaded at start-up, never at import."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        keep_large_buffers()
        app.state.batch_threads = BatchThreads(settings.batch_threads)
        warn_if_open(settings)
        store = CustomerStore(
            settings.database_url, round_trip_seconds=settings.store_timeout_seconds
        )
        records = CustomerRecords(store, record_wait_seconds=settings.record_wait_seconds)
        app.state.records = records
        # Without a directory shared by the workers, this process keeps its own (and removes it).
        private_state = settings.state_dir is None
        state_dir = settings.state_dir or Path(tempfile.mkdtemp(prefix="segmentation-state-"))
        state_dir.mkdir(parents=True, exist_ok=True)
        shared = shared_state(state_dir, settings.redis_url)
        window = DriftWindow(settings.drift_window, shared)
        app.state.drift_window = window
        await run_in_threadpool(_migrate, records.store)
        holder = ModelHolder(settings, on_swap=lambda serving: _swapped(records, shadow, serving))
        app.state.holder = holder
        shadow = Shadow(shared, holder.verified_model)
        app.state.shadow = shadow
        rescoring = StoreRescoring(records, lambda: _served_model(holder), state_dir, shared)
        app.state.rescoring = rescoring
        await run_in_threadpool(holder.load_latest)
        _tune_gc_for_serving()
        background = [
            asyncio.create_task(_share_observations(shared, window, shadow, SHARE_SECONDS)),
            asyncio.create_task(holder.follow_latest(settings.model_poll_seconds)),
            asyncio.create_task(_retry_missed_imports(records, settings.model_poll_seconds)),
            asyncio.create_task(_rescore_after_switches(records, rescoring, SHARE_SECONDS)),
        ]
        try:
            yield
        finally:
            rescoring.stop()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(records.close)
            shared_budget: SharedBudget | None = getattr(app.state, "shared_budget", None)
            if shared_budget is not None:
                await shared_budget.close()
            worker_stopped()
            await asyncio.to_thread(_withdraw, shared, window, shadow)
            if private_state:
                shutil.rmtree(state_dir, ignore_errors=True)
            flush_logs()

    app = ServiceApi(
        title="Customer segmentation",
        version="1.0",
        description=(
            "Segments of the bank's credit card customers and the recommended marketing "
            "and service actions for each."
        ),
        lifespan=lifespan,
        # The service reports through Prometheus and JSON logs and sets up no OpenTelemetry;
        # left on, FastAPI would still ask OpenTelemetry for its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_query_parameters)],
    )
    install_docs(app)
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)
    guarded = (
        scoring.router,
        moves.router,
        inference_protocol.router,
        segments.router,
        customers.router,
        model.router,
        drift.router,
        admin.router,
    )
    for router in guarded:
        # What the middleware may answer on any of these (keys, rate limit, timeout).
        app.include_router(router, responses=errors(401, 403, 429, 504))
    for router in (health.router, metrics.router, dashboard.router):
        app.include_router(router)
    return app


SHARE_SECONDS = 1.0
"""How often a worker shares what it observed and follows the shadow (how far behind the
other workers may be)."""


async def _share_observations(
    shared: SharedState, window: DriftWindow, shadow: Shadow, interval: float
) -> None:
    """Off the request path: share the drift window and the shadow's counts with the other
    workers, and take up or drop the shadow they started or stopped."""
    while True:
        await asyncio.sleep(interval)
        for step in (window.share, shadow.follow, shadow.share, shared.refresh):
            try:
                await asyncio.to_thread(step)
            except Exception as error:  # a full disk or a lost Redis must not stop it for good
                logger.warning("sharing observations failed: %s: %s", type(error).__name__, error)


def _withdraw(shared: SharedState, window: DriftWindow, shadow: Shadow) -> None:
    """Take this worker's observations out of the others' reports (it is stopping)."""
    for withdraw in (window.close, shadow.close, shared.close):
        try:
            withdraw()
        except Exception as error:  # the others stop counting them once they expire
            logger.warning("withdrawing observations failed: %s: %s", type(error).__name__, error)


async def _rescore_after_switches(
    records: CustomerRecords, rescoring: StoreRescoring, interval: float
) -> None:
    """Off the request path: rescore the store with the active model when another version
    assigned some customers last (see :mod:`service.models.rescoring`). On a writer thread,
    which closing the store waits for; a store outage is retried at doubling intervals."""
    delay = interval
    while True:
        await asyncio.sleep(delay)
        try:
            await asyncio.wrap_future(records.in_background(rescoring.check))
            delay = interval
        except StoreUnavailable as error:
            logger.warning("rescoring the store waits for it: %s", error)
            delay = min(delay * 2, 60.0)
        except Exception:  # the rescoring must outlive any one failure
            logger.exception("rescoring the store failed")
            delay = min(delay * 2, 60.0)


def _served_model(holder: ModelHolder) -> ActiveModel | None:
    serving = holder.serving
    return None if serving is None else serving.model


def _swapped(records: CustomerRecords, shadow: Shadow, serving: Serving) -> None:
    """After a switch of the served model: its training snapshot into the store, and any
    shadow stopped (it was compared with the model no longer served)."""
    _import_snapshot(records, serving)
    shadow.stop(f"version {serving.model.version} became the active version")


def _tune_gc_for_serving() -> None:
    """Keep the garbage collector's passes off what start-up built, and make them rarer.

    The libraries and the model make some 150,000 long-lived objects, and a batch
    allocates enough containers to trigger several full collections, each walking all of
    them: on a 10,000-row CSV batch that was most of the time. They are frozen after a
    collection of the young generations only: a full one found some 20 objects (3 kB) of
    cyclic garbage in the old generation, and took 0.1 s of the start-up. A model holds no
    reference cycle (a test checks), so a model replaced later is freed by reference
    counting, frozen or not. A first generation of 20,000 objects instead of 700 lets a
    batch's short-lived dicts die by reference count before any pass looks at them (the
    README's performance section has what this changed).
    """
    gc.collect(1)
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _migrate(store: CustomerStore) -> None:
    try:
        store.migrate()
    except StoreUnavailable as error:
        # Scoring does not need the store: start degraded and retry on first use.
        logger.error("customer store unavailable at start-up: %s", error)


def _import_snapshot(records: CustomerRecords, serving: Serving) -> None:
    records.import_snapshot(serving.model, serving.snapshot)


async def _retry_missed_imports(records: CustomerRecords, interval: float) -> None:
    """Off the request path: land a snapshot import that a store outage kept out.

    First tried ``interval`` seconds after the failure, then at doubling intervals (at most
    a minute) while it keeps failing.
    """
    delay = interval
    while True:
        await asyncio.sleep(delay)
        if not records.import_pending:
            delay = interval
            continue
        try:
            await asyncio.wrap_future(records.in_background(records.retry_pending_import))
        except Exception:  # the retry loop must outlive any one failure
            logger.exception("retrying the snapshot import failed")
        delay = min(delay * 2, 60.0) if records.import_pending else interval


app = create_app()
