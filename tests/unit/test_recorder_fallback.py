"""The recorder when the USB stick fails mid-call: the call continues on the SD card and no
captured byte is lost. A small tmpfs plays the stick (mounting needs root; CI runs as root)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callrec.recorder import Recorder
from callrec.storage.keystore import KeyStore
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.storage.volumes import VolumeSet

RATE = 8000
CHUNK = 1600  # samples: 200 ms, as the capture callback delivers


def pcm(first: int, samples: int) -> bytes:
    """Samples numbered from `first`: a lost, repeated or reordered sample shows."""
    return b"".join(((first + i) % 65536).to_bytes(2, "little") for i in range(samples))


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"


@pytest.fixture
def usb(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs as the USB stick: run as root (CI does)")
    point = tmp_path / "usb"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs",
                              str(point)], capture_output=True, text=True, timeout=30, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs as the USB stick: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        text = Path("/proc/self/mountinfo").read_text()
        if f" {point} " in text:
            subprocess.run(["umount", "-l", str(point)], check=False, timeout=30)


class Call:
    def __init__(self, tmp_path: Path, usb: Path) -> None:
        keys = KeyStore(tmp_path / "data" / "keys", tmp_path / "data" / "keys" / "device.key")
        self.store = RecordingStore(tmp_path / "data", keys, usb_mount_point=usb)
        self.volumes = VolumeSet(tmp_path / "data", usb, usb_device=None)
        self.fallbacks: list[tuple[str, str]] = []
        self.errors: list[str] = []

        def problem(volume: str) -> str | None:
            health = next(h for h in self.volumes.check() if h.name == volume)
            return None if health.usable else health.error

        self.rec = Recorder(self.store, RATE, 0.05, on_error=self.errors.append,
                            choose_volume=lambda: "usb", volume_problem=problem,
                            on_fallback=lambda v, p: self.fallbacks.append((v, p)))
        self.rec.start()
        self.rec_id = new_recording_id()
        self.fed = 0
        self.rec.begin(self.rec_id)

    def feed(self, seconds: float) -> None:
        for _ in range(int(seconds * RATE) // CHUNK):
            self.rec.feed(pcm(self.fed, CHUNK))
            self.fed += CHUNK

    def finish(self) -> dict[str, Any]:
        done = threading.Event()
        result: list[dict[str, Any] | None] = []
        self.rec.finish({"id": self.rec_id}, lambda m: (result.append(m), done.set()))
        assert done.wait(10)
        self.rec.stop()
        assert result[0] is not None
        return result[0]

    def audio(self) -> bytes:
        source = self.store.open_audio(self.rec_id)
        try:
            return source.read_range(44, source.size())
        finally:
            source.close()


def test_a_full_stick_mid_call_loses_no_byte(tmp_path: Path, usb: Path) -> None:
    call = Call(tmp_path, usb)
    call.feed(1.0)  # the announcement: held in memory
    call.rec.commit({"id": call.rec_id, "status": "recording"})
    for _ in range(40):  # 40 s of audio: the 256 kB stick fills up after about 15 s
        call.feed(1.0)
        time.sleep(0.01)
    meta = call.finish()
    assert call.fallbacks and call.fallbacks[0][0] == "usb" and call.fallbacks[0][1] == "full"
    assert not call.errors
    parts = meta["parts"]
    assert [p["volume"] for p in parts] == ["usb", "sd"] and meta["volume"] == "sd"
    assert meta["audio"]["bytes"] == 2 * call.fed == sum(p["bytes"] for p in parts)
    # Every sample fed, in order, once: the stick's part up to its last sync, then the SD's.
    assert call.audio() == pcm(0, call.fed)
    assert list((tmp_path / "data" / "recordings").rglob(f"{call.rec_id}.part2.cra"))
    call.store.close()


def test_a_stick_pulled_mid_call_continues_on_the_sd(tmp_path: Path, usb: Path) -> None:
    call = Call(tmp_path, usb)
    call.rec.commit({"id": call.rec_id, "status": "recording"})
    call.feed(2.0)
    time.sleep(0.3)
    assert list(usb.rglob(f"{call.rec_id}.cra"))
    _run("umount", "-l", str(usb))  # writes to the detached tmpfs still succeed...
    call.rec.check_volume()  # ...so the mount watcher's event makes the recorder look
    call.feed(3.0)
    meta = call.finish()
    assert call.fallbacks == [("usb", "not inserted")] and not call.errors
    first, second = meta["parts"]
    assert first["volume"] == "usb" and second["volume"] == "sd"
    assert first["bytes"] + second["bytes"] == 2 * call.fed == meta["audio"]["bytes"]
    # The stick is gone with its part; the SD card holds the rest, from the stick's last sync.
    assert call.audio() == pcm(first["bytes"] // 2, call.fed - first["bytes"] // 2)
    assert call.store.get(call.rec_id)["volume"] == "sd"
    call.store.close()
