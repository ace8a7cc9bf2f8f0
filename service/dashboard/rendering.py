"""The dashboard's templates and static files, loaded from the package once per process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

import jinja2

STATIC_TYPES: Final[dict[str, str]] = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def _environment() -> jinja2.Environment:
    # Compiled once and never reloaded: the templates ship with the package. Undefined
    # names fail loudly in tests instead of rendering as blanks.
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("service.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters["thousands"] = _thousands
    environment.filters["coordinate"] = _coordinate
    return environment


def _thousands(value: int) -> str:
    return f"{value:,}"


def _coordinate(value: float) -> str:
    """A position in a chart, to a tenth of a unit (what a screen can show)."""
    return f"{value:.1f}"


def prepare() -> None:
    """Compile every template and read every static file now (a tenth of a second): at
    start-up, so that the first page a person opens renders as fast as any other."""
    environment = _environment()
    for name in environment.list_templates(extensions=["html"]):
        environment.get_template(name)
    _static_files()


def render(template: str, **context: Any) -> str:
    """The template rendered with ``context`` (every value HTML-escaped unless marked safe)."""
    return _environment().get_template(template).render(**context)


@dataclass(frozen=True)
class StaticFile:
    content: bytes
    media_type: str
    etag: str


def static_file(name: str) -> StaticFile | None:
    """One of the package's static files by its name, or None."""
    return _static_files().get(name)


@cache
def _static_files() -> dict[str, StaticFile]:
    # Every file read once, up front: a request can only pick one of these by its exact
    # name, so no path a client sends ever reaches the file system.
    files = {}
    for resource in (resources.files("service.dashboard") / "static").iterdir():
        suffix = resource.name[resource.name.rfind(".") :]
        if resource.is_file() and suffix in STATIC_TYPES:
            content = resource.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
            files[resource.name] = StaticFile(content, STATIC_TYPES[suffix], etag)
    return files
