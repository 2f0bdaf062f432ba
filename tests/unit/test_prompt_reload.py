"""The daemon takes a newly activated prompt only on an idle line, and keeps a good one."""

from __future__ import annotations

import wave
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from callrec.callflow import State
from callrec.config import AnnouncementConfig
from callrec.daemon import Daemon
from callrec.phrase import english
from callrec.prompt_library import PromptLibrary


def tone_wav(path: Path, freq: float) -> None:
    t = np.arange(20000) / 8000
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes())


class Faults:
    def __init__(self) -> None:
        self.faults: dict[str, str] = {}

    def set_fault(self, part: str, detail: str) -> None:
        self.faults[part] = detail


def daemon_like(lib: PromptLibrary) -> Any:
    """The parts of a Daemon its prompt methods use."""
    fake = SimpleNamespace(flow=SimpleNamespace(state=State.IDLE), _current=None,
                           prompt_library=lib, _prompt_generation=None, prompts={},
                           _prompt_versions={}, status=Faults())
    fake._load_prompts = lambda: Daemon._load_prompts(fake)
    return fake


def test_a_new_prompt_waits_for_the_line_to_be_idle(tmp_path: Path) -> None:
    lib = PromptLibrary(AnnouncementConfig(directory=str(tmp_path)))
    tone_wav(tmp_path / "fr.wav", 440)
    d = daemon_like(lib)
    d._load_prompts()
    assert d.prompts["in"].name == "fr" and d.status.faults["announcement"] == ""
    tone_wav(tmp_path / "up.wav", 660)
    lib.add_upload(tmp_path / "up.wav", "in", "fr", by="tech", label="x", details={})
    lib.activate("in-fr-2", "tech")
    for state in (State.RINGING, State.ANNOUNCING, State.RECORDING, State.NOT_RECORDED):
        d.flow.state = state
        Daemon._refresh_prompts_when_idle(d)
        assert d.prompts["in"].name == "fr", state
    d.flow.state, d._current = State.IDLE, object()  # a call being set up
    Daemon._refresh_prompts_when_idle(d)
    assert d.prompts["in"].name == "fr"
    d._current = None
    Daemon._refresh_prompts_when_idle(d)
    assert d.prompts["in"].name == "in-fr-2"
    assert d._prompt_versions["in"][0]["version"] == "in-fr-2"
    assert d.prompts["out"].name == "fr"


def test_a_prompt_that_breaks_keeps_the_last_good_one_playing(tmp_path: Path) -> None:
    lib = PromptLibrary(AnnouncementConfig(directory=str(tmp_path)))
    tone_wav(tmp_path / "fr.wav", 440)
    d = daemon_like(lib)
    d._load_prompts()
    before = d.prompts["in"]
    (lib.root / "in-fr-1.wav").write_bytes(b"damaged")
    d._load_prompts()
    assert d.prompts["in"] is before and d.status.faults["announcement"] == ""
    # With nothing good ever loaded, calls are not recorded and the fault says why.
    fresh = daemon_like(lib)
    fresh._load_prompts()
    assert "in" not in fresh.prompts
    fault = fresh.status.faults["announcement"]  # a phrase (callrec.phrase), as the daemon sets it
    assert "not recorded" in english(fault) and "in-fr-1.wav" in english(fault)
