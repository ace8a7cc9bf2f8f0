"""The service's settings: every environment variable it reads, validated once at start-up."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from segmentation.drift import MIN_CUSTOMERS

DEFAULT_DATABASE_URL = "sqlite:///data/segmentation.db"


SUPPORTED_DATABASES = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
SUPPORTED_DRIVERS = frozenset(
    {"sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg"}
)
"""The store runs on SQLite and on PostgreSQL through psycopg 3."""

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})

SECRET_SETTINGS = frozenset(
    {
        "api_keys",
        "admin_api_key",
        "model_signing_key",
        "model_signing_previous_keys",
        "redis_url",  # may carry a password
    }
)
"""Settings whose values are never echoed in an error."""

RESERVED_CLIENT_NAME = "admin"
"""What requests made with ADMIN_API_KEY are recorded as: no client key may take it."""


class Settings(BaseSettings):
    """Environment variables, by their upper-case names (``MODELS_DIR``, ``API_KEYS``...)."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, env_ignore_empty=True
    )

    models_dir: Path = Field(default=Path("models"), description="Where trained versions live.")
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the customer store."
    )
    api_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="Comma-separated client:key pairs; empty leaves the API open.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None, description="Key for /admin/*; unset refuses every admin call."
    )
    model_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 secret that every served manifest must be signed with.",
    )
    model_signing_previous_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated earlier signing keys still accepted while a key is rotated.",
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch_size: int = Field(default=10_000, ge=1)
    batch_threads: int = Field(
        default=2,
        ge=1,
        description="Batches parsed and scored at once in each worker; more wait their turn.",
    )
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    redis_url: str | None = Field(
        default=None,
        description="Redis, where every worker and replica counts the rate limits together; "
        "unset, each process counts its own.",
    )
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    store_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for PostgreSQL on any one round trip or pool checkout.",
    )
    record_wait_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest wait of a live keyed answer for its commit; later, it says "
        "recorded: false.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this many seconds.",
    )
    model_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often each worker checks whether `latest` changed."
    )
    self_test_rows: int = Field(
        default=10_000, ge=1, description="Training rows re-scored before a model is served."
    )
    log_level: str = Field(default="INFO")
    drift_window: int = Field(
        default=10_000,
        ge=MIN_CUSTOMERS,
        le=1_000_000,
        description="Customers in the drift window (fewer than 500 tell nothing).",
    )
    state_dir: Path | None = Field(
        default=None,
        description="Where the workers share what they observed (the drift window); "
        "`python -m service` makes a fresh one per start. Unset: a private one per process.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            client, separator, key = item.partition(":")
            if not separator or not client.strip() or not key.strip():
                raise ValueError(
                    "should be comma-separated client:key pairs, "
                    f"got an entry without a client or a key ({client.strip() or '?'}:...)"
                )
            if client.strip() in pairs:
                raise ValueError(f"names client {client.strip()!r} twice")
            if client.strip() == RESERVED_CLIENT_NAME:
                raise ValueError(
                    f"may not name a client {RESERVED_CLIENT_NAME!r}: the name is the admin "
                    "key's (ADMIN_API_KEY), in the history and in rate limits"
                )
            pairs[client.strip()] = key.strip()
        return pairs

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError(f"is not a database URL: use {SUPPORTED_DATABASES}") from None
        if driver not in SUPPORTED_DRIVERS:
            raise ValueError(f"{driver!r} databases are not supported: use {SUPPORTED_DATABASES}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_address(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError("should be a Redis URL: redis://HOST:PORT/DB, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("should be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("model_signing_previous_keys", mode="before")
    @classmethod
    def _parse_previous_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """Every key a manifest may be signed with; empty when signing is off."""
        if self.model_signing_key is None:
            return ()
        current = self.model_signing_key.get_secret_value()
        return (current, *(key.get_secret_value() for key in self.model_signing_previous_keys))


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting: the variable, its value (unless secret) and the rule."""
    lines = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else "settings"
        rule = problem["msg"].removeprefix("Value error, ")
        shown = "" if name in SECRET_SETTINGS else f"={problem.get('input')!r}"
        lines.append(f"{name.upper()}{shown}: {rule}")
    return lines


def settings_for_command() -> Settings:
    """The settings, for a command: invalid ones end it with one line each on stderr and
    exit status 2 (a traceback tells an operator nothing they can act on)."""
    try:
        return get_settings()
    except ValidationError as error:
        for line in settings_problems(error):
            sys.stderr.write(f"error: {line}\n")
        raise SystemExit(2) from None
