"""Running a script in a fresh interpreter, for what only a new process shows (which
modules an import or a call brings in)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tests.service.processes import ROOT


def last_line_of(
    script: str, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> Any:
    """Run ``script`` (``python -c``) from the project's root; the JSON its last line of
    standard output holds. The run must succeed (its standard error shows when not)."""
    finished = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])
