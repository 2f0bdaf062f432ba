"""Stolen media: the recordings' volume read in another computer shows no audio, no numbers.

The store is used as the appliance uses it (open_store: keys, sealed sidecars and index,
encrypted audio); then every file under the data directory is read raw, as a thief would.
"""

from __future__ import annotations

import base64
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from callrec.config import Config, StorageConfig
from callrec.storage.key_binding import FileBinding
from callrec.storage.keystore import HardwareSecretError, WrongHardwareSecret, restore_device_key
from callrec.storage.open_store import open_store, read_recording_sidecar, read_recording_wav
from callrec.storage.recordings import new_recording_id

NUMBER, NAME = "0612345678", "DUPONT MARIE"


def speech_like(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * 8000)) * 3000).astype("<i2").tobytes()


def record(store, pcm: bytes, number: str = NUMBER) -> str:  # type: ignore[no-untyped-def]
    rec_id = new_recording_id(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    meta = {"id": rec_id, "direction": "in", "caller_number": number, "caller_name": NAME,
            "started_at": "2026-11-29T10:00:00+00:00", "status": "recording"}
    writer = store.open_writer(meta, 8000)
    for i in range(0, len(pcm), 3200):
        writer.write(pcm[i : i + 3200])
        writer.sync()
    writer.close()
    store.add({**meta, "status": "complete", "audio": store.audio_info(writer, 8000)})
    return rec_id


def raw_files(root: Path, *, except_device_key: Path) -> dict[Path, bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path != except_device_key:
                out[path] = path.read_bytes()
    return out


def test_raw_files_hold_no_audio_and_no_personal_data(tmp_path: Path) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    pcm = speech_like(3.0, seed=1)
    rec_id = record(store, pcm)
    record(store, speech_like(1.0, seed=2), number="+33 1 23 45 67 89")
    store.close()

    # The owner reads it back through the appliance.
    assert read_recording_wav(config, rec_id)[44:] == pcm
    assert read_recording_sidecar(config, rec_id)["caller_number"] == NUMBER

    files = raw_files(tmp_path, except_device_key=config.storage.device_key_path)
    assert any(p.suffix == ".cra" for p in files) and any(p.parent.name == "index" for p in files)
    probes = [pcm[i : i + 16] for i in range(0, len(pcm) - 16, 997)]
    for path, data in files.items():
        for secret in (NUMBER.encode(), b"DUPONT", b"0612", b"123456789", b"caller_number"):
            assert secret not in data, f"{secret!r} readable in {path.relative_to(tmp_path)}"
        assert not any(p in data for p in probes), f"audio readable in {path.name}"
        assert b"RIFF" not in data


def test_erasure_destroys_the_key_so_leftover_copies_stay_unreadable(tmp_path: Path) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    rec_id = record(store, speech_like(1.0, seed=3))
    audio, sidecar = store.audio_path(rec_id), store.sidecar_path(rec_id)
    kept_audio, kept_sidecar = audio.read_bytes(), sidecar.read_bytes()  # e.g. old flash blocks
    assert store.erase(rec_id)
    assert not store.has_files(rec_id)
    # Put the old bytes back, as if the flash had kept them: nothing can open them any more.
    audio.write_bytes(kept_audio)
    sidecar.write_bytes(kept_sidecar)
    assert read_recording_sidecar(config, rec_id) is None
    try:
        read_recording_wav(config, rec_id)
    except FileNotFoundError as exc:
        assert "no key" in str(exc)
    else:
        raise AssertionError("an erased recording's audio could still be decrypted")
    store.close()


def test_index_of_another_device_is_refused_not_misread(tmp_path: Path) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    record(store, speech_like(0.5, seed=4))
    store.close()
    # The device key replaced (a different appliance): nothing decrypts, the store says so.
    config.storage.device_key_path.unlink()
    for key_file in (tmp_path / "keys").glob("*/*.key"):
        key_file.unlink()
    again = open_store(config)
    assert again.count() == 0  # the sealed shard is unreadable: rebuilt from sidecars (none)
    again.close()


def test_stolen_sd_card_opens_nothing_without_the_hardware_secret(tmp_path: Path) -> None:
    """The whole data directory, keys included, copied to another computer: without the
    recorder's hardware secret (here the file standing for the Pi's OTP) nothing opens."""
    board = tmp_path / "board" / "otp.key"  # on the recorder, not on the card
    card = tmp_path / "card"
    config = Config(storage=StorageConfig(data_dir=str(card), key_binding="file",
                                          key_binding_file=str(board)))
    store = open_store(config)
    assert store.keys is not None and store.keys.binding_kind == "file"
    rec_id = record(store, speech_like(1.0, seed=5))
    device_key = base64.b32decode(_key_line(store.keys.export_device_key()))[:32]
    recording_key = store.keys.key_for(rec_id)
    store.close()
    assert read_recording_sidecar(config, rec_id)["caller_number"] == NUMBER  # the owner

    stolen = tmp_path / "elsewhere"
    shutil.copytree(card, stolen)
    assert (stolen / "keys" / "device.key").is_file()
    for path, data in raw_files(stolen, except_device_key=Path("/nonexistent")).items():
        for secret in (device_key, recording_key or b"?", NUMBER.encode(), b"DUPONT"):
            assert secret not in data, path

    # The thief's computer: no secret file, another secret, no binding, auto on a non-Pi.
    thief_file = tmp_path / "thief" / "otp.key"
    attempts = [
        (StorageConfig(data_dir=str(stolen), key_binding="file",
                       key_binding_file=str(thief_file)), HardwareSecretError),
        (StorageConfig(data_dir=str(stolen), key_binding="none"), HardwareSecretError),
        (StorageConfig(data_dir=str(stolen), key_binding="auto"), HardwareSecretError),
    ]
    for storage, error in attempts:
        thief = Config(storage=storage)
        with pytest.raises(error):
            read_recording_sidecar(thief, rec_id)
        with pytest.raises(error):
            read_recording_wav(thief, rec_id)
        with pytest.raises(error):
            open_store(thief)
    assert not thief_file.parent.exists()  # no secret made up on the thief's side either
    thief_file.parent.mkdir()
    thief_file.write_bytes(os.urandom(32))  # a guessed secret: refused as another recorder's
    with pytest.raises(WrongHardwareSecret, match="another recorder"):
        open_store(Config(storage=attempts[0][0]))
    # Nothing was replaced on the copy: no new device key made, the wrapped one untouched.
    assert (stolen / "keys" / "device.key").read_bytes() == (card / "keys" / "device.key"
                                                            ).read_bytes()
    # And the owner's backup is what opens the card elsewhere (a dead recorder).
    restored = tmp_path / "restored"
    shutil.copytree(card, restored)
    (restored / "keys" / "device.key").unlink()
    new_board = Config(storage=StorageConfig(data_dir=str(restored), key_binding="file",
                                             key_binding_file=str(tmp_path / "new" / "otp")))
    restore_device_key(_backup(config), new_board.storage.device_key_path,
                       FileBinding(Path(new_board.storage.key_binding_file)))
    assert read_recording_sidecar(new_board, rec_id)["caller_number"] == NUMBER


def test_unbound_device_key_is_the_documented_gap(tmp_path: Path) -> None:
    """key_binding = "none": the card alone opens everything, and the store says so."""
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "card"), key_binding="none"))
    store = open_store(config)
    assert store.keys is not None and store.keys.binding_kind is None
    assert "another computer opens every recording" in (store.keys.unbound_warning or "")
    rec_id = record(store, speech_like(0.5, seed=6))
    store.close()
    shutil.copytree(tmp_path / "card", tmp_path / "elsewhere")
    thief = Config(storage=StorageConfig(data_dir=str(tmp_path / "elsewhere"),
                                         key_binding="none"))
    assert read_recording_sidecar(thief, rec_id)["caller_number"] == NUMBER


def _key_line(text: str) -> str:
    b32 = next(s for s in text.splitlines() if s.startswith("key: "))[5:].replace(" ", "")
    return b32 + "=" * (-len(b32) % 8)


def _backup(config: Config) -> str:
    store = open_store(config)
    try:
        assert store.keys is not None
        return store.keys.export_device_key()
    finally:
        store.close()
