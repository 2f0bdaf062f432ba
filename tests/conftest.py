"""Fixtures shared by every test folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callrec.prompts import synthesize
from support import need_tool


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short consent prompt and far-end speech: real human speech where Debian has it."""
    need_tool("espeak-ng")
    need_tool("sox")
    d = tmp_path_factory.mktemp("media")
    synthesize("This call is recorded.", "en", d / "test.wav")
    human = Path("/usr/share/sounds/alsa/Front_Center.wav")
    speech = d / "speech.wav"
    if human.exists():  # alsa-utils: a real voice, 48 kHz; brought to the line's format
        subprocess.run(["sox", str(human), "-r", "8000", "-c", "1", "-b", "16", str(speech),
                        "gain", "-n", "-6"], check=True)
    else:
        synthesize("Hello, I am calling about my order number twelve.", "en", speech)
    return {"prompt": d / "test.wav", "speech": speech}


