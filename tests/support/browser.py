"""Debian's Chromium, driven by Playwright, for the dashboard's browser tests."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from bench.screenshot import CHROMIUM, CHROMIUM_ARGS, wait_for_tick

__all__ = ["CHROMIUM_ARGS", "Page", "chromium", "wait_for_tick"]


def chromium() -> str:
    """Path of Debian's chromium; skips on a developer machine without it, fails in CI."""
    path = shutil.which(CHROMIUM) or shutil.which("chromium")
    if path:
        return path
    message = "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message)  # in CI a missing browser is a failure, never a skip
    pytest.skip(message)


class Page:
    """A browser page that records console errors and failed requests."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
