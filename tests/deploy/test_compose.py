"""The several-replica stack of docker-compose.yml and its nginx, read as data.

No Docker daemon is needed: the compose file is read with PyYAML and nginx.conf with a
small parser, and each is checked against the other and against the service's own
defaults (the body limit, the request timeout), so that they cannot drift apart quietly.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from service.config import Settings
from tests.deploy.compose_file import (
    COMPOSE_FILE,
    UVICORN_SETTINGS,
    environment,
    load_compose,
    mounts,
    service,
    settings_env_names,
)
from tests.deploy.nginx_config import Directive, parse_nginx, size_in_bytes, time_in_seconds

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"

LONG_RUNNING = ("db", "redis", "api", "proxy")
API_PORT = 8000


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def networks(svc: dict[str, Any]) -> set[str]:
    attached = svc.get("networks") or ["default"]
    return set(attached)


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """Each dependency with its condition (the long syntax is required to carry one)."""
    found = svc.get("depends_on") or {}
    assert isinstance(found, dict), "depends_on needs the long syntax to carry conditions"
    return {name: str((spec or {}).get("condition")) for name, spec in found.items()}


def setting_default(name: str) -> Any:
    return Settings.model_fields[name].default


def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))


def http_block() -> Directive:
    return nginx().child("http")


def api_location() -> Directive:
    """The location that proxies to the replicas."""
    found = [d for d in http_block().walk() if d.name == "location" and d.children("proxy_pass")]
    assert len(found) == 1, f"{len(found)} proxying locations"
    return found[0]


def upstream_block() -> Directive:
    (proxy_pass,) = api_location().child("proxy_pass").args
    match = re.fullmatch(r"http://([A-Za-z0-9_.-]+)", proxy_pass)
    assert match, f"proxy_pass {proxy_pass!r} should name an upstream block (keepalive needs one)"
    upstreams = [u for u in http_block().children("upstream") if u.args == (match.group(1),)]
    assert len(upstreams) == 1, f"no upstream block named {match.group(1)!r}"
    return upstreams[0]


def single_arg(block: Directive, name: str) -> str:
    (value,) = block.child(name).args
    return value


def proxied_headers() -> dict[str, str]:
    return {d.args[0].lower(): d.args[1] for d in api_location().children("proxy_set_header")}


def api_command_port() -> int:
    command = service("api")["command"]
    return int(command[command.index("--port") + 1])


# --------------------------------------------------------------------------- #
# the compose file
# --------------------------------------------------------------------------- #


def test_proxy_publishes_the_port_and_waits_for_a_healthy_api_when_composed() -> None:
    proxy = service("proxy")
    assert re.fullmatch(r"nginx:1\.(2[7-9]|[3-9]\d)[.\d]*-alpine", proxy["image"]), (
        f"{proxy['image']}: `server ... resolve` needs open-source nginx 1.27.3 or later"
    )
    assert [str(port) for port in proxy.get("ports") or []] == [f"{API_PORT}:{API_PORT}"]
    assert depends_on(proxy) == {"api": "service_healthy"}


def test_api_publishes_no_host_port_when_replicated() -> None:
    api = service("api")
    # A fixed host port can be bound by one replica only; clients come through `proxy`.
    assert "ports" not in api, f"api publishes {api['ports']}"
    assert "container_name" not in api, "a fixed container name allows one replica only"
    assert int((api.get("deploy") or {}).get("replicas", 1)) >= 2


def test_api_replicas_serve_with_two_workers_when_started() -> None:
    command = service("api")["command"]
    assert command[:3] == ["python", "-m", "service"], command
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert api_command_port() == API_PORT
    assert int(command[command.index("--workers") + 1]) == 2


def test_api_counts_rate_limits_in_the_redis_service_when_composed() -> None:
    url = urlsplit(environment(service("api")).get("REDIS_URL") or "")
    assert url.scheme == "redis" and url.hostname == "redis" and url.port == 6379, url
    assert service("redis")["image"].startswith("redis:7")
    assert depends_on(service("api")).get("redis") == "service_healthy"


def test_api_stores_in_the_db_service_when_composed() -> None:
    url = urlsplit(environment(service("api")).get("DATABASE_URL") or "")
    assert url.scheme == "postgresql+psycopg" and url.hostname == "db" and url.port == 5432
    assert depends_on(service("api")).get("db") == "service_healthy"


def test_models_volume_is_shared_read_write_by_api_and_train_when_composed() -> None:
    volumes = set(load_compose().get("volumes") or {})
    for name in ("api", "train"):
        svc = service(name)
        assert environment(svc).get("MODELS_DIR") == "/models", name
        (mount,) = [m for m in mounts(svc) if m["target"] == "/models"]
        # One named volume for all replicas: a switch of `latest` is seen by every one.
        assert mount["type"] == "volume" and mount["source"] == "models", (name, mount)
        # The api writes too: /admin/reload and /admin/promote repoint `latest`.
        assert not mount["read_only"], name
        assert mount["source"] in volumes


def test_nginx_config_is_mounted_read_only_into_the_proxy_when_composed() -> None:
    (mount,) = [m for m in mounts(service("proxy")) if m["target"] == "/etc/nginx/nginx.conf"]
    assert mount["type"] == "bind" and mount["read_only"], mount
    assert (COMPOSE_FILE.parent / mount["source"]).resolve() == NGINX_CONF


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_service_has_a_healthcheck_and_restarts_when_composed(name: str) -> None:
    svc = service(name)
    test = (svc.get("healthcheck") or {}).get("test")
    assert isinstance(test, list) and test[0] == "CMD", f"{name}: healthcheck {test!r}"
    assert svc.get("restart") == "unless-stopped"


def test_proxy_healthcheck_goes_through_to_a_replica_when_defined() -> None:
    probe = " ".join(service("proxy")["healthcheck"]["test"][1:])
    assert f"http://127.0.0.1:{API_PORT}/health" in probe, probe


def test_networks_let_only_the_api_reach_the_store_and_redis_when_composed() -> None:
    proxy, api = networks(service("proxy")), networks(service("api"))
    assert proxy & api, "proxy and api share no network"
    for backend in ("db", "redis"):
        attached = networks(service(backend))
        assert attached & api, f"api cannot reach {backend}"
        assert not attached & proxy, f"proxy can reach {backend}"


def test_api_environment_is_read_by_settings_or_uvicorn_when_set() -> None:
    known = settings_env_names() | UVICORN_SETTINGS
    assert "REDIS_URL" in known  # the list really comes from Settings
    unknown = set(environment(service("api"))) - known
    assert not unknown, f"api sets variables nothing reads: {sorted(unknown)}"


def test_api_trusts_forwarded_addresses_only_when_unpublished() -> None:
    # Trusting any peer's X-Forwarded-For is safe only while nothing but the proxy
    # can reach the replicas.
    assert environment(service("api")).get("FORWARDED_ALLOW_IPS") == "*"
    assert "ports" not in service("api")
    assert proxied_headers().get("x-forwarded-for") == "$remote_addr"


# --------------------------------------------------------------------------- #
# nginx.conf
# --------------------------------------------------------------------------- #


def test_nginx_upstream_names_the_api_service_and_its_port_when_parsed() -> None:
    upstream = upstream_block()
    (server,) = upstream.children("server")
    assert server.args[0] == f"api:{api_command_port()}", server.args
    # Re-resolved while running, so that scaled or recreated replicas get traffic.
    assert "resolve" in server.args[1:]
    assert upstream.children("zone"), "`resolve` needs a shared memory zone"
    resolver = http_block().child("resolver").args
    assert resolver[0] == "127.0.0.11", "Docker's embedded DNS knows the replicas"
    assert any(arg.startswith("valid=") for arg in resolver), "re-resolve on a fixed period"


def test_nginx_body_limit_equals_the_service_limit_when_parsed() -> None:
    limit = setting_default("max_body_bytes")
    assert size_in_bytes(single_arg(http_block(), "client_max_body_size")) == limit
    body = _error_bodies()[413]
    assert _error_answer_status(413) == 413
    assert body["error"]["code"] == "body_too_large"
    assert str(limit) in body["error"]["message"]


def test_nginx_keeps_connections_to_replicas_alive_when_parsed() -> None:
    upstream = upstream_block()
    assert int(single_arg(upstream, "keepalive")) > 0
    assert single_arg(api_location(), "proxy_http_version") == "1.1"
    assert proxied_headers().get("connection") == ""
    # nginx must drop an idle connection before uvicorn does, or a request sent just as
    # uvicorn closes it gets a 502.
    uvicorn_idle = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default
    assert time_in_seconds(single_arg(upstream, "keepalive_timeout")) < uvicorn_idle


def test_nginx_forwards_request_id_and_trace_context_when_proxying() -> None:
    headers = proxied_headers()
    assert headers.get("traceparent") == "$http_traceparent"
    assert headers.get("tracestate") == "$http_tracestate"
    request_id = headers.get("x-request-id", "")
    assert request_id.startswith("$"), headers
    # Either the client's header itself or a map that keeps it when the client sent one.
    if request_id != "$http_x_request_id":
        (chosen,) = [m for m in http_block().children("map") if m.args[1] == request_id]
        assert chosen.args[0] == "$http_x_request_id"
        assert {entry.name: entry.args for entry in chosen.block or ()}[""] == ("$request_id",)


def test_nginx_waits_longer_than_the_service_request_timeout_when_proxying() -> None:
    location = api_location()
    service_timeout = setting_default("request_timeout_seconds")
    # The service's own 504 carries the JSON error body; nginx's would come first if shorter.
    assert time_in_seconds(single_arg(location, "proxy_read_timeout")) > service_timeout
    assert time_in_seconds(single_arg(location, "proxy_connect_timeout")) <= 5
    assert time_in_seconds(single_arg(http_block(), "client_header_timeout")) <= (
        setting_default("header_timeout_seconds")
    )


def test_nginx_never_spills_responses_to_disk_when_buffering() -> None:
    location = api_location()
    assert single_arg(location, "proxy_buffering") == "on"
    assert size_in_bytes(single_arg(location, "proxy_max_temp_file_size")) == 0
    count, size = location.child("proxy_buffers").args
    assert int(count) * size_in_bytes(size) <= 4 * 1024**2, "memory held per request"


def test_nginx_error_answers_carry_the_json_error_body_when_parsed() -> None:
    bodies = _error_bodies()
    assert {413, 502, 503, 504} <= set(bodies) | set(_error_pages()), bodies
    for status in _error_pages():
        assert status in bodies, f"error_page {status} has no JSON answer"
    for status, body in bodies.items():
        assert set(body["error"]) == {"code", "message", "details"}, (status, body)
        assert isinstance(body["error"]["details"], list)


def _error_pages() -> dict[int, str]:
    """Status -> the named location that answers it."""
    pages: dict[int, str] = {}
    for page in http_block().walk():
        if page.name == "error_page":
            *statuses, target = page.args
            pages.update({int(status): target for status in statuses})
    return pages


def _error_answer_status(status: int) -> int:
    """The status nginx answers with when it meets ``status`` itself."""
    target = _error_pages()[status]
    (location,) = [d for d in http_block().walk() if d.name == "location" and d.args == (target,)]
    return int(location.child("return").args[0])


def _error_bodies() -> dict[int, Any]:
    """Status -> the parsed JSON that nginx returns for it, via error_page."""
    locations = {d.args[0]: d for d in http_block().walk() if d.name == "location" and d.args}
    bodies: dict[int, Any] = {}
    for status, target in _error_pages().items():
        (answer,) = locations[target].children("return")
        # A 502 may be told as 503 (with Retry-After), but never as a success or as 4xx.
        assert int(answer.args[0]) // 100 == status // 100, f"{target} answers {answer.args}"
        bodies[status] = json.loads(answer.args[1])
    return bodies
