"""What the API document says is what the service accepts: unknown query parameters, key
integers past 64 bits, nulls where a field may only be left out, and a 405 that lists every
method of its path."""

from __future__ import annotations

import httpx
import pytest

from tests.service.helpers import customer


@pytest.mark.parametrize(
    "path",
    ["/segments?limt=10", "/segments/branch-loyal/customers?fromat=csv", "/drift?x=1"],
)
async def test_a_query_parameter_the_route_does_not_take_is_refused_by_name(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    (item,) = response.json()["error"]["details"]
    assert item["rule"] == "unknown_parameter"
    assert item["field"] == path.split("?")[1].split("=")[0]
    known = await client.get(
        path.split("?")[0] + "?" if "customers" not in path else path.split("?")[0] + "?format=csv"
    )
    assert known.status_code == 200


async def test_integer_keys_must_fit_in_64_bits_and_integral_numbers_are_integers(
    client: httpx.AsyncClient,
) -> None:
    too_big = await client.post("/segment", json=customer(customer_key=2**63))
    assert too_big.status_code == 422
    assert too_big.json()["error"]["details"][0]["rule"] == "customer_key_range"
    largest = await client.post("/segment", json=customer(customer_key=2**63 - 1))
    assert largest.json()["customer_key"] == str(2**63 - 1)
    as_float = await client.post("/segment", json=customer(customer_key=1e3))
    assert as_float.json()["customer_key"] == "1000"


async def test_a_move_request_may_leave_features_out_but_not_send_null(
    client: httpx.AsyncClient,
) -> None:
    null = await client.post(
        "/segment/moves", json={"customer_key": "38414", "total_calls_made": None}
    )
    assert null.status_code == 422
    (item,) = null.json()["error"]["details"]
    assert item["rule"] == "null_feature"
    assert item["message"] == "total_calls_made may be left out, not null"


async def test_a_method_not_allowed_lists_every_method_of_the_path(
    client: httpx.AsyncClient,
) -> None:
    response = await client.request("PUT", "/segments")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    live = await client.request("PUT", "/segment")
    assert live.status_code == 405 and live.headers["allow"] == "POST"
