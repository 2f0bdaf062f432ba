"""Fixtures that run the simulated appliance: PulseAudio, the line simulator, the daemon."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callrec.sim.harness import Appliance, Pulse, write_config
from sip_box import SipBox, start_sip_box
from sip_peers import sip_peers  # noqa: F401  # the SIPp/baresip fixture, for test_sip_*
from support import need_tool

pytestmark = pytest.mark.audio


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pulse]:
    need_tool("pulseaudio")
    p = Pulse(tmp_path_factory.mktemp("pulse"))
    p.up()
    yield p
    p.down()


def make_appliance(tmp_path: Path, pulse: Pulse, media: dict[str, Path],
                   prompt: str = "test", device: str = "callrec-line",
                   audio_format: str = "wav") -> Appliance:
    config = write_config(tmp_path, prompt=prompt, device=device, audio_format=audio_format)
    if prompt == "test":
        shutil.copy(media["prompt"], tmp_path / "data" / "prompts" / "test.wav")
    return Appliance(tmp_path, pulse, config)


@pytest.fixture
def appliance_factory(tmp_path: Path, pulse: Pulse, media: dict[str, Path]) -> Iterator[Any]:
    """Build (not start) appliances; all of them are stopped at the end of the test."""
    made: list[Appliance] = []

    def make(prompt: str = "test", device: str = "callrec-line",
             audio_format: str = "wav") -> Appliance:
        app = make_appliance(tmp_path / f"app{len(made)}", pulse, media, prompt, device,
                             audio_format)
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


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, pulse: Pulse,
        media: dict[str, Path]) -> Iterator[SipBox]:
    """The appliance on a SIP line between real peers (tests/sip_box.py): one per test
    module, as starting one takes seconds; each test tells its recordings apart by mark()."""
    b = start_sip_box(tmp_path_factory.mktemp("sipbox"), pulse, media["prompt"])
    try:
        yield b
    finally:
        b.app.stop()
