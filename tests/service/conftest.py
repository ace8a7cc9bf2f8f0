"""Service fixtures: an app over a private copy of the trained model, spoken to over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from segmentation.artifact import ASSIGNMENTS_FILE
from service.config import Settings
from service.main import create_app
from training.job import TrainingResult

ClientFactory = Callable[..., Any]


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (lifespan included) and talk to it through real HTTP over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def settings_for(models_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app; the store is an SQLite file beside the models unless given."""
    overrides.setdefault("database_url", f"sqlite:///{models_dir.parent / 'store.db'}")
    overrides.setdefault("model_poll_seconds", 3600)
    return Settings(models_dir=models_dir, **overrides)


@pytest.fixture
async def client(models_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(models_dir)) as http:
        yield http


@pytest.fixture(scope="session")
def training_assignments(trained: TrainingResult) -> pd.DataFrame:
    """The training job's own answer for every customer of the bank's export."""
    return pd.read_csv(trained.path / ASSIGNMENTS_FILE, dtype={"customer_key": str})
