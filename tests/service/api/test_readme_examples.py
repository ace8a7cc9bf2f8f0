"""Every `curl` example in the README, sent to the service as written (through HTTP on the
ASGI app, the bank's model behind it): none may fail. Admin examples name illustrative
versions, which this models folder does not have: they must reach their route and be
answered "not found", which shows the command's form is right."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import serve, settings_for
from tests.service.helpers import ADMIN_KEY

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Example:
    line: int
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    upload: Path | None = None


def readme_examples() -> list[Example]:
    """The README's curl commands (continuation lines joined), parsed."""
    lines = (ROOT / "README.md").read_text().splitlines()
    examples = []
    number = 0
    while number < len(lines):
        if not lines[number].startswith("    curl "):
            number += 1
            continue
        start, command = number + 1, lines[number].strip()
        # A command goes on past a backslash, and past the end of a line inside quotes.
        while command.endswith("\\") or not _complete(command):
            number += 1
            command = command.removesuffix("\\") + "\n" + lines[number].strip()
        examples.append(_parsed(start, command))
        number += 1
    return examples


def _complete(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # a quote still open
        return False
    return True


def _parsed(line: int, command: str) -> Example:
    words = shlex.split(command, comments=True)
    example = Example(line)
    words = iter(words[1:])
    for word in words:
        if word == "-X":
            example.method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            example.headers[name.strip()] = value.strip().replace("$ADMIN_API_KEY", ADMIN_KEY)
        elif word in ("-d", "--data-binary"):
            data = next(words)
            example.body = (ROOT / data[1:]).read_bytes() if data.startswith("@") else data.encode()
            example.method = example.method if example.method != "GET" else "POST"
        elif word == "-F":
            example.upload = ROOT / next(words).split("=@", 1)[1]
            example.method = "POST"
        elif word == "-D":
            next(words)
        elif word.startswith("http"):
            example.url = word
        elif word != "-s":
            raise AssertionError(f"README line {line}: unhandled curl option {word!r}")
    return example


EXAMPLES = readme_examples()


def test_the_readme_has_examples_for_every_kind_of_user() -> None:
    paths = {httpx.URL(example.url).path for example in EXAMPLES}
    assert {"/segment", "/segment/batch", "/segments", "/segment/moves"} <= paths
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: f"README:{example.line}")
async def test_a_readme_example_works_as_written(models_dir: Path, example: Example) -> None:
    async with serve(settings_for(models_dir, admin_api_key=ADMIN_KEY)) as client:
        url = httpx.URL(example.url)
        files = None
        if example.upload is not None:
            files = {"file": (example.upload.name, example.upload.read_bytes(), "text/csv")}
        response = await client.request(
            example.method,
            url.raw_path.decode(),
            headers=example.headers,
            content=example.body,
            files=files,
        )
    if url.path.startswith("/admin/"):
        assert response.status_code == 404, response.text  # an illustrative version
        assert response.json()["error"]["code"] == "version_not_found"
    else:
        assert response.status_code == 200, response.text
