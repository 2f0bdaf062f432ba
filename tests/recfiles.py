"""A recording's files as the tests see them: decrypted through the storage layer's own code
(as `callrec` tools read them), and the raw files for the at-rest checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from callrec.sim.harness import Appliance
from callrec.storage.open_store import read_recording_sidecar, read_recording_wav


def roots(app: Appliance) -> list[Path]:
    """The recordings' folders: the SD card's, then the USB stick's."""
    usb = Path(app.config.storage.usb_mount_point) / "callrec" / "recordings"
    return [app.config.data_dir / "recordings", usb]


def audio_files(app: Appliance) -> list[Path]:
    """Every audio file on disk (both volumes), encrypted (.cra) or plain (.wav)."""
    return sorted(p for root in roots(app) for ext in ("cra", "wav")
                  for p in root.glob(f"*/*/*.{ext}"))


def sidecar_files(app: Appliance) -> list[Path]:
    return sorted(p for root in roots(app) for p in root.glob("*/*/*.json"))


def sidecar(app: Appliance, rec_id: str) -> dict[str, Any]:
    meta = read_recording_sidecar(app.config, rec_id)
    assert meta is not None, f"no readable sidecar for {rec_id}"
    return meta


def recording_wav(app: Appliance, rec_id: str, directory: Path) -> Path:
    """The recording decrypted to `directory`/<id>.wav (what the web UI would serve)."""
    path = directory / f"{rec_id}.wav"
    path.write_bytes(read_recording_wav(app.config, rec_id))
    return path


def wait_stored_as(app: Appliance, rec_id: str, fmt: str, timeout: float = 60.0) -> dict[str, Any]:
    """The recording's metadata once the transcoder has switched it to `fmt`."""
    deadline = time.monotonic() + timeout
    while True:
        meta = sidecar(app, rec_id)
        if meta["audio"]["format"] == fmt:
            return meta
        assert time.monotonic() < deadline, f"{rec_id} still {meta['audio']['format']}"
        time.sleep(0.2)
