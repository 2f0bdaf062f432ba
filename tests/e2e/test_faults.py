"""Faults at start and during operation: clear errors, retries, and no recording without
an announcement."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

FAST = {"rings": 1, "ring_on_s": 0.4, "ring_off_s": 0.4, "talk_s": 1.0}


def test_no_announcement_no_recording(appliance_factory, media) -> None:
    app = appliance_factory(prompt="missing")
    app.start()
    st = app.status()
    assert st is not None
    faults = {f["part"]: f["detail"] for f in st["faults"]}
    assert "missing.wav" in faults["announcement"] and "not recorded" in faults["announcement"]
    assert app.sim(cmd="status")["fault_led"] is True  # the HAT's fault LED is lit
    app.call(direction="in", audio=str(media["speech"]), wait_for_prompt=False, **FAST)
    st = app.wait_idle()
    assert st["last_call"]["outcome"] == "not_recorded"
    assert not list((app.config.data_dir / "recordings").glob("*/*/*"))


def test_daemon_waits_for_a_missing_board_then_recovers(appliance_factory, media) -> None:
    app = appliance_factory()
    app.start_daemon(wait_ready=False)  # no simulator yet: no serial port, no far end
    time.sleep(2)
    st = app.status()
    assert st is not None and not st["board"]["mcu_connected"]
    assert any(f["part"] == "mcu" for f in st["faults"])
    app.start_line()
    app.wait_ready(timeout_s=30)
    st = app.status()
    assert st is not None and not any(f["part"] == "mcu" for f in st["faults"])
    assert app.sim(cmd="status")["fault_led"] is False
    app.call(direction="in", audio=str(media["speech"]), **FAST)
    assert app.wait_idle()["last_call"]["outcome"] == "recorded"


def test_malformed_config_is_refused_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[board]\nbackend = "sim"\nserial_prot = "/dev/x"\n')
    out = subprocess.run([sys.executable, "-m", "callrec", "run", "--config", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert f"{bad}: key 'board.serial_prot' is unknown (did you mean 'serial_port'?)" \
        in out.stderr
    assert not (tmp_path / "data").exists()


def test_real_board_backend_without_gpio_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "hat.toml"
    config.write_text(f'runtime_dir = "{tmp_path}/run"\n[board]\nbackend = "hat"\n'
                      f'serial_port = "{tmp_path}/no-serial"\n'
                      f'[storage]\ndata_dir = "{tmp_path}/data"\n'
                      f'[announcement]\ndirectory = "{tmp_path}/prompts"\n')
    out = subprocess.run([sys.executable, "-m", "callrec", "run", "--config", str(config)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GPIOZERO_PIN_FACTORY": ""})
    assert out.returncode == 1, out.stderr
    assert "callrec: the HAT's GPIO pins cannot be used" in out.stderr
    assert 'board.backend = "sim"' in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_audio_device_is_a_clear_fault_and_lights_the_led(appliance_factory) -> None:
    app = appliance_factory(device="no-such-device")
    app.start_line()
    app.start_daemon(wait_ready=False)
    deadline = time.monotonic() + 20
    faults: dict[str, str] = {}
    while time.monotonic() < deadline and "audio" not in faults:
        st = app.status() or {"faults": []}
        faults = {f["part"]: f["detail"] for f in st["faults"]}
        time.sleep(0.2)
    assert "no capture device named 'no-such-device'" in faults["audio"]
    assert "callrec-line" in faults["audio"]  # it lists what it found
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not app.sim(cmd="status")["fault_led"]:
        time.sleep(0.2)
    assert app.sim(cmd="status")["fault_led"] is True
