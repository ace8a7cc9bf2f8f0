"""The Open Inference Protocol (KServe V2): ``/v2`` metadata, health, and inference.

Thin routes over :mod:`service.scoring.inference_protocol`. Errors of the protocol's own
(an unknown model, a malformed request, an invalid customer) are answered in its shape,
``{"error": "message"}``; keys, limits and timeouts answer as everywhere in the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from service.api.batch_threads import BatchThreads
from service.api.deps import BatchThreadsDep, HolderDep, ServingDep
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import errors
from service.errors import InvalidInput
from service.models.active_model import ActiveModel
from service.scoring.inference_protocol import (
    MODEL_NAME,
    ProtocolError,
    infer,
    invalid_customers,
    model_metadata,
    server_metadata,
)

router = APIRouter(prefix="/v2", tags=["inference protocol (KServe V2)"])

ModelName = Annotated[str, Path(description=f"The model's name: {MODEL_NAME}.")]
Version = Annotated[str, Path(description="The active model version.")]


class ProtocolErrorBody(BaseModel):
    error: str


class Tensor(BaseModel):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[Tensor]


_REFUSALS: dict[int | str, dict[str, Any]] = {
    **errors(422),  # a request the framework itself refuses, in the service's shape
    400: {"model": ProtocolErrorBody},
    404: {"model": ProtocolErrorBody},
}


@router.get("", responses={503: {"model": ProtocolErrorBody}})
async def read_server_metadata(holder: HolderDep) -> Response:
    """The server's name and version (the active model's), and the extensions it has."""
    serving = holder.serving
    return JSONBytesResponse(server_metadata(serving.model.version if serving else "none"))


@router.get("/health/live")
async def read_server_live() -> Response:
    """The process is alive."""
    return JSONBytesResponse({"live": True})


@router.get("/health/ready", responses={503: {"model": ProtocolErrorBody}})
async def read_server_ready(holder: HolderDep) -> Response:
    """A model is loaded and answering."""
    if holder.serving is None:
        return _error(503, f"no model is loaded: {holder.failure}")
    return JSONBytesResponse({"ready": True})


@router.get("/models/{name}", responses=_REFUSALS)
async def read_model_metadata(name: ModelName, serving: ServingDep) -> Response:
    """The model's inputs and outputs as tensors, and its version."""
    return _answer(name, None, serving.model, model_metadata)


@router.get("/models/{name}/versions/{version}", responses=_REFUSALS)
async def read_model_version_metadata(
    name: ModelName, version: Version, serving: ServingDep
) -> Response:
    """The same, for the active version only."""
    return _answer(name, version, serving.model, model_metadata)


@router.get("/models/{name}/ready", responses=_REFUSALS)
async def read_model_ready(name: ModelName, serving: ServingDep) -> Response:
    """The model is loaded (an unloaded one answers 503, as every route does)."""
    return _answer(name, None, serving.model, lambda model: {"name": MODEL_NAME, "ready": True})


_INFER_BODY = {
    "requestBody": {
        "required": True,
        # Read by the route itself, to answer in the protocol's error shape.
        "content": {"application/json": {"schema": InferenceRequest.model_json_schema()}},
    }
}


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=_REFUSALS,
    openapi_extra=_INFER_BODY,
)
async def infer_model(
    name: ModelName, request: Request, serving: ServingDep, threads: BatchThreadsDep
) -> Response:
    """Segments of the customers given as five feature tensors: ``segment_id``,
    ``confidence`` and ``distances`` (``[n, k]``, in the metadata's ``segment_ids`` order)."""
    return await _infer(name, None, request, serving.model, threads)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=_REFUSALS,
    openapi_extra=_INFER_BODY,
)
async def infer_model_version(
    name: ModelName,
    version: Version,
    request: Request,
    serving: ServingDep,
    threads: BatchThreadsDep,
) -> Response:
    """The same, for the active version only."""
    return await _infer(name, version, request, serving.model, threads)


async def _infer(
    name: str, version: str | None, request: Request, model: ActiveModel, threads: BatchThreads
) -> Response:
    refusal = _unknown(name, version, model)
    if refusal is not None:
        return refusal
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return _error(400, f"the request body is not valid JSON: {error}")
    try:
        answer = await threads.run(infer, model, document)
    except ProtocolError as error:
        return _error(400, str(error))
    except InvalidInput as error:
        return _error(400, invalid_customers(error))
    return JSONBytesResponse(answer)


def _answer(
    name: str,
    version: str | None,
    model: ActiveModel,
    build: Callable[[ActiveModel], dict[str, Any]],
) -> Response:
    refusal = _unknown(name, version, model)
    return refusal if refusal is not None else JSONBytesResponse(build(model))


def _unknown(name: str, version: str | None, model: ActiveModel) -> Response | None:
    if name != MODEL_NAME:
        return _error(404, f"no model {name!r}: this server has {MODEL_NAME!r}")
    if version is not None and version != model.version:
        return _error(404, f"version {version!r} is not served; the active one is {model.version}")
    return None


def _error(status: int, message: str) -> Response:
    return Response(
        orjson.dumps({"error": message}), status_code=status, media_type="application/json"
    )
