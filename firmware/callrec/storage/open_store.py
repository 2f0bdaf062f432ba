"""Opens the recordings store as the configuration says: with its keys when encryption is on.

The daemon, the CLI (reindex, storage status) and the tools all go through here, so no code
path can open the recordings without their keys, or create a second device key by mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callrec.config import Config
from callrec.storage.key_binding import binding_for
from callrec.storage.keystore import KeyStore
from callrec.storage.recordings import (
    ENCRYPTED_SUFFIX,
    AudioSource,
    JoinedWav,
    PcmPart,
    RecordingStore,
    audio_layout,
    is_recording_id,
    load_sidecar_file,
    open_audio_file,
)
from callrec.storage.volumes import DEFAULT_USB_SUBDIR, SD, USB
from callrec.storage.wavstream import wav_header


def open_keys(config: Config, *, create_device_key: bool = True) -> KeyStore | None:
    """The key store, creating the device key on first use; None if encryption is off. The
    device key file is wrapped by the hardware secret `storage.key_binding` names.

    Raises keystore.DeviceKeyMissing when recordings' keys exist but the device key does not
    (it must then be restored from the owner's backup, never silently replaced), and
    keystore.HardwareSecretError / WrongHardwareSecret when the device key is bound to a
    secret this recorder cannot read or does not have (the SD card of another recorder).
    """
    if not config.storage.encrypt:
        return None
    binding, unbound_reason = binding_for(config.storage)
    return KeyStore(config.data_dir / "keys", config.storage.device_key_path,
                    create_device_key=create_device_key, binding=binding,
                    unbound_reason=unbound_reason)


def open_store(config: Config) -> RecordingStore:
    return RecordingStore(
        config.data_dir, open_keys(config), usb_mount_point=config.storage.usb_mount_point
    )


def _folders(config: Config, rec_id: str) -> dict[str, Path]:
    """The recording's folder on each volume, the SD card first."""
    if not is_recording_id(rec_id):
        raise FileNotFoundError(f"not a recording id: {rec_id!r}")
    sub = Path(rec_id[:4]) / rec_id[4:6]
    usb = Path(config.storage.usb_mount_point) / DEFAULT_USB_SUBDIR / "recordings"
    return {SD: config.data_dir / "recordings" / sub, USB: usb / sub}


def read_recording_sidecar(config: Config, rec_id: str) -> dict[str, Any] | None:
    """A recording's metadata from its sidecar (opened with its key), without the index. The
    SD card's sidecar wins over the stick's (a call that fell back to the SD card)."""
    keys = open_keys(config)
    for folder in _folders(config, rec_id).values():
        meta = load_sidecar_file(folder / f"{rec_id}.json", rec_id, keys)
        if meta is not None:
            return meta
    return None


def read_recording_wav(config: Config, rec_id: str, rate: int | None = None) -> bytes:
    """A recording's audio as WAV bytes, decrypted (and decoded, if it was transcoded to Opus
    or FLAC) as needed, without opening the index (so a tool or a test can read it while the
    daemon runs); the parts of a call that fell back to the SD card are joined. Raises
    FileNotFoundError."""
    folders = _folders(config, rec_id)
    keys = open_keys(config)
    rate = rate or config.board.sample_rate
    meta = read_recording_sidecar(config, rec_id) or {}
    channels = audio_layout(meta)[1]
    fmt = str((meta.get("audio") or {}).get("format") or "wav")
    parts = meta.get("parts")
    source: AudioSource
    if isinstance(parts, list) and parts:
        found = [(folders.get(p.get("volume", SD), folders[SD]) / p["file"], p.get("bytes"))
                 for p in parts]
        present = [(path, count) for path, count in found if path.is_file()]
        if not present:
            raise FileNotFoundError(f"recording {rec_id}: no audio")
        key = keys.key_for(rec_id) if keys is not None else None
        source = JoinedWav([PcmPart(path, rec_id, key, count) for path, count in present], rate,
                           channels)
    else:
        names = [f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav"]
        if fmt != "wav":
            names.insert(0, Path(str(meta["audio"].get("file"))).name)
        paths = [folder / name for folder in folders.values() for name in names]
        found_paths = [p for p in paths if p.exists()]
        if not found_paths:
            raise FileNotFoundError(f"recording {rec_id}: no audio")
        source = open_audio_file(found_paths[0], rec_id, keys, rate, fmt, channels)
    try:
        data = source.read_range(0, source.size())
    finally:
        source.close()
    if fmt == "wav":
        return data
    from callrec.storage.codec import decode_frames  # libsndfile: tools and tests only

    frames, file_rate = decode_frames(data)  # (samples, channels), interleaved when written
    return (wav_header(frames.size * 2, file_rate, frames.shape[1])
            + frames.astype("<i2").tobytes())
