"""Small helpers shared by the test folders."""

from __future__ import annotations

import shutil

import pytest


def need_tool(tool: str) -> None:
    """Fail (never skip) when a tool the test command installs is missing."""
    if shutil.which(tool) is None:
        pytest.fail(f"'{tool}' is not installed: run ./install.sh --dev --with-tests")
