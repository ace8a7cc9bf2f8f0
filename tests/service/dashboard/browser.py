"""Headless Chromium (Debian's) for the dashboard's browser tests and screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
"""axe-core, vendored from the npm registry with its licence header (MPL-2.0)."""
LAPTOP = {"width": 1366, "height": 768}
TABLET = {"width": 768, "height": 1024}


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (without its sandbox when running as root, which the
    sandbox refuses)."""
    arguments = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=arguments)
        try:
            yield browser
        finally:
            browser.close()
