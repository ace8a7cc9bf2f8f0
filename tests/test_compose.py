"""Structure of the container definitions: docker-compose.yml, Dockerfile, .dockerignore.

Docker does not run in CI, so these read the files as data: the compose file with
PyYAML, the Dockerfile as a list of instructions. The environment-variable check
takes its list of names from the service's own Settings, so a variable that the
service stopped reading (or never read) fails here instead of being silently ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose_file import (
    UVICORN_SETTINGS,
    environment,
    load_compose,
    service,
    settings_env_names,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = ("api", "train")


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def volume_mounts(svc: dict[str, Any]) -> list[dict[str, Any]]:
    """Mounts normalised to the long syntax: {type, source, target, read_only}."""
    mounts: list[dict[str, Any]] = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append(
                {
                    "type": entry.get("type", "volume"),
                    "source": entry.get("source"),
                    "target": entry.get("target"),
                    "read_only": bool(entry.get("read_only", False)),
                }
            )
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:  # anonymous volume: just a container path
            mounts.append(
                {"type": "volume", "source": None, "target": parts[0], "read_only": False}
            )
            continue
        source, target = parts[0], parts[1]
        modes = parts[2].split(",") if len(parts) > 2 else []
        is_path = source.startswith((".", "/", "~", "$"))
        mounts.append(
            {
                "type": "bind" if is_path else "volume",
                "source": source,
                "target": target,
                "read_only": "ro" in modes,
            }
        )
    return mounts


def healthcheck_command(svc: dict[str, Any]) -> str:
    test = (svc.get("healthcheck") or {}).get("test")
    assert test, "no healthcheck test"
    if isinstance(test, str):
        return test
    assert test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test must start with CMD: {test}"
    return " ".join(str(part) for part in test[1:])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD/HEALTHCHECK CMD; fails on the shell form."""
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)
    return parsed


# --------------------------------------------------------------------------- #
# docker-compose.yml
# --------------------------------------------------------------------------- #


def test_compose_declares_its_services_when_loaded() -> None:
    compose = load_compose()
    assert "version" not in compose, "the Compose spec has no top-level version key"
    assert set(compose.get("services") or {}) == {"db", "redis", "train", "api", "proxy"}
    assert service("db")["image"].startswith("postgres:16")


def test_app_services_share_one_image_when_built() -> None:
    train, api = service("train"), service("api")
    assert train.get("build") and api.get("build"), "train and api must build the project image"
    assert train.get("image") == api.get("image"), "train and api must run the same image"


def test_train_runs_once_when_stack_starts() -> None:
    train = service("train")
    # YAML 1.1 reads a bare `no` as False, which Compose rejects: it must be the string.
    assert train.get("restart") == "no"
    assert train.get("command") == ["python", "-m", "training", "--models-dir", "/models"]
    assert "healthcheck" not in train and "ports" not in train


def test_train_writes_models_volume_when_run() -> None:
    train = service("train")
    command = train["command"]
    models_dir = command[command.index("--models-dir") + 1]
    mounts = [m for m in volume_mounts(train) if m["target"] == models_dir]
    assert mounts, f"nothing mounted at {models_dir}, the trained model would be lost"
    (mount,) = mounts
    assert mount["type"] == "volume" and mount["source"] == "models"
    assert not mount["read_only"]


def test_api_reads_models_volume_read_write_when_serving() -> None:
    api = service("api")
    models_dir = environment(api).get("MODELS_DIR")
    assert models_dir == "/models"
    (mount,) = [m for m in volume_mounts(api) if m["target"] == models_dir]
    assert mount["source"] == "models", "api must read the volume that train writes"
    # POST /admin/reload repoints `latest` inside the volume.
    assert not mount["read_only"]


def test_api_starts_after_training_succeeds_and_db_is_healthy_when_depending() -> None:
    depends_on = service("api").get("depends_on")
    assert isinstance(depends_on, dict), "depends_on needs the long syntax to carry conditions"
    assert depends_on.get("train", {}).get("condition") == "service_completed_successfully"
    assert depends_on.get("db", {}).get("condition") == "service_healthy"


def test_db_healthcheck_runs_pg_isready_when_defined() -> None:
    assert "pg_isready" in healthcheck_command(service("db"))


def test_api_healthcheck_probes_ready_when_defined() -> None:
    command = healthcheck_command(service("api"))
    assert re.search(r"/ready\b", command), command
    assert "curl" not in command and "wget" not in command, "slim images have neither"


def test_api_stops_gracefully_when_running() -> None:
    api = service("api")  # reached through the proxy only (tests/deploy checks the ports)
    assert api.get("restart") == "unless-stopped"
    assert api.get("stop_grace_period") == "30s"


def test_named_volumes_are_declared_when_used() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    used = {
        mount["source"]
        for svc in (compose.get("services") or {}).values()
        for mount in volume_mounts(svc)
        if mount["type"] == "volume" and mount["source"]
    }
    assert {"models", "db-data"} <= used
    assert used <= declared, f"used but not declared: {sorted(used - declared)}"


def test_db_keeps_its_data_in_named_volume_when_restarted() -> None:
    mounts = volume_mounts(service("db"))
    assert any(
        m["source"] == "db-data" and m["target"] == "/var/lib/postgresql/data" for m in mounts
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_is_read_by_settings_when_set(name: str) -> None:
    known = settings_env_names()
    assert "MODELS_DIR" in known  # the list really comes from Settings
    unknown = set(environment(service(name))) - known - UVICORN_SETTINGS
    assert not unknown, f"{name} sets variables the service never reads: {sorted(unknown)}"


def test_api_database_url_points_at_db_service_when_composed() -> None:
    url = environment(service("api")).get("DATABASE_URL") or ""
    assert url.startswith("postgresql+psycopg://"), url
    assert "@db:5432/segmentation" in url


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("api", "API_KEYS"),
        ("api", "ADMIN_API_KEY"),
        ("api", "MODEL_SIGNING_KEY"),
        ("train", "MODEL_SIGNING_KEY"),
    ],
)
def test_secret_stays_unset_when_host_does_not_set_it(name: str, variable: str) -> None:
    # `NAME:` (pass-through) leaves the variable unset in the container when the host
    # has none; `${NAME:-}` would set it to "", which Settings reads as an empty
    # secret (e.g. signing with the empty key) rather than as "unset".
    env = environment(service(name))
    assert variable in env, f"{name} does not receive {variable}"
    assert env[variable] is None, f"{name}: {variable}={env[variable]!r} is not a pass-through"


# --------------------------------------------------------------------------- #
# Dockerfile
# --------------------------------------------------------------------------- #


def test_dockerfile_builds_in_two_stages_from_slim_when_parsed() -> None:
    froms = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "builder and runtime stages expected"
    assert all(args.split()[0] == "python:3.11-slim" for args in froms), froms


def test_builder_installs_project_non_editable_when_built() -> None:
    instructions = dockerfile_instructions()
    runs = " && ".join(args for keyword, args in instructions if keyword == "RUN")
    assert re.search(r"pip install (?:\S+ )*\.(?:\s|$)", runs), runs
    assert not re.search(r"pip install[^&]*(?:\s-e\s|--editable)", runs)


def test_final_stage_copies_only_the_venv_when_built() -> None:
    copies = [args for keyword, args in final_stage() if keyword in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/venv /opt/venv"], copies


def test_final_stage_runs_as_non_root_user_when_started() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "final stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    runs = " ".join(args for keyword, args in final_stage() if keyword == "RUN")
    assert re.search(rf"useradd\b.*--uid 10001\b.*\b{re.escape(user)}\b", runs), runs


def test_final_stage_healthcheck_probes_health_when_running() -> None:
    healthchecks = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    _, _, command = healthchecks[0].partition("CMD ")
    probe = " ".join(exec_form(command))
    assert re.search(r"/health\b", probe), probe
    assert "urllib" in probe and "curl" not in probe


def test_final_stage_installs_no_build_tools_when_built() -> None:
    runs = " ".join(args for keyword, args in final_stage() if keyword == "RUN")
    for forbidden in ("apt-get install", "apt install", "gcc", "build-essential", "pip install"):
        assert forbidden not in runs, f"final stage runs {forbidden!r}"


def test_final_stage_cmd_runs_service_when_started() -> None:
    cmds = [args for keyword, args in final_stage() if keyword == "CMD"]
    assert cmds, "final stage has no CMD"
    cmd = exec_form(cmds[-1])
    assert cmd[:3] == ["python", "-m", "service"], cmd
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == "8000"


def test_final_stage_env_points_at_models_volume_when_started() -> None:
    env = " ".join(args for keyword, args in final_stage() if keyword == "ENV")
    assert "MODELS_DIR=/models" in env
    assert re.search(r"PATH=/opt/venv/bin:", env)
    exposed = [args for keyword, args in final_stage() if keyword == "EXPOSE"]
    assert exposed == ["8000"]


def test_dockerignore_keeps_tests_and_local_state_out_when_building() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", "tests", "models/*", "data"):
        assert required in patterns, f".dockerignore does not exclude {required}"
