"""The Open Inference Protocol (KServe V2) over the segmentation model.

Serving platforms (KServe, Seldon, Triton's clients) speak this protocol: a request carries
named tensors, an answer names its output tensors. Here the inputs are the five features,
each a tensor of shape ``[n]`` (or ``[n, 1]``), and the outputs are ``segment_id`` (BYTES,
``[n]``), ``confidence`` (FP64, ``[n]``) and ``distances`` (FP64, ``[n, k]``, in the
order of ``segment_ids`` in the model's metadata). The customers are validated as a strict
batch: the protocol has no per-item errors, so one invalid customer refuses the request.
Nothing is recorded in the store (tensors carry no customer keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segmentation.features import FEATURES
from service.errors import InvalidInput
from service.models.active_model import ActiveModel, rounded
from service.scoring.batch_scoring import reject_invalid_items
from service.scoring.customer_input import validate_items

MODEL_NAME = "segmentation"
"""The model's name in the protocol's paths (``/v2/models/segmentation/...``)."""

INPUT_DATATYPES = frozenset({"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8",
                             "UINT64", "UINT32", "UINT16", "UINT8"})  # fmt: skip
OUTPUTS = ("segment_id", "confidence", "distances")


class ProtocolError(Exception):
    """A request the protocol refuses; answered as ``{"error": message}``."""


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "customer-segmentation", "version": version, "extensions": []}


def model_metadata(model: ActiveModel) -> dict[str, Any]:
    """What the model takes and gives, as the protocol describes tensors."""
    k = len(model.segment_ids)
    return {
        "name": MODEL_NAME,
        "versions": [model.version],
        "platform": "scikit-learn_kmeans",
        "inputs": [{"name": name, "datatype": "FP64", "shape": [-1]} for name in FEATURES],
        "outputs": [
            {"name": "segment_id", "datatype": "BYTES", "shape": [-1]},
            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
            {"name": "distances", "datatype": "FP64", "shape": [-1, k]},
        ],
        "parameters": {"segment_ids": list(model.segment_ids)},
    }


def infer(model: ActiveModel, request: Any) -> dict[str, Any]:
    """The answer to an inference request (a parsed JSON document).

    Raises
    ------
    ProtocolError
        The request is not one the protocol allows, or not the model's inputs.
    InvalidInput
        A customer is invalid (the message names the customer and the field).
    """
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise ProtocolError('an inference request is an object with a list of "inputs"')
    if "id" in request and not isinstance(request["id"], str):
        raise ProtocolError('"id" must be a string')
    _check_parameters(request, "the request")
    columns = _input_columns(request["inputs"])
    size = len(columns[FEATURES[0]])
    items = [{name: columns[name][row] for name in FEATURES} for row in range(size)]
    batch = validate_items(items, by_key=False)
    reject_invalid_items(batch)
    scored = model.scorer.score(batch.features)
    wanted = _wanted_outputs(request.get("outputs"))
    distances = rounded(scored.distances)
    tensors = {
        "segment_id": {
            "datatype": "BYTES",
            "shape": [size],
            "data": model.segment_ids_of(scored.labels),
        },
        "confidence": {
            "datatype": "FP64",
            "shape": [size],
            "data": rounded(scored.confidence).tolist(),
        },
        "distances": {
            "datatype": "FP64",
            "shape": [size, distances.shape[1]],
            "data": distances.ravel().tolist(),
        },
    }
    answer: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": model.version,
        "outputs": [{"name": name, **tensors[name]} for name in wanted],
    }
    if "id" in request:
        answer["id"] = str(request["id"])
    return answer


def _input_columns(inputs: Sequence[Any]) -> dict[str, list[Any]]:
    """Each feature's values, from the request's input tensors."""
    columns: dict[str, list[Any]] = {}
    for tensor in inputs:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise ProtocolError('every input is an object with a "name"')
        name = tensor["name"]
        _check_parameters(tensor, f"input {name!r}")
        if name not in FEATURES:
            raise ProtocolError(f"unknown input {name!r}; the inputs are {', '.join(FEATURES)}")
        if name in columns:
            raise ProtocolError(f"input {name!r} is given twice")
        if tensor.get("datatype") not in INPUT_DATATYPES:
            raise ProtocolError(
                f"input {name!r}: datatype {tensor.get('datatype')!r} is not a number type"
            )
        columns[name] = _values(name, tensor)
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        raise ProtocolError(f"missing inputs: {', '.join(missing)}")
    sizes = {len(values) for values in columns.values()}
    if len(sizes) != 1:
        raise ProtocolError("the inputs do not hold the same number of customers")
    return columns


def _values(name: str, tensor: dict[str, Any]) -> list[Any]:
    shape, data = tensor.get("shape"), tensor.get("data")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ProtocolError(f"input {name!r}: shape must be a list of sizes")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise ProtocolError(f"input {name!r}: shape must be [n] or [n, 1], not {shape}")
    if not isinstance(data, list):
        raise ProtocolError(f"input {name!r}: data must be a list")
    flat = [value for row in data for value in row] if data and isinstance(data[0], list) else data
    if len(flat) != shape[0]:
        raise ProtocolError(f"input {name!r}: {len(flat)} values for shape {shape}")
    return flat


def _wanted_outputs(requested: Any) -> list[str]:
    if requested is None:
        return list(OUTPUTS)
    if not isinstance(requested, list):
        raise ProtocolError('"outputs" must be a list')
    for item in requested:
        if isinstance(item, dict):
            _check_parameters(item, "an output")
    names = [item.get("name") if isinstance(item, dict) else None for item in requested]
    unknown = [name for name in names if name not in OUTPUTS]
    if unknown:
        raise ProtocolError(f"unknown outputs {unknown}; the outputs are {', '.join(OUTPUTS)}")
    return [str(name) for name in names]


def _check_parameters(part: dict[str, Any], where: str) -> None:
    if "parameters" in part and not isinstance(part["parameters"], dict):
        raise ProtocolError(f"{where}: parameters must be an object")


def invalid_customers(error: InvalidInput) -> str:
    """A refused batch's message, with the first problems, as one line."""
    problems = "; ".join(f"{item['field']}: {item['message']}" for item in error.details[:5])
    return f"{error.message}: {problems}" if problems else error.message
