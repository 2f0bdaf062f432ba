"""Small helpers shared by the test folders."""

from __future__ import annotations

import shutil

import pytest


def need_tool(tool: str) -> None:
    """Fail (never skip) when a tool the test command installs is missing."""
    if shutil.which(tool) is None:
        pytest.fail(f"'{tool}' is not installed: run ./install.sh --dev --with-tests")


def digest_params(value: str) -> dict[str, str]:
    """The parameters of a Digest Authorization value, quotes removed: the tests' own reading,
    independent of callrec.sip.digest, to check what it wrote."""
    assert value.startswith("Digest ")
    out = {}
    for part in value[len("Digest "):].split(", "):
        name, _, raw = part.partition("=")
        out[name] = raw[1:-1] if raw.startswith('"') else raw
    return out
