"""Recording to the USB stick, and a stick pulled out mid-call: the call goes on on the SD card.

A small tmpfs mounted at the appliance's USB mount point plays the stick (mounting needs root;
CI runs as root). Pulling it is `umount -l`, what systemd does when the device goes.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from recfiles import recording_wav, sidecar

FAST_RINGS = {"ring_on_s": 0.4, "ring_off_s": 1.0}


def _mounted(point: Path) -> bool:
    return f" {point} " in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def usb_point(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points to clean up at the end, whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs as the USB stick: run as root (CI does)")
    points: list[Path] = []
    yield points
    for point in points:
        for _ in range(3):
            if not _mounted(point):
                break
            subprocess.run(["umount", "-l", str(point)], check=False, timeout=30)


def mount_stick(point: Path) -> None:
    # Roomier than retention's min_free_mb (500): a tmpfs takes memory only as it is filled.
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs",
                             str(point)], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs as the USB stick: {result.stderr.strip()}")


def wait_for(what: str, check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def padded(speech: Path, silence_s: float, out: Path) -> Path:
    """`speech` after `silence_s` of silence: the stick is pulled during the silence."""
    samples, rate = read_wav(speech)
    pcm = np.concatenate([np.zeros(int(silence_s * rate)), samples])
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(pcm * 32767, -32768, 32767).astype("<i2").tobytes()
                      if np.abs(pcm).max() <= 1.0 else pcm.astype("<i2").tobytes())
    return out


def test_calls_go_to_the_stick_and_a_pulled_stick_loses_no_speech(
    appliance_factory: Any, usb_point: list[Path], media: dict[str, Path], tmp_path: Path
) -> None:
    app: Appliance = appliance_factory()
    point = Path(app.config.storage.usb_mount_point)
    usb_root = point / "callrec" / "recordings"
    mount_stick(point)
    usb_point.append(point)
    app.start()

    # 1. A call recorded onto the stick.
    app.call(direction="in", number="0612345678", audio=str(media["speech"]), rings=2,
             **FAST_RINGS)
    status = app.wait_idle()
    first = status["last_recording"]
    assert status["last_call"]["outcome"] == "recorded"
    assert list(usb_root.rglob(f"{first}.cra")) and list(usb_root.rglob(f"{first}.json"))
    assert not list((app.config.data_dir / "recordings").rglob(f"{first}*"))
    assert sidecar(app, first)["volume"] == "usb"
    speech, _ = read_wav(media["speech"])
    recorded, _ = read_wav(recording_wav(app, first, tmp_path))
    r_first, _ = best_match(speech, recorded)
    assert r_first >= 0.9, f"speech correlation {r_first:.4f} (on the stick)"
    wait_for("both volumes reported", lambda: {r["volume"] for r in
             ((app.status() or {}).get("storage") or {}).get("volumes", [])} == {"sd", "usb"})

    # 2. A second call: the stick is pulled during it, the far end speaks afterwards.
    audio = padded(media["speech"], 6.0, tmp_path / "late-speech.wav")
    replies: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: replies.append(app.call(
        direction="in", number="0698765432", audio=str(audio), rings=2, **FAST_RINGS)))
    caller.start()
    try:
        wait_for("the second call recording",
                 lambda: (app.status() or {}).get("state") == "recording")
        time.sleep(1.0)
        subprocess.run(["umount", "-l", str(point)], check=True, timeout=30)
        faults = wait_for("the storage fault on the status page", lambda: [
            f for f in (app.status() or {}).get("faults", []) if f["part"] == "volume"])
        assert "USB stick" in faults[0]["detail"] and "SD card" in faults[0]["detail"]
    finally:
        caller.join(60)
    assert replies and replies[0]["answered"]
    status = app.wait_idle()
    second = status["last_recording"]
    assert second != first and status["last_call"]["outcome"] == "recorded"
    meta = sidecar(app, second)
    assert meta["volume"] == "sd" and [p["volume"] for p in meta["parts"]] == ["usb", "sd"]
    assert meta["status"] == "complete"
    recorded, _ = read_wav(recording_wav(app, second, tmp_path))
    r_second, _ = best_match(speech, recorded)
    assert r_second >= 0.9, f"speech correlation {r_second:.4f} (after the stick was pulled)"
    log = app.log_tail("daemon", 200)
    assert "continues on the SD card" in log
    assert "0612345678" not in log and "0698765432" not in log
