"""docker-compose.yml read as data (no Docker daemon): its services, their environment and
mounts, and the names the service's settings read, for the tests that check the stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from service.config import Settings

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
UVICORN_SETTINGS = frozenset({"FORWARDED_ALLOW_IPS"})
"""Variables the api container sets for uvicorn itself rather than for the service."""


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


def service(name: str) -> dict[str, Any]:
    services = load_compose().get("services") or {}
    assert name in services, f"service {name!r} missing from docker-compose.yml"
    found = services[name]
    assert isinstance(found, dict)
    return found


def environment(svc: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment in either Compose syntax (mapping or NAME=value list)."""
    env = svc.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    pairs = (str(item).partition("=") for item in env)
    return {name: value if sep else None for name, sep, value in pairs}


def mounts(svc: dict[str, Any]) -> list[dict[str, Any]]:
    """Mounts in the long syntax: type, source, target, read_only."""
    result = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            result.append({"read_only": False, **entry})
            continue
        source, target, *modes = str(entry).split(":")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        read_only = bool(modes) and "ro" in modes[0].split(",")
        result.append({"type": kind, "source": source, "target": target, "read_only": read_only})
    return result


def settings_env_names() -> set[str]:
    """Every environment variable Settings reads."""
    prefix = str(Settings.model_config.get("env_prefix") or "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}
