"""The Open Inference Protocol (KServe V2): metadata, health and inference over HTTP, the
bank's export scored as tensors exactly as the batch route scores it, the protocol's error
shape, and a real V2 client library (Triton's) against a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from segmentation.features import FEATURES
from tests.service.api.test_scoring_routes import as_customers
from tests.service.processes import service_process, wait_for_log

SEGMENTS = ["branch-loyal", "support-seeking", "digital-affluent"]


def tensors(customers: list[dict[str, Any]], datatype: str = "FP64") -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(customers)],
            "datatype": datatype,
            "data": [customer[name] for customer in customers],
        }
        for name in FEATURES
    ]


async def test_metadata_and_health_describe_the_model(client: httpx.AsyncClient) -> None:
    version = (await client.get("/model")).json()["model_version"]
    server = (await client.get("/v2")).json()
    assert server == {"name": "customer-segmentation", "version": version, "extensions": []}
    assert (await client.get("/v2/health/live")).status_code == 200
    assert (await client.get("/v2/health/ready")).status_code == 200
    metadata = (await client.get("/v2/models/segmentation")).json()
    assert metadata["name"] == "segmentation" and metadata["versions"] == [version]
    assert [tensor["name"] for tensor in metadata["inputs"]] == list(FEATURES)
    assert {tensor["name"]: tensor["shape"] for tensor in metadata["outputs"]} == {
        "segment_id": [-1],
        "confidence": [-1],
        "distances": [-1, 3],
    }
    assert metadata["parameters"]["segment_ids"] == SEGMENTS
    assert (await client.get(f"/v2/models/segmentation/versions/{version}")).json() == metadata
    assert (await client.get("/v2/models/segmentation/ready")).status_code == 200


async def test_the_bank_export_as_tensors_gets_the_batch_routes_answers(
    client: httpx.AsyncClient, training_assignments: pd.DataFrame
) -> None:
    customers = as_customers(training_assignments)
    batch = (await client.post("/segment/batch", json={"customers": customers})).json()
    inferred = await client.post(
        "/v2/models/segmentation/infer", json={"id": "bank", "inputs": tensors(customers)}
    )
    assert inferred.status_code == 200
    answer = inferred.json()
    assert answer["model_name"] == "segmentation" and answer["id"] == "bank"
    outputs = {output["name"]: output for output in answer["outputs"]}
    results = batch["results"]
    assert outputs["segment_id"]["datatype"] == "BYTES"
    assert outputs["segment_id"]["data"] == [result["segment_id"] for result in results]
    assert outputs["confidence"]["data"] == [result["confidence"] for result in results]
    assert outputs["distances"]["shape"] == [len(customers), 3]
    expected = [[result["distances"][segment] for segment in SEGMENTS] for result in results]
    assert np.array(outputs["distances"]["data"]).reshape(-1, 3).tolist() == expected
    # Integer tensors and [n, 1] shapes, and only the outputs asked for.
    column = [{**tensor, "shape": [len(customers), 1], "datatype": "INT64",
               "data": [[int(value)] for value in tensor["data"]]}
              for tensor in tensors(customers)]  # fmt: skip
    only = await client.post(
        "/v2/models/segmentation/infer",
        json={"inputs": column, "outputs": [{"name": "segment_id"}]},
    )
    assert [output["name"] for output in only.json()["outputs"]] == ["segment_id"]
    assert only.json()["outputs"][0]["data"] == outputs["segment_id"]["data"]


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/v2/models/other/infer", {"inputs": []}, 404, "no model 'other'"),
        ("/v2/models/segmentation/versions/v0/infer", {"inputs": []}, 404, "is not served"),
        ("/v2/models/segmentation/infer", {"inputs": "x"}, 400, '"inputs"'),
        (
            "/v2/models/segmentation/infer",
            {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64", "data": [1]}]},
            400,
            "unknown input 'income'",
        ),
        (
            "/v2/models/segmentation/infer",
            {"inputs": tensors([{name: 1 for name in FEATURES}], "BYTES")},
            400,
            "is not a number type",
        ),
        (
            "/v2/models/segmentation/infer",
            {"inputs": tensors([{name: 1 for name in FEATURES}])[:4]},
            400,
            "missing inputs: total_calls_made",
        ),
        (
            "/v2/models/segmentation/infer",
            {"inputs": tensors([{**{name: 1 for name in FEATURES}, "total_credit_cards": 2.5}])},
            400,
            "total_credit_cards",
        ),
    ],
)
async def test_refusals_come_in_the_protocols_error_shape(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, says: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status
    assert list(response.json()) == ["error"] and says in response.json()["error"]


def test_a_triton_client_calls_the_running_service(
    models_dir: Path, tmp_path: Path, training_assignments: pd.DataFrame
) -> None:
    # Imported here: the client brings gevent, which nothing else in the tests needs.
    import tritonclient.http as httpclient

    customers = as_customers(training_assignments)[:50]
    with service_process(models_dir, tmp_path, workers=1) as (process, port, log):
        wait_for_log(process, log, "Application startup complete.", 1)
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("segmentation")
        metadata = client.get_model_metadata("segmentation")
        assert [tensor["name"] for tensor in metadata["inputs"]] == list(FEATURES)
        inputs = []
        for name in FEATURES:
            tensor = httpclient.InferInput(name, [len(customers)], "FP64")
            values = np.array([customer[name] for customer in customers], dtype=np.float64)
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        outputs = [
            httpclient.InferRequestedOutput(name, binary_data=False)
            for name in ("segment_id", "confidence", "distances")
        ]
        result = client.infer("segmentation", inputs, outputs=outputs)
        segments = [value.decode() if isinstance(value, bytes) else value
                    for value in result.as_numpy("segment_id").tolist()]  # fmt: skip
        assert segments == list(training_assignments["segment_id"][:50])
        assert result.as_numpy("distances").shape == (50, 3)
        assert (result.as_numpy("confidence") >= 0).all()


# What the published REST specification (open_inference_rest.yaml of
# kserve/open-inference-protocol) requires of each answer, field by field and type by type.
SERVER_METADATA = {"name": str, "version": str, "extensions": list}
MODEL_METADATA = {"name": str, "platform": str}
METADATA_TENSOR = {"name": str, "datatype": str, "shape": list}
INFERENCE_RESPONSE = {"model_name": str, "outputs": list}
RESPONSE_OUTPUT = {"name": str, "shape": list, "datatype": str, "data": list}
ERROR = {"error": str}


def conforms(document: dict[str, Any], required: dict[str, type]) -> bool:
    return all(isinstance(document.get(name), kind) for name, kind in required.items())


async def test_every_answer_has_what_the_published_specification_requires(
    client: httpx.AsyncClient,
) -> None:
    assert conforms((await client.get("/v2")).json(), SERVER_METADATA)
    metadata = (await client.get("/v2/models/segmentation")).json()
    assert conforms(metadata, MODEL_METADATA)
    assert all(conforms(t, METADATA_TENSOR) for t in metadata["inputs"] + metadata["outputs"])
    customers = [{name: 1 for name in FEATURES}]
    answer = (
        await client.post("/v2/models/segmentation/infer", json={"inputs": tensors(customers)})
    ).json()
    assert conforms(answer, INFERENCE_RESPONSE)
    assert all(conforms(output, RESPONSE_OUTPUT) for output in answer["outputs"])
    for shape in [output["shape"] for output in answer["outputs"]]:
        assert all(isinstance(size, int) for size in shape)
    refused = await client.post("/v2/models/segmentation/infer", json={"inputs": 1})
    assert conforms(refused.json(), ERROR)
