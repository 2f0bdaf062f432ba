"""Device key and wrapped per-recording keys: permissions, atomicity, erasure, backup, and a
"stolen media" check of the whole encrypted layout."""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import stat
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from callrec.config import StorageConfig
from callrec.storage.crypto import (
    CryptoError,
    EncryptedReader,
    EncryptedWriter,
    decrypt_blob,
    encrypt_blob,
)
from callrec.storage.key_binding import (
    IOCTL_MBOX_PROPERTY,
    FileBinding,
    OtpBinding,
    OtpNotProvisioned,
    OtpUnavailable,
    binding_for,
    pack_otp_request,
    read_otp_private_key,
)
from callrec.storage.keystore import (
    WRAPPED_KEY_FILE_BYTES,
    DeviceKeyCorrupt,
    DeviceKeyMissing,
    HardwareSecretError,
    KeyExists,
    KeyFileCorrupt,
    KeyStore,
    WrongDeviceKey,
    WrongHardwareSecret,
    bound_kind,
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


# -- hardware binding of the device key ------------------------------------------------------
# The example of the Raspberry Pi documentation (device-specific private key): what
# `vcmailbox 0x00030081 40 40 0 8 0 0 0 0 0 0 0 0` answers, and what `rpi-otp-private-key`
# prints for that answer.
DOC_ANSWER = [0x00000040, 0x80000000, 0x00030081, 0x00000028, 0x80000028, 0x00000000,
              0x00000008, 0xF8DBC7B0, 0xA4FCFB1D, 0x706E298A, 0xC9D0485C, 0x2226CE8D,
              0xF7F7596A, 0xC77337BD, 0x09FBE160, 0x00000000]
DOC_KEY_HEX = "f8dbc7b0a4fcfb1d706e298ac9d0485c2226ce8df7f7596ac77337bd09fbe160"


class FakeVcio:
    """Stands for the kernel's /dev/vcio ioctl: checks the request, writes the answer."""

    def __init__(self, answer: list[int] | None = None, error: int | None = None) -> None:
        self.answer = answer if answer is not None else list(DOC_ANSWER)
        self.error = error
        self.requests: list[list[int]] = []

    def __call__(self, fd: int, request: int, buf: bytearray, mutate: bool) -> int:
        assert request == IOCTL_MBOX_PROPERTY and mutate is True
        self.requests.append(list(struct.unpack(f"={len(buf) // 4}I", buf)))
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))
        struct.pack_into(f"={len(self.answer)}I", buf, 0, *self.answer)
        return 0


def with_key(words: list[int]) -> list[int]:
    return DOC_ANSWER[:7] + words + [0]


@pytest.fixture
def vcio(tmp_path: Path) -> Path:
    device = tmp_path / "vcio"  # a plain file: the fake ioctl does the firmware's part
    device.write_bytes(b"")
    return device


def test_otp_mailbox_request_and_answer(vcio: Path) -> None:
    fake = FakeVcio()
    assert read_otp_private_key(vcio, fake) == bytes.fromhex(DOC_KEY_HEX)
    # word for word the buffer of `vcmailbox 0x00030081 40 40 0 8 0 0 0 0 0 0 0 0`
    assert fake.requests == [[64, 0, 0x00030081, 40, 40, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
    assert pack_otp_request() == bytearray(struct.pack("=16I", *fake.requests[0]))
    # _IOWR(100, 0, char *): 0xc0046400 on 32-bit, 0xc0086400 on 64-bit Raspberry Pi OS
    assert IOCTL_MBOX_PROPERTY in (0xC0046400, 0xC0086400)


@pytest.mark.parametrize(("answer", "message"), [
    ([*DOC_ANSWER[:1], 0x80000001, *DOC_ANSWER[2:]], "refused"),
    ([*DOC_ANSWER[:4], 0x00000028, *DOC_ANSWER[5:]], "does not know"),  # tag not answered
    ([*DOC_ANSWER[:6], 4, *DOC_ANSWER[7:]], "unexpected"),
])
def test_otp_mailbox_errors(vcio: Path, answer: list[int], message: str) -> None:
    with pytest.raises(OtpUnavailable, match=message):
        read_otp_private_key(vcio, FakeVcio(answer))


def test_otp_device_missing_or_refused(tmp_path: Path, vcio: Path) -> None:
    with pytest.raises(OtpUnavailable, match="not a Raspberry Pi"):
        read_otp_private_key(tmp_path / "no-vcio", FakeVcio())
    with pytest.raises(OtpUnavailable, match="failed"):
        read_otp_private_key(vcio, FakeVcio(error=errno.EINVAL))


def test_unprovisioned_otp_is_refused_with_how_to(paths: tuple[Path, Path], vcio: Path) -> None:
    otp = OtpBinding(vcio, FakeVcio(with_key([0] * 8)))
    with pytest.raises(OtpNotProvisioned, match="rpi-otp-private-key -w") as err:
        KeyStore(*paths, binding=otp)
    assert "IRREVERSIBLE" in str(err.value) and 'key_binding = "file"' in str(err.value)
    assert not paths[1].exists()  # no device key made unbound behind the technician's back


def test_otp_bound_device_key(paths: tuple[Path, Path], vcio: Path) -> None:
    store = KeyStore(*paths, binding=OtpBinding(vcio, FakeVcio()))
    key = store.new_key(REC)
    raw = paths[1].read_bytes()
    assert raw.startswith(b"CRDEVK02") and len(raw) == 93 and mode(paths[1]) == 0o600
    assert store.binding_kind == "otp" and store.unbound_warning is None
    assert bound_kind(paths[1]) == "otp"
    again = KeyStore(*paths, binding=OtpBinding(vcio, FakeVcio()))
    assert again.key_for(REC) == key and again.device_key_id == store.device_key_id
    # another Pi (another OTP key): named as such, not as damage
    other_pi = OtpBinding(vcio, FakeVcio(with_key(list(range(1, 9)))))
    with pytest.raises(WrongHardwareSecret, match="another recorder"):
        KeyStore(*paths, binding=other_pi)
    # the same card in a Pi whose OTP is blank, or without /dev/vcio: refused, key kept
    for otp in (OtpBinding(vcio, FakeVcio(with_key([0] * 8))),
                OtpBinding(vcio.parent / "none", FakeVcio())):
        with pytest.raises(HardwareSecretError, match="cannot be read"):
            KeyStore(*paths, binding=otp)
    assert paths[1].read_bytes() == raw


def test_file_bound_device_key(paths: tuple[Path, Path], tmp_path: Path) -> None:
    secret_file = tmp_path / "sim" / "board-otp.key"
    store = KeyStore(*paths, binding=FileBinding(secret_file))
    key = store.new_key(REC)
    assert secret_file.stat().st_size == 32 and mode(secret_file) == 0o600
    assert mode(secret_file.parent) == 0o700
    secret = secret_file.read_bytes()
    raw = paths[1].read_bytes()
    device_key = bytes.fromhex(_export_hex(store))
    for blob in (raw, secret):
        assert device_key not in blob
    assert KeyStore(*paths, binding=FileBinding(secret_file)).key_for(REC) == key

    # The secret's medium not mounted: an error, never a new secret nor a new device key.
    secret_file.unlink()
    with pytest.raises(HardwareSecretError, match="does not exist"):
        KeyStore(*paths, binding=FileBinding(secret_file))
    assert not secret_file.exists() and paths[1].read_bytes() == raw
    # Another secret: refused as such.
    secret_file.write_bytes(os.urandom(32))
    with pytest.raises(WrongHardwareSecret, match="another file secret"):
        KeyStore(*paths, binding=FileBinding(secret_file))
    secret_file.write_bytes(secret[:20])
    with pytest.raises(HardwareSecretError, match="damaged"):
        KeyStore(*paths, binding=FileBinding(secret_file))
    secret_file.write_bytes(secret)
    # "none" or another kind configured: the wrapped key is not opened, and says how to fix it.
    with pytest.raises(HardwareSecretError, match='key_binding = "file"'):
        KeyStore(*paths)
    with pytest.raises(HardwareSecretError, match="kind file"):
        KeyStore(*paths, binding=OtpBinding(tmp_path / "vcio", FakeVcio()))
    # A damaged wrapped key file: damage, not a wrong secret.
    damaged = bytearray(raw)
    damaged[-1] ^= 1
    paths[1].write_bytes(bytes(damaged))
    with pytest.raises(DeviceKeyCorrupt, match="does not authenticate"):
        KeyStore(*paths, binding=FileBinding(secret_file))
    paths[1].write_bytes(raw[:50])
    with pytest.raises(DeviceKeyCorrupt):
        KeyStore(*paths, binding=FileBinding(secret_file))


def _export_hex(store: KeyStore) -> str:
    """The device key itself, from the owner's backup text."""
    line = next(s for s in store.export_device_key().splitlines() if s.startswith("key: "))
    b32 = line[5:].replace(" ", "")
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))[:32].hex()


def test_legacy_unwrapped_key_is_wrapped_in_place(paths: tuple[Path, Path], tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    legacy = KeyStore(*paths)  # as before binding existed
    key = legacy.new_key(REC)
    old = paths[1].read_bytes()
    assert old.startswith(b"CRDEVK01") and bound_kind(paths[1]) is None
    inode = paths[1].stat().st_ino
    secret_file = tmp_path / "sim" / "board-otp.key"
    with caplog.at_level(logging.WARNING):
        bound = KeyStore(*paths, binding=FileBinding(secret_file))
    assert "now wrapped" in caplog.text
    assert bound.device_key_id == legacy.device_key_id and bound.key_for(REC) == key
    new = paths[1].read_bytes()
    assert new.startswith(b"CRDEVK02") and old[8:40] not in new and mode(paths[1]) == 0o600
    assert paths[1].stat().st_ino != inode
    assert [p.name for p in paths[1].parent.iterdir()] == ["device.key"]  # no copy left
    assert KeyStore(*paths, binding=FileBinding(secret_file)).key_for(REC) == key
    with pytest.raises(HardwareSecretError):  # and it no longer opens without the secret
        KeyStore(*paths)


def test_rewrap_interrupted_keeps_a_usable_key(paths: tuple[Path, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut during the re-wrap leaves the old key in place; its spare copy is scrubbed
    at the next start."""
    key = KeyStore(*paths).new_key(REC)
    old = paths[1].read_bytes()
    secret_file = tmp_path / "sim" / "board-otp.key"

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        KeyStore(*paths, binding=FileBinding(secret_file))
    monkeypatch.undo()
    assert paths[1].read_bytes() == old
    leftovers = [p for p in paths[1].parent.iterdir() if p.name != "device.key"]
    assert [p.name.endswith(".old") for p in leftovers] == [True]  # the spare name, not a tmp
    assert KeyStore(*paths, binding=FileBinding(secret_file)).key_for(REC) == key
    assert [p.name for p in paths[1].parent.iterdir()] == ["device.key"]
    # A crash after the new file took its place, before the old copy was scrubbed: scrubbed
    # at the next start; with no device key at all, such a copy is left for the owner.
    spare = paths[1].parent / ".device.key.0badc0de.old"
    spare.write_bytes(old)
    KeyStore(*paths, binding=FileBinding(secret_file))
    assert not spare.exists()
    spare.write_bytes(old)
    wrapped = paths[1].read_bytes()
    paths[1].unlink()
    with pytest.raises(DeviceKeyMissing):
        KeyStore(*paths, binding=FileBinding(secret_file))
    assert spare.read_bytes() == old
    paths[1].write_bytes(wrapped)


def test_restore_wraps_under_the_binding(store: KeyStore, paths: tuple[Path, Path],
                                         vcio: Path) -> None:
    key = store.new_key(REC)
    text = store.export_device_key()
    paths[1].unlink()  # the old Pi died; the card goes into a new one, OTP provisioned
    otp = OtpBinding(vcio, FakeVcio())
    assert restore_device_key(text, paths[1], otp) == store.device_key_id
    assert bound_kind(paths[1]) == "otp"
    assert KeyStore(*paths, binding=OtpBinding(vcio, FakeVcio())).key_for(REC) == key
    paths[1].unlink()
    with pytest.raises(OtpNotProvisioned):
        restore_device_key(text, paths[1], OtpBinding(vcio, FakeVcio(with_key([0] * 8))))
    assert not paths[1].exists()


def test_auto_binding(tmp_path: Path, vcio: Path) -> None:
    storage = StorageConfig(data_dir=str(tmp_path / "data"))
    dev = storage.device_key_path
    blank = OtpBinding(vcio, FakeVcio(with_key([0] * 8)))
    binding, reason = binding_for(storage, otp=blank)
    assert binding is None and "not provisioned" in reason and "rpi-otp-private-key" in reason
    binding, reason = binding_for(storage, otp=OtpBinding(tmp_path / "no-vcio"))
    assert binding is None and "not a Raspberry Pi" in reason
    store = KeyStore(tmp_path / "data" / "keys", dev, binding=None, unbound_reason=reason)
    assert store.binding_kind is None and "NOT bound" in (store.unbound_warning or "")
    assert "another computer opens every recording" in store.binding_text
    # provisioned later: the next start wraps the existing key
    binding, reason = binding_for(storage, otp=OtpBinding(vcio, FakeVcio()))
    assert isinstance(binding, OtpBinding) and reason == ""
    KeyStore(tmp_path / "data" / "keys", dev, binding=binding)
    assert bound_kind(dev) == "otp"
    # once bound, "auto" never falls back to "none": a blank OTP is then an error
    binding, _ = binding_for(storage, otp=blank)
    assert binding is blank
    with pytest.raises(HardwareSecretError, match="not provisioned"):
        KeyStore(tmp_path / "data" / "keys", dev, binding=binding)
    assert binding_for(replace(storage, key_binding="none"))[0] is None
    dev.write_bytes(dev.read_bytes()[:8] + bytes([2]) + dev.read_bytes()[9:])
    with pytest.raises(HardwareSecretError, match="key_binding_file"):
        binding_for(storage, otp=blank)
