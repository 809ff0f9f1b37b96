"""Tools from outside pip (Debian packages): in CI a missing one fails the test, never skips it."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skips on a developer machine without it, fails in CI (CI set)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package}; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
