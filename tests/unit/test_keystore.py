"""Device key and wrapped per-recording keys: permissions, atomicity, erasure, backup, and a
"stolen media" check of the whole encrypted layout."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from callrec.storage.crypto import (
    CryptoError,
    EncryptedReader,
    EncryptedWriter,
    decrypt_blob,
    encrypt_blob,
)
from callrec.storage.keystore import (
    WRAPPED_KEY_FILE_BYTES,
    DeviceKeyCorrupt,
    DeviceKeyMissing,
    KeyExists,
    KeyFileCorrupt,
    KeyStore,
    WrongDeviceKey,
    restore_device_key,
)

REC = "20261129T100000Z-0123abcd"
OTHER = "20261129T100500Z-89abcdef"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    """(data volume's key folder, device key path on 'internal' storage)."""
    return tmp_path / "usb" / "keys", tmp_path / "var" / "lib" / "callrec" / "keys" / "device.key"


@pytest.fixture
def store(paths: tuple[Path, Path]) -> KeyStore:
    return KeyStore(*paths)


# -- device key ------------------------------------------------------------------------------
def test_device_key_created_private(store: KeyStore, paths: tuple[Path, Path]) -> None:
    keys_dir, dev = paths
    assert dev.exists() and mode(dev) == 0o600
    assert mode(dev.parent) == 0o700 and mode(keys_dir) == 0o700
    assert dev.stat().st_uid == os.geteuid()
    assert dev.stat().st_size == 48
    assert [p.name for p in dev.parent.iterdir()] == ["device.key"]  # no temporary left
    assert len(store.device_key_id) == 16


def test_device_key_reused_not_replaced(store: KeyStore, paths: tuple[Path, Path]) -> None:
    before = paths[1].read_bytes()
    again = KeyStore(*paths)
    assert again.device_key_id == store.device_key_id
    assert paths[1].read_bytes() == before


def test_device_key_creation_is_atomic(paths: tuple[Path, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash before the key is linked into place leaves no key file and no temporary."""
    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(OSError, match="power cut"):
        KeyStore(*paths)
    assert list(paths[1].parent.iterdir()) == []
    monkeypatch.undo()
    KeyStore(*paths)
    assert paths[1].stat().st_size == 48


def test_loose_permissions_tightened(store: KeyStore, paths: tuple[Path, Path],
                                     caplog: pytest.LogCaptureFixture) -> None:
    dev = paths[1]
    dev.chmod(0o644)
    dev.parent.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        KeyStore(*paths)
    assert mode(dev) == 0o600 and mode(dev.parent) == 0o700
    assert "readable by others" in caplog.text


def test_device_key_must_not_be_on_removable_volume(tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    with pytest.raises(ValueError, match="removable"):
        KeyStore(usb / "keys", usb / "private" / "device.key", removable_root=usb)
    (tmp_path / "link").symlink_to(usb, target_is_directory=True)
    usb.mkdir(exist_ok=True)
    with pytest.raises(ValueError, match="removable"):
        KeyStore(usb / "keys", tmp_path / "link" / "device.key", removable_root=usb)
    KeyStore(usb / "keys", tmp_path / "var" / "device.key", removable_root=usb)


def test_missing_device_key_with_recordings_is_an_error(store: KeyStore,
                                                        paths: tuple[Path, Path]) -> None:
    store.new_key(REC)
    paths[1].unlink()
    with pytest.raises(DeviceKeyMissing, match="cannot be decrypted") as err:
        KeyStore(*paths)
    assert "1 recording keys exist" in str(err.value)
    assert not paths[1].exists()  # no new key silently made


def test_missing_device_key_not_created_when_told(paths: tuple[Path, Path]) -> None:
    with pytest.raises(DeviceKeyMissing):
        KeyStore(*paths, create_device_key=False)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "other"])
def test_corrupt_device_key(store: KeyStore, paths: tuple[Path, Path], damage: str) -> None:
    dev = paths[1]
    raw = bytearray(dev.read_bytes())
    if damage == "truncate":
        raw = raw[:40]
    elif damage == "flip":
        raw[20] ^= 1
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"x" * 48)
    dev.write_bytes(bytes(raw))
    with pytest.raises(DeviceKeyCorrupt, match="cannot be decrypted"):
        KeyStore(*paths)


# -- recording keys --------------------------------------------------------------------------
def test_new_key_and_key_for(store: KeyStore, paths: tuple[Path, Path]) -> None:
    key = store.new_key(REC)
    assert len(key) == 32
    assert store.key_for(REC) == key
    assert KeyStore(*paths).key_for(REC) == key  # durable, reopened
    assert store.key_for(OTHER) is None
    assert store.has_key(REC) and not store.has_key(OTHER)
    assert list(store.ids()) == [REC]
    path = paths[0] / REC[:6] / f"{REC}.key"
    assert path.stat().st_size == WRAPPED_KEY_FILE_BYTES and mode(path) == 0o600
    assert key not in path.read_bytes()
    with pytest.raises(KeyExists):
        store.new_key(REC)
    assert store.key_for(REC) == key


def test_keys_are_distinct(store: KeyStore) -> None:
    ids = [f"20261129T1000{i:02d}Z-0123abcd" for i in range(20)]
    keys = {store.new_key(i) for i in ids}
    assert len(keys) == 20
    assert list(store.ids()) == ids


def test_keys_on_a_volume_without_hard_links(paths: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A FAT/exFAT USB stick has no hard links: keys are still created, never replaced."""
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    store = KeyStore(*paths)
    key = store.new_key(REC)
    assert store.key_for(REC) == key
    with pytest.raises(KeyExists):
        store.new_key(REC)
    assert store.key_for(REC) == key
    assert sorted(p.name for p in (paths[0] / REC[:6]).iterdir()) == [f"{REC}.key"]


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "a..b", "x" * 200, "a b"])
def test_bad_names_refused(store: KeyStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.new_key(name)
    with pytest.raises(ValueError):
        store.key_for(name)


def test_tampered_or_moved_key_file(store: KeyStore, paths: tuple[Path, Path]) -> None:
    store.new_key(REC)
    src = paths[0] / REC[:6] / f"{REC}.key"
    raw = bytearray(src.read_bytes())
    raw[-1] ^= 1
    src.write_bytes(bytes(raw))
    with pytest.raises(KeyFileCorrupt, match="cannot be decrypted"):
        store.key_for(REC)
    raw[-1] ^= 1
    (paths[0] / OTHER[:6]).mkdir(exist_ok=True)
    (paths[0] / OTHER[:6] / f"{OTHER}.key").write_bytes(bytes(raw))  # another recording's key
    with pytest.raises(KeyFileCorrupt):
        store.key_for(OTHER)
    src.write_bytes(bytes(raw[:10]))
    with pytest.raises(KeyFileCorrupt):
        store.key_for(REC)


def test_key_from_another_device(tmp_path: Path, store: KeyStore,
                                 paths: tuple[Path, Path]) -> None:
    store.new_key(REC)
    other = KeyStore(tmp_path / "other-keys", tmp_path / "other" / "device.key")
    (tmp_path / "other-keys" / REC[:6]).mkdir()
    src = paths[0] / REC[:6] / f"{REC}.key"
    (tmp_path / "other-keys" / REC[:6] / f"{REC}.key").write_bytes(src.read_bytes())
    with pytest.raises(WrongDeviceKey, match=store.device_key_id):
        other.key_for(REC)


# -- crypto-erasure --------------------------------------------------------------------------
def test_destroy_makes_recording_unreadable(tmp_path: Path, store: KeyStore,
                                            paths: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    key = store.new_key(REC)
    audio = tmp_path / "a.enc"
    with EncryptedWriter(audio, key, REC) as w:
        w.write(b"\x01\x02" * 8000)
    sidecar = encrypt_blob(key, b'{"caller_number": "0612345678"}', REC.encode())
    key_file = paths[0] / REC[:6] / f"{REC}.key"
    remnant = key_file.read_bytes()  # what wear levelling might keep on flash
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    assert store.destroy(REC) is True
    assert synced  # overwrite and directory entry made durable
    assert not key_file.exists()
    assert store.key_for(REC) is None
    assert store.destroy(REC) is False
    assert KeyStore(*paths).key_for(REC) is None
    # nothing left on the volume opens the audio or the sidecar
    assert key not in remnant
    for candidate in (remnant, remnant[-48:-16], os.urandom(32)):
        bad = candidate[:32].ljust(32, b"\0")
        with pytest.raises(CryptoError):  # WrongKey
            EncryptedReader(audio, bad, REC)
        with pytest.raises(CryptoError):
            decrypt_blob(bad, sidecar, REC.encode())
    # the remnant is useless once the device key is destroyed too
    key_file.write_bytes(remnant)
    assert store.key_for(REC) == key  # (the documented limit: remnant + device key)
    assert store.destroy_device_key() is True
    assert not paths[1].exists()
    with pytest.raises(DeviceKeyMissing):
        KeyStore(*paths)
    fresh = KeyStore(paths[0] / "elsewhere", paths[1])
    key_file_copy = paths[0] / "elsewhere" / REC[:6] / f"{REC}.key"
    key_file_copy.parent.mkdir()
    key_file_copy.write_bytes(remnant)
    with pytest.raises(WrongDeviceKey):
        fresh.key_for(REC)


# -- backup ----------------------------------------------------------------------------------
def test_export_and_restore(tmp_path: Path, store: KeyStore, paths: tuple[Path, Path]) -> None:
    key = store.new_key(REC)
    text = store.export_device_key()
    assert "WARNING" in text and store.device_key_id in text
    paths[1].unlink()  # the appliance's storage died
    with pytest.raises(DeviceKeyMissing):
        KeyStore(*paths)
    with pytest.raises(DeviceKeyCorrupt):
        restore_device_key(text.replace("key: ", "key: AAAA"), paths[1])
    lines = text.splitlines()
    keyline = next(i for i, s in enumerate(lines) if s.startswith("key: "))
    last = lines[keyline][-1]
    lines[keyline] = lines[keyline][:-1] + ("A" if last != "A" else "B")
    with pytest.raises(DeviceKeyCorrupt):
        restore_device_key("\n".join(lines), paths[1])
    with pytest.raises(DeviceKeyCorrupt):
        restore_device_key("nothing here", paths[1])
    assert restore_device_key(text, paths[1]) == store.device_key_id
    assert mode(paths[1]) == 0o600
    assert KeyStore(*paths).key_for(REC) == key
    with pytest.raises(FileExistsError):
        restore_device_key(text, paths[1])


# -- stolen media ----------------------------------------------------------------------------
def windows(data: bytes, size: int = 64) -> set[bytes]:
    return {data[i : i + size] for i in range(len(data) - size + 1)}


def test_stolen_media_reveals_no_audio_and_no_numbers(tmp_path: Path) -> None:
    """Write recordings the way the recorder will, then read the volume as a thief would."""
    volume = tmp_path / "usb"  # the removable data directory
    internal = tmp_path / "internal" / "keys" / "device.key"
    store = KeyStore(volume / "keys", internal, removable_root=volume)
    number = "+33612345678"
    name = "Jeanne Dupont"
    pcm_all = b""
    for i, rec_id in enumerate((REC, OTHER)):
        # a tone plus noise: realistic audio, and every 64-byte window distinct
        pcm = b"".join(
            ((j * 131 + i * 7919 + (j * j) % 251) % 30000 - 15000).to_bytes(2, "little",
                                                                               signed=True)
            for j in range(3 * 8000 + 123)
        )
        pcm_all += pcm
        key = store.new_key(rec_id)
        folder = volume / "recordings" / "2026" / "11"
        folder.mkdir(parents=True, exist_ok=True)
        w = EncryptedWriter(folder / f"{rec_id}.enc", key, rec_id)
        for k in range(0, len(pcm), 1600):
            w.write(pcm[k : k + 1600])
            w.sync()
        if i == 0:
            w.close()
        else:
            w.abort()  # one interrupted by a power cut
        meta = {"id": rec_id, "caller_number": number, "caller_name": name}
        (folder / f"{rec_id}.json.enc").write_bytes(
            encrypt_blob(key, json.dumps(meta).encode(), rec_id.encode())
        )
    device_key = internal.read_bytes()[8:40]

    secrets_ = [number.encode(), number[1:].encode(), number[3:].encode(), b"0612345678",
                number.encode("utf-16-le"), name.encode(), name.encode("utf-16-le")]
    pcm_windows = windows(pcm_all)
    files = [p for p in volume.rglob("*") if p.is_file()]
    assert len(files) == 6  # 2 audio, 2 sidecars, 2 wrapped keys
    for path in files:
        raw = path.read_bytes()
        assert not (windows(raw) & pcm_windows), path
        for s in secrets_:
            assert s not in raw, (path, s)
        assert device_key not in raw
        for rec_id in (REC, OTHER):
            assert (store.key_for(rec_id) or b"") not in raw
    assert not any(p.is_relative_to(volume) for p in internal.parent.rglob("*"))
    # and the owner, with the device key, gets everything back
    with EncryptedReader(volume / "recordings/2026/11" / f"{REC}.enc",
                         store.key_for(REC) or b"", REC) as r:
        assert r.read_all() == pcm_all[: len(pcm_all) // 2]
