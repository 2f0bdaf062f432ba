"""Fixtures that run the simulated appliance: PulseAudio, the line simulator, the daemon."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callrec.prompts import synthesize
from callrec.sim.harness import Appliance, Pulse, write_config

pytestmark = pytest.mark.audio


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"'{tool}' is not installed: run ./install.sh --dev --with-tests")


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pulse]:
    _need("pulseaudio")
    p = Pulse(tmp_path_factory.mktemp("pulse"))
    p.up()
    yield p
    p.down()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short consent prompt and far-end speech: real human speech where Debian has it."""
    _need("espeak-ng")
    _need("sox")
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


def make_appliance(tmp_path: Path, pulse: Pulse, media: dict[str, Path],
                   prompt: str = "test") -> Appliance:
    config = write_config(tmp_path, prompt=prompt)
    if prompt == "test":
        shutil.copy(media["prompt"], tmp_path / "data" / "prompts" / "test.wav")
    return Appliance(tmp_path, pulse, config)


@pytest.fixture
def appliance_factory(tmp_path: Path, pulse: Pulse, media: dict[str, Path]) -> Iterator[Any]:
    """Build (not start) appliances; all of them are stopped at the end of the test."""
    made: list[Appliance] = []

    def make(prompt: str = "test") -> Appliance:
        app = make_appliance(tmp_path / f"app{len(made)}", pulse, media, prompt)
        made.append(app)
        return app

    yield make
    for app in made:
        app.stop()


@pytest.fixture
def appliance(tmp_path: Path, pulse: Pulse, media: dict[str, Path]) -> Iterator[Appliance]:
    app = make_appliance(tmp_path, pulse, media)
    try:
        app.start()
        yield app
    finally:
        app.stop()
