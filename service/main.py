"""Assembles the FastAPI application: lifespan, error handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from service.config import Settings, get_settings
from service.error_handlers import install_error_handlers
from service.model_holder import ModelHolder
from service.routes import customers, health, model, scoring, segments

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; the model is loaded at start-up, never at import."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = ModelHolder(settings)
        app.state.holder = holder
        await run_in_threadpool(holder.load_latest)
        watcher = asyncio.create_task(holder.follow_latest(settings.model_poll_seconds))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="Customer segmentation",
        version="1.0",
        description=(
            "Segments of the bank's credit card customers and the recommended marketing "
            "and service actions for each."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (scoring.router, segments.router, customers.router, model.router, health.router):
        app.include_router(router)
    return app


app = create_app()
