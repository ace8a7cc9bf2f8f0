"""Service fixtures: an app over a private copy of the trained model, spoken to over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import redis

from segmentation.artifact import ASSIGNMENTS_FILE, point_latest
from service.api.app import create_app
from service.config import Settings
from service.shared_state import DirectoryState, RedisState, SharedState
from tests.service.helpers import CRM_KEY, KEYS
from tests.service.redis_server import RedisServer, redis_server
from training.job import TrainingOptions, TrainingResult, train

ClientFactory = Callable[..., Any]

NewWorker = Callable[[], SharedState]


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


@asynccontextmanager
async def serve_with_keys(models: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with keys on; the client speaks as ``crm`` unless told otherwise."""
    async with serve(settings_for(models, **KEYS, **overrides)) as client:
        client.headers["X-API-Key"] = CRM_KEY
        yield client


@pytest.fixture
async def client(models_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(models_dir)) as http:
        yield http


@pytest.fixture(scope="session")
def training_assignments(trained: TrainingResult) -> pd.DataFrame:
    """The training job's own answer for every customer of the bank's export."""
    return pd.read_csv(trained.path / ASSIGNMENTS_FILE, dtype={"customer_key": str})


@pytest.fixture(scope="module")
def two_versions(
    trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    """A models directory with the session's version and a second one trained with another
    seed; `latest` = first. Returns (models, first, second)."""
    models = tmp_path_factory.mktemp("two-versions") / "models"
    shutil.copytree(trained.path.parent, models)
    second = train(TrainingOptions(models_dir=models, seed=1, n_bootstrap=2))
    point_latest(models, trained.version)
    assert second.version != trained.version
    return models, trained.version, second.version


@pytest.fixture
def versions(two_versions: tuple[Path, str, str], tmp_path: Path) -> tuple[Path, str, str]:
    """A private copy of ``two_versions``, free to damage."""
    source, first, second = two_versions
    models = tmp_path / "models"
    shutil.copytree(source, models)
    return models, first, second


@pytest.fixture(scope="session")
def session_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["directory", "redis"])
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, session_redis: RedisServer
) -> Iterator[NewWorker]:
    made: list[SharedState] = []

    def new_worker() -> SharedState:
        state: SharedState = (
            DirectoryState(tmp_path)
            if request.param == "directory"
            else RedisState(session_redis.url)
        )
        made.append(state)
        return state

    yield new_worker
    for state in made:
        state.close()
    redis.Redis.from_url(session_redis.url).flushdb()
