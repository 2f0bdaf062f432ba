"""Opens the recordings store as the configuration says: with its keys when encryption is on.

The daemon, the CLI (reindex, storage status) and the tools all go through here, so no code
path can open the recordings without their keys, or create a second device key by mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callrec.config import Config
from callrec.storage.keystore import KeyStore
from callrec.storage.recordings import (
    ENCRYPTED_SUFFIX,
    RecordingStore,
    is_recording_id,
    load_sidecar_file,
    open_audio_file,
)


def open_keys(config: Config) -> KeyStore | None:
    """The key store, creating the device key on first use; None if encryption is off.

    Raises keystore.DeviceKeyMissing when recordings' keys exist but the device key does not
    (it must then be restored from the owner's backup, never silently replaced).
    """
    if not config.storage.encrypt:
        return None
    return KeyStore(config.data_dir / "keys", config.storage.device_key_path)


def open_store(config: Config) -> RecordingStore:
    return RecordingStore(config.data_dir, open_keys(config))


def _folder(config: Config, rec_id: str) -> Path:
    if not is_recording_id(rec_id):
        raise FileNotFoundError(f"not a recording id: {rec_id!r}")
    return config.data_dir / "recordings" / rec_id[:4] / rec_id[4:6]


def read_recording_sidecar(config: Config, rec_id: str) -> dict[str, Any] | None:
    """A recording's metadata from its sidecar (opened with its key), without the index."""
    return load_sidecar_file(_folder(config, rec_id) / f"{rec_id}.json", rec_id, open_keys(config))


def read_recording_wav(config: Config, rec_id: str, rate: int | None = None) -> bytes:
    """A recording's audio as WAV bytes, decrypted if needed, without opening the index (so a
    tool or a test can read it while the daemon runs). Raises FileNotFoundError."""
    folder = _folder(config, rec_id)
    found = [p for p in (folder / f"{rec_id}{ENCRYPTED_SUFFIX}", folder / f"{rec_id}.wav")
             if p.exists()]
    if not found:
        raise FileNotFoundError(f"recording {rec_id}: no audio")
    source = open_audio_file(found[0], rec_id, open_keys(config), rate or config.board.sample_rate)
    try:
        return source.read_range(0, source.size())
    finally:
        source.close()
