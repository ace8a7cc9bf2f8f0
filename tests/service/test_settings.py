"""Every setting with a rule refuses a bad value with one line naming the variable and the
rule; the commands exit non-zero with those lines and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings, settings_problems

ROOT = Path(__file__).resolve().parents[2]

BAD_VALUES: dict[str, tuple[str, str]] = {
    "database_url": ("mysql://x", "'mysql' databases are not supported"),
    "api_keys": ("crm", "client:key pairs"),
    "model_signing_previous_keys": ("", ""),  # any text: a list of keys
    "max_body_bytes": ("abc", "valid integer"),
    "max_batch_size": ("0", "greater than or equal to 1"),
    "batch_threads": ("0", "greater than or equal to 1"),
    "rate_limit_per_minute": ("-5", "greater than or equal to 1"),
    "redis_url": ("http://cache:6379", "should be a Redis URL"),
    "request_timeout_seconds": ("soon", "valid number"),
    "store_timeout_seconds": ("0", "greater than 0"),
    "record_wait_seconds": ("-1", "greater than 0"),
    "header_timeout_seconds": ("nan", "greater than 0"),
    "model_poll_seconds": ("0", "greater than 0"),
    "self_test_rows": ("1.5", "valid integer"),
    "log_level": ("loud", "should be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    "drift_window": ("10", "greater than or equal to 500"),
}
ANY_TEXT = {"models_dir", "admin_api_key", "model_signing_key", "state_dir"}
"""Settings that take any text (a path or a secret): nothing to refuse when read."""


def test_every_setting_is_covered_here() -> None:
    assert set(Settings.model_fields) == set(BAD_VALUES) | ANY_TEXT


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [(name, value, rule) for name, (value, rule) in BAD_VALUES.items() if rule],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_the_rule(
    name: str, value: str, rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    (line,) = settings_problems(raised.value)
    assert line.startswith(f"{name.upper()}")
    assert rule in line


def test_database_urls_the_store_runs_on_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("sqlite:///data/x.db", "postgresql://u@h:5432/d", "postgresql+psycopg://h/d"):
        monkeypatch.setenv("DATABASE_URL", url)
        assert Settings().database_url == url
    monkeypatch.setenv("DATABASE_URL", "not a url")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert settings_problems(raised.value) == [
        "DATABASE_URL='not a url': is not a database URL: use sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    ]


def test_secret_settings_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "crm:s3cret-key,crm:other-secret")
    with pytest.raises(ValidationError) as raised:
        Settings()
    (line,) = settings_problems(raised.value)
    assert line.startswith("API_KEYS: ") and "secret" not in line


@pytest.mark.parametrize(
    "command",
    [["service"], ["service.store"], ["service.score_file", "x.csv", "--out", "y.csv"]],
)
def test_commands_exit_non_zero_with_one_line_per_bad_setting(command: list[str]) -> None:
    environment = {**os.environ, "MAX_BATCH_SIZE": "abc", "DATABASE_URL": "mysql://x"}
    completed = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "error: DATABASE_URL='mysql://x': 'mysql' databases are not supported: use "
        "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        "error: MAX_BATCH_SIZE='abc': Input should be a valid integer, unable to parse string "
        "as an integer",
    ]
