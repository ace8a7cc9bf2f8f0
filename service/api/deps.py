"""Dependencies the routes share: settings, the model holder and the serving model.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread
pool, a thread hop per dependency per request, for what is only an attribute read. The
live scoring route calls ``serving_for`` and ``records_for`` itself: resolving even these
dependencies was a tenth of its time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.batch_threads import BatchThreads
from service.api.middleware.shared_budget import SharedBudget
from service.config import Settings
from service.customer_records import CustomerRecords
from service.models.model_holder import ModelHolder, Serving
from service.models.rescoring import StoreRescoring
from service.models.shadow import Shadow
from service.scoring.drift_window import DriftWindow


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


def records_for(request: Request) -> CustomerRecords:
    records: CustomerRecords = request.app.state.records
    return records


def shadow_for(request: Request) -> Shadow:
    shadow: Shadow = request.app.state.shadow
    return shadow


def window_for(request: Request) -> DriftWindow:
    window: DriftWindow = request.app.state.drift_window
    return window


def serving_for(request: Request) -> Serving:
    """The model this request is answered with, taken once for the whole request."""
    holder: ModelHolder = request.app.state.holder
    return holder.current()


async def get_records(request: Request) -> CustomerRecords:
    return records_for(request)


async def get_serving(request: Request) -> Serving:
    return serving_for(request)


async def get_window(request: Request) -> DriftWindow:
    return window_for(request)


async def get_shadow(request: Request) -> Shadow:
    return shadow_for(request)


async def get_batch_threads(request: Request) -> BatchThreads:
    threads: BatchThreads = request.app.state.batch_threads
    return threads


async def get_rate_limits(request: Request) -> str | None:
    """How clients' requests are counted: None without a limit, else ``per process``,
    ``shared`` (in Redis) or why they are counted per process although Redis is set."""
    settings: Settings = request.app.state.settings
    if settings.rate_limit_per_minute is None:
        return None
    shared: SharedBudget | None = getattr(request.app.state, "shared_budget", None)
    return "per process" if shared is None else shared.state


async def get_rescoring(request: Request) -> StoreRescoring:
    rescoring: StoreRescoring = request.app.state.rescoring
    return rescoring


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServingDep = Annotated[Serving, Depends(get_serving)]
RecordsDep = Annotated[CustomerRecords, Depends(get_records)]
WindowDep = Annotated[DriftWindow, Depends(get_window)]
ShadowDep = Annotated[Shadow, Depends(get_shadow)]
RescoringDep = Annotated[StoreRescoring, Depends(get_rescoring)]
BatchThreadsDep = Annotated[BatchThreads, Depends(get_batch_threads)]
RateLimitsDep = Annotated[str | None, Depends(get_rate_limits)]
