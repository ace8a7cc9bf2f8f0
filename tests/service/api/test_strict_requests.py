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


async def test_the_live_call_refuses_a_query_parameter_as_every_route_does(
    client: httpx.AsyncClient,
) -> None:
    """``POST /segment`` is answered ahead of FastAPI's dependencies (routes.live_path)."""
    refused = await client.post("/segment?x=1&verbose=", json=customer())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert [item["field"] for item in error["details"]] == ["verbose", "x"]
    assert {item["rule"] for item in error["details"]} == {"unknown_parameter"}
    assert "this route takes: none" in error["message"]
    assert (await client.post("/segment?", json=customer())).status_code == 200


@pytest.mark.parametrize("path", ["/segment", "/segment/batch"])
async def test_integer_keys_must_be_safe_integers_and_integral_numbers_are_integers(
    client: httpx.AsyncClient, path: str
) -> None:
    def sent(key: object) -> dict[str, object]:
        one = customer(customer_key=key)
        return one if path == "/segment" else {"customers": [one]}

    def answer(response: httpx.Response) -> dict[str, object]:
        body = response.json()
        return body if path == "/segment" else body["results"][0]  # type: ignore[no-any-return]

    too_big = await client.post(path, json=sent(2**53))
    refusal = too_big.json()["error"] if path == "/segment" else answer(too_big)["error"]
    assert refusal["details"][0]["rule"] == "customer_key_range"  # type: ignore[index]
    largest = await client.post(path, json=sent(2**53 - 1))
    assert answer(largest)["customer_key"] == str(2**53 - 1)
    as_float = await client.post(path, json=sent(1e3))
    assert answer(as_float)["customer_key"] == "1000"


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
