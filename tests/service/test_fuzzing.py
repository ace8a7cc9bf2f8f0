"""Fuzzing with schemathesis against the service's own OpenAPI document."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.main import app as documented_app
from service.main import create_app
from tests.service.conftest import settings_for
from tests.service.helpers import ADMIN_KEY, CRM_KEY, KEYS
from training.job import TrainingResult

schema = schemathesis.openapi.from_dict(documented_app.openapi())


@pytest.fixture(scope="module")
def fuzzed_app(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    models = tmp_path_factory.mktemp("fuzzing") / "models"
    shutil.copytree(trained.path.parent, models)
    return create_app(settings_for(models, **KEYS))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, fuzzed_app: FastAPI) -> None:
    key = ADMIN_KEY if case.path.startswith("/admin") else CRM_KEY
    response = case.call(app=fuzzed_app, headers={"X-API-Key": key})
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        headers={"X-API-Key": key},
    )
