"""A models folder with traps in it: files that are not versions, FIFOs, endless devices.

None may answer 500, hang a reload (which holds the swap lock) or freeze the event loop,
and no answer shows where the models live on the server's disks.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from segmentation.artifact import LATEST_FILE, MANIFEST_FILE, PIPELINE_FILE
from tests.service.api.test_admin import answers_come_from, reload
from tests.service.conftest import serve, serve_with_keys, settings_for
from tests.service.helpers import assert_error


@pytest.mark.parametrize("name", [LATEST_FILE, "lifecycle.json", "README.md", ".lifecycle.lock"])
async def test_a_file_of_the_models_folder_is_not_a_version(
    versions: tuple[Path, str, str], name: str
) -> None:
    models, first, _ = versions
    (models / "README.md").write_text("notes")
    (models / "lifecycle.json").touch()
    (models / ".lifecycle.lock").touch()
    async with serve_with_keys(models) as client:
        response = await reload(client, {"version": name})
        if name.startswith("."):
            assert_error(response, 422, "invalid_input")  # not even a version name
        else:
            error = assert_error(response, 404, "version_not_found")
            assert f"version '{name}' does not exist" in error["message"]
        assert str(models) not in response.text
        await answers_come_from(client, first)


async def test_no_answer_names_the_models_path(versions: tuple[Path, str, str]) -> None:
    models, _, second = versions
    (models / second / PIPELINE_FILE).unlink()
    async with serve_with_keys(models) as client:
        missing = await reload(client, {"version": "20990101T000000Z-nothere"})
        broken = await reload(client, {"version": second})
        assert_error(broken, 409, "version_rejected")
        assert f"{second}/{PIPELINE_FILE} is missing" in broken.text
        for response in (missing, broken):
            assert str(models.parent) not in response.text


@pytest.mark.parametrize("trap", ["fifo-manifest", "fifo-pipeline", "endless-pipeline"])
async def test_a_fifo_or_a_device_in_a_version_is_refused_at_once(
    versions: tuple[Path, str, str], trap: str
) -> None:
    models, first, second = versions
    target = models / second / (MANIFEST_FILE if trap == "fifo-manifest" else PIPELINE_FILE)
    target.unlink()
    if trap == "endless-pipeline":
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    async with serve_with_keys(models) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(reload(client, {"version": second}), timeout=10)
        assert time.monotonic() - started < 2
        assert_error(response, 409, "version_rejected")
        assert "is not a regular file" in response.json()["error"]["message"]
        await answers_come_from(client, first)


async def test_a_fifo_as_latest_does_not_freeze_the_service(
    versions: tuple[Path, str, str],
) -> None:
    models, first, _ = versions
    settings = settings_for(models).model_copy(update={"model_poll_seconds": 0.05})
    async with serve(settings) as client:
        (models / LATEST_FILE).unlink()
        os.mkfifo(models / LATEST_FILE)
        await asyncio.sleep(0.3)  # several polls of the watcher, on the event loop
        answer = await asyncio.wait_for(client.get("/model"), timeout=5)
        assert answer.json()["model_version"] == first
        await answers_come_from(client, first)
