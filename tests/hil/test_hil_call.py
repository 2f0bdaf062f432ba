"""The end-to-end call test against real hardware (hardware in the loop, see hw/HIL.md).

Runs only with CALLREC_HIL=1 on the rig: a Pi with the HAT inline between an analog line
simulator's port A and a local phone whose hook is a USB relay channel; a USB audio interface
(CALLREC_HIL_FAREND_DEVICE) is the far end on port B, whose hook is another relay channel. The
assertions are those of tests/e2e/test_analog_call.py; only the thresholds allow for the
analog path (codec, transformer, line simulator).
"""

from __future__ import annotations

import os
import threading
import time
import wave
from pathlib import Path

import pytest

pytestmark = pytest.mark.hil

if os.environ.get("CALLREC_HIL") != "1":
    pytest.skip("hardware-in-the-loop tests need the rig of hw/HIL.md: set CALLREC_HIL=1 there",
                allow_module_level=True)

from audiocheck import best_match, read_wav  # noqa: E402
from callrec.sim.farend import FarEnd  # noqa: E402
from callrec.sim.harness import Appliance  # noqa: E402
from recfiles import recording_wav  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FAREND_DEVICE = os.environ.get("CALLREC_HIL_FAREND_DEVICE", "callrec-farend")
RELAY_PORT = os.environ.get("CALLREC_HIL_RELAY", "/dev/ttyUSB0")
CONFIG = Path(os.environ.get("CALLREC_HIL_CONFIG", REPO / "hw" / "config" / "callrec-hat.toml"))
FAREND_HOOK, LOCAL_HOOK = 1, 2  # relay channels (hw/HIL.md)


class LcusRelay:
    """USB relay board speaking the common LCUS protocol: A0 <ch> <on> <sum> (assumption)."""

    def __init__(self, port: str) -> None:
        import serial

        self.port = serial.Serial(port, 9600, timeout=1)

    def set(self, channel: int, on: bool) -> None:
        frame = bytes([0xA0, channel, int(on)])
        self.port.write(frame + bytes([sum(frame) & 0xFF]))
        self.port.flush()

    def close(self) -> None:
        for ch in (FAREND_HOOK, LOCAL_HOOK):
            self.set(ch, False)
        self.port.close()


def hil_config(tmp_path: Path) -> Path:
    """The rig's configuration with data and runtime paths moved into the test's folder."""
    text = CONFIG.read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key == "data_dir":
            line = f'data_dir = "{tmp_path}/data"'
        elif key == "runtime_dir":
            line = f'runtime_dir = "{tmp_path}/run"'
        lines.append(line)
    out = tmp_path / "callrec.toml"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_real_line_call_is_announced_and_recorded(tmp_path: Path, media: dict[str, Path]) -> None:
    relay = LcusRelay(RELAY_PORT)
    far = FarEnd(FAREND_DEVICE)
    app = Appliance(tmp_path, pulse=None, config=hil_config(tmp_path))
    speech = media["speech"]
    try:
        app.start_daemon()
        far.open()
        time.sleep(2)  # let the far end's capture callbacks flow
        relay.set(FAREND_HOOK, True)  # the far end lifts and the line simulator rings port A
        time.sleep(8)  # two French ring cycles: caller ID arrives between them
        far.start_listening()
        relay.set(LOCAL_HOOK, True)  # the office answers
        assert far.wait_for_prompt_end(timeout_s=30), "the far end never heard the prompt"
        with wave.open(str(speech)) as w:
            far.say(w.readframes(w.getnframes()))
        time.sleep(1)
        relay.set(LOCAL_HOOK, False)  # the office hangs up
        relay.set(FAREND_HOOK, False)
        heard = far.stop_listening()
        status = app.wait_idle(timeout_s=15)
        assert status["last_call"]["outcome"] == "recorded"
        wav = recording_wav(app, status["last_recording"], tmp_path)
        r, _ = best_match(read_wav(speech)[0], read_wav(wav)[0])
        assert r >= 0.9, f"far-end speech correlation {r:.3f} through the analog path"
        assert len(heard) > 0
    finally:
        threading.Thread(target=far.close, daemon=True).start()
        relay.close()
        app.stop()
