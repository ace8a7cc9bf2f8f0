"""Dependencies the routes share: settings, the model holder and the serving model."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.config import Settings
from service.customer_records import CustomerRecords
from service.model_holder import ModelHolder, Serving


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


def get_records(request: Request) -> CustomerRecords:
    records: CustomerRecords = request.app.state.records
    return records


def get_serving(holder: Annotated[ModelHolder, Depends(get_holder)]) -> Serving:
    """The model this request is answered with, taken once for the whole request."""
    return holder.current()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServingDep = Annotated[Serving, Depends(get_serving)]
RecordsDep = Annotated[CustomerRecords, Depends(get_records)]
