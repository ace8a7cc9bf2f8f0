"""The allocator settings for batches: large buffers reused, not faulted in afresh."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from service.api import app as app_module
from tests.fresh_interpreter import last_line_of
from tests.service.conftest import serve, settings_for

# A batch's pattern on a pool thread: three 8 MB buffers held at once, ten batches in turn.
# Prints whether the settings were applied and the page faults of batches 2 to 10.
BATCHES = """
import json, resource, sys, threading
from service.allocator import keep_large_buffers

applied = keep_large_buffers() if sys.argv[1] == "tuned" else False

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def batches(counted):
    held = [bytes(8 << 20) for _ in range(3)]  # the first batch: its pages are new
    del held
    start = faults()
    for _ in range(9):
        held = [bytes(8 << 20) for _ in range(3)]
        del held
    counted.append(faults() - start)

counted = []
thread = threading.Thread(target=batches, args=(counted,))
thread.start()
thread.join()
print(json.dumps([applied, counted[0]]))
"""

PAGES_OF_ONE_BATCH = 3 * (8 << 20) // os.sysconf("SC_PAGE_SIZE")
WITHOUT_ALLOCATOR_SETTINGS = {
    name: value
    for name, value in os.environ.items()
    if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"
}

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the settings are glibc's (mallopt)"
)


@glibc_only
def test_a_batchs_buffers_are_reused_by_the_next_batches() -> None:
    applied, faults = last_line_of(BATCHES, "tuned", env=WITHOUT_ALLOCATOR_SETTINGS)
    assert applied is True
    # Nine batches fault in fewer pages than one batch holds: their buffers are the first's.
    assert faults < PAGES_OF_ONE_BATCH


@glibc_only
def test_without_the_settings_every_batch_faults_its_pages_in_again() -> None:
    """What the settings are for: glibc's defaults give each batch fresh pages."""
    applied, faults = last_line_of(BATCHES, "default", env=WITHOUT_ALLOCATOR_SETTINGS)
    assert applied is False
    assert faults > 5 * PAGES_OF_ONE_BATCH


@glibc_only
def test_an_operators_own_allocator_settings_are_left_alone() -> None:
    environment = {**WITHOUT_ALLOCATOR_SETTINGS, "MALLOC_ARENA_MAX": "4"}
    applied, _ = last_line_of(BATCHES, "tuned", env=environment)
    assert applied is False


async def test_a_worker_tunes_the_allocator_when_it_starts(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[None] = []
    monkeypatch.setattr(app_module, "keep_large_buffers", lambda: calls.append(None) or True)
    async with serve(settings_for(models_dir)) as client:
        assert (await client.get("/ready")).status_code == 200
    assert calls == [None]
