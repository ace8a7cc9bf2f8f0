"""Fuzzing with schemathesis: every operation of the service's own OpenAPI document.

Valid and invalid requests (schemathesis' positive and negative modes, its coverage
phase and the documented examples) go to the real app, lifespan and model included, in
production configuration: client keys and the admin key on. Every answer must pass every
check schemathesis has: a non-5xx whose status, content type, headers and body are the
ones the document declares, valid data accepted and invalid data refused.
``POST /admin/reload`` is fuzzed too: the app serves a private copy of the models, so
reloading (or failing to) changes nothing outside this module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
)

from service.api.app import create_app
from service.config import Settings
from tests.service.conftest import settings_for
from tests.service.helpers import ADMIN_KEY, CRM_KEY, KEYS
from training.job import TrainingResult

# The document does not depend on settings or on a model, so it can be read at collection
# time; the app it is checked against is built below, over a trained model.
DOCUMENT = create_app(Settings(models_dir=Path("unused"))).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def not_applicable(case: schemathesis.Case) -> list[CheckFunction]:
    """The checks that cannot run or cannot hold for this case; it must pass every other.

    ``ignored_auth`` sends requests of its own, which cannot reach an app in process: every
    route without a key and with a wrong one is tested in middleware/test_access.py.
    "A schema-valid request is answered 2xx" (``positive_data_acceptance``) cannot hold
    where JSON Schema cannot state the rule: a CSV body is any string to it, a page cursor
    is opaque text the service handed out, a strict batch fails on an item that the
    loosely declared item schema allows (so that a non-strict batch can answer it with an
    error of its own), and a path parameter holding ``%`` is sent by schemathesis without
    escaping it, so the service reads another value than the one generated.
    "Invalid data is refused" (``negative_data_rejection``) cannot hold for a case made
    invalid in its headers: the only header the document asks for is the client key (its
    security scheme), which every request here carries, valid, in place of the one
    generated (a case whose key was its only invalid part, beside a query parameter the
    service ignores, was answered 200 and reported).
    """
    excluded: list[CheckFunction] = [ignored_auth]
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        excluded.append(negative_data_rejection)
    query = case.query or {}
    cannot_say = (
        case.media_type in ("text/csv", "multipart/form-data")
        or "cursor" in query
        or (case.path == "/segment/batch" and str(query.get("strict")).lower() == "true")
        or any("%" in str(value) for value in (case.path_parameters or {}).values())
    )
    if cannot_say:
        excluded.append(positive_data_acceptance)
    return excluded


V2_OWN = {"400", "404"}
"""Statuses the /v2 routes answer in the protocol's shape, {"error": "..."}."""


@pytest.fixture(scope="module")
def fuzzed_app(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app over a private copy of the trained model, with keys on.

    schemathesis runs its lifespan (model loading included) around each operation's test.
    """
    models = tmp_path_factory.mktemp("fuzzing") / "models"
    shutil.copytree(trained.path.parent, models)
    return create_app(settings_for(models, **KEYS))


def key_for(case: schemathesis.Case) -> dict[str, str]:
    return {"X-API-Key": ADMIN_KEY if case.path.startswith("/admin") else CRM_KEY}


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_matches_the_document_under_fuzzing(
    case: schemathesis.Case, fuzzed_app: FastAPI
) -> None:
    headers = key_for(case)
    response = case.call(app=fuzzed_app, headers=headers)
    # Every check schemathesis has (positive and negative data, status codes, content
    # types, response schemas, Allow headers, authentication...), save the inapplicable.
    case.validate_response(response, headers=headers, excluded_checks=not_applicable(case))


def test_fuzzed_document_is_the_one_the_app_serves(fuzzed_app: FastAPI) -> None:
    assert fuzzed_app.openapi() == DOCUMENT
    assert {"/segment", "/segment/batch", "/admin/reload"} <= set(DOCUMENT["paths"])


def test_every_operation_documents_the_error_shape_for_its_refusals() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("4") or (path.startswith("/v2") and status in V2_OWN):
                    continue  # the Open Inference Protocol's refusals have its own shape
                content = answer["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ErrorResponse"}, (
                    method,
                    path,
                    status,
                )
