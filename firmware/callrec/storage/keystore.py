"""Keys for encryption at rest: one device key, and one wrapped data key per recording.

- The device key (32 random bytes) lives OFF the removable volume, by default in
  /var/lib/callrec/keys/device.key on the appliance's own storage: file 0600, directory 0700,
  owned by the service user, created atomically (temporary file, fsync, link into place,
  fsync of the directory) so a crash never leaves a half-written key.
- Each recording's data key (32 random bytes, see `crypto`) is stored wrapped (AES-256-GCM
  under a subkey of the device key, the recording id as associated data) in a 73-byte file
  `<keys_dir>/<id[:6]>/<id>.key`. `keys_dir` can be on the recordings' volume: the wrapped
  keys are useless without the device key, and they then travel with the recordings, so a
  backup of the device key plus the volume is a complete backup.

Crypto-erasure: `destroy(rec_id)` overwrites the wrapped key file, deletes it and fsyncs the
directory. Once it returns, the recording's audio and sidecar are unreadable even if copies of
them (or of their old blocks) remain. Limits, on flash media: wear levelling may keep old
blocks of the key file that software cannot reach; those blocks only ever held the WRAPPED
key, which cannot be opened without the device key. Destroying the device key
(`destroy_device_key`) therefore erases every recording at once; the device key's own old
blocks are on the appliance's internal storage, which is why it must never be put on the
removable volume. Keys in RAM cannot be reliably wiped from Python: erasure is about storage.

The threat this answers: the USB stick or SD card with the recordings is read in another
computer. It does not protect against someone who has both the recordings' volume and the
appliance's internal storage (or root on the running appliance).

Errors say what they mean for the recordings: a missing or corrupt device key means every
recording whose key it wraps is unreadable until the key is restored from the owner's backup
(`export_device_key` / `restore_device_key`).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from callrec.storage.aead import AESGCM, InvalidTag, hkdf_sha256
from callrec.storage.atomic_json import fsync_dir, write_durably

__all__ = [
    "DEFAULT_DEVICE_KEY_PATH",
    "DeviceKeyCorrupt",
    "DeviceKeyError",
    "DeviceKeyMissing",
    "KeyExists",
    "KeyFileCorrupt",
    "KeyStore",
    "KeyStoreError",
    "WrongDeviceKey",
    "restore_device_key",
]

log = logging.getLogger(__name__)

DEFAULT_DEVICE_KEY_PATH = Path("/var/lib/callrec/keys/device.key")
KEY_BYTES = 32

_DEVICE_MAGIC = b"CRDEVK01"
_DEVICE_FILE_BYTES = len(_DEVICE_MAGIC) + KEY_BYTES + 8  # magic | key | sha256(...)[:8]
_WRAP_MAGIC = b"CRWK"
_WRAP_VERSION = 1
_WRAP = struct.Struct("<4sB8s12s48s")  # magic, version, device key id, nonce, sealed key
WRAPPED_KEY_FILE_BYTES = _WRAP.size  # 73
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

EXPORT_WARNING = """\
WARNING: this is the master key of your call recorder. With it, anyone who also gets the
recordings' storage (USB stick or SD card) can listen to every recording and read every phone
number on it. Keep it offline (printed, or on a medium kept in a safe place), never email it
or store it in a cloud service. Without it, if the recorder's internal storage is lost or
reset, the recordings cannot be decrypted by anyone, including you."""


class KeyStoreError(Exception):
    """Base class of the key store's errors."""


class DeviceKeyError(KeyStoreError):
    """The device key cannot be used: recordings it protects cannot be decrypted."""


class DeviceKeyMissing(DeviceKeyError):
    """There is no device key file."""


class DeviceKeyCorrupt(DeviceKeyError):
    """The device key file exists but is damaged, or is not a device key."""


class WrongDeviceKey(KeyStoreError):
    """A recording's key was wrapped by another device key than the one installed."""


class KeyFileCorrupt(KeyStoreError):
    """A recording's wrapped key file is damaged: that recording cannot be decrypted."""


class KeyExists(KeyStoreError):
    """`new_key` for a recording that already has a key (replacing it would lose the audio)."""


def _hkdf(key: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return hkdf_sha256(key, info, length)


def _fingerprint(device_key: bytes) -> bytes:
    return _hkdf(device_key, b"callrec device key id v1", 8)


def _checksum(key: bytes) -> bytes:
    return hashlib.sha256(_DEVICE_MAGIC + key).digest()[:8]


def _check_name(rec_id: str) -> str:
    if not isinstance(rec_id, str) or not _NAME_RE.match(rec_id) or ".." in rec_id:
        raise ValueError(f"not a valid key name: {rec_id!r}")
    return rec_id


def _mkdir_private(directory: Path) -> None:
    """Create `directory` (and parents) with the last level 0700; tighten it if looser."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        try:
            directory.chmod(0o700)
            log.warning("key directory %s was mode %o; set to 0700", directory, mode)
        except OSError as exc:  # e.g. FAT on a USB stick: permissions are mount options
            log.info("cannot set %s to 0700: %s", directory, exc)


def _overwrite_and_unlink(path: Path) -> bool:
    """Overwrite a small file in place (best effort on flash), delete it, fsync its folder."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, secrets.token_bytes(size), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    fsync_dir(path.parent)
    return True


def _write_new_private(path: Path, data: bytes) -> None:
    """Create `path` (mode 0600) holding `data`, atomically, never replacing an existing file.

    Raises FileExistsError if it exists. A crash leaves either no file or the complete one.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_durably(fd, data)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and fails rather than replacing an existing key
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # FAT/exFAT (a USB stick) has no hard links: check, then rename. Only racy
            # against another writer, and the key store has one (it holds a lock).
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _parse_device_key(raw: bytes, where: str) -> bytes:
    if len(raw) != _DEVICE_FILE_BYTES or raw[: len(_DEVICE_MAGIC)] != _DEVICE_MAGIC:
        raise DeviceKeyCorrupt(
            f"device key {where} is damaged or not a callrec device key: recordings whose keys "
            "it protects cannot be decrypted. Restore it from the owner's backup "
            "(restore_device_key); do not create a new one while you still want them."
        )
    key = raw[len(_DEVICE_MAGIC) : len(_DEVICE_MAGIC) + KEY_BYTES]
    if not hmac.compare_digest(raw[-8:], _checksum(key)):
        raise DeviceKeyCorrupt(
            f"device key {where} fails its checksum (damaged storage): recordings whose keys "
            "it protects cannot be decrypted. Restore it from the owner's backup."
        )
    return key


class KeyStore:
    """The device key and the recordings' wrapped data keys.

    `keys_dir`: where the wrapped per-recording key files go (may be on the recordings'
    volume). `device_key_path`: the device key, which must be on the appliance's own storage.
    `removable_root`: the removable volume's mount point, if any; the store refuses a device
    key path that resolves inside it. `create_device_key`: create the device key if it does
    not exist, but only when there are no wrapped keys yet (otherwise a missing device key
    means lost recordings, and silently making a new one would hide that).
    """

    def __init__(
        self,
        keys_dir: Path,
        device_key_path: Path = DEFAULT_DEVICE_KEY_PATH,
        *,
        removable_root: Path | None = None,
        create_device_key: bool = True,
    ) -> None:
        self.keys_dir = Path(keys_dir)
        self._lock = threading.Lock()
        self.device_key_path = Path(device_key_path)
        if removable_root is not None:
            root = Path(removable_root).resolve()
            resolved = self.device_key_path.parent.resolve() / self.device_key_path.name
            if resolved == root or root in resolved.parents:
                raise ValueError(
                    f"the device key {self.device_key_path} must not be on the removable "
                    f"volume {removable_root}: whoever takes the volume would take the key"
                )
        _mkdir_private(self.keys_dir)
        _mkdir_private(self.device_key_path.parent)
        self._device_key = self._load_or_create(create_device_key)
        self._fingerprint = _fingerprint(self._device_key)
        self._wrap = AESGCM(_hkdf(self._device_key, b"callrec key wrap v1"))

    # -- device key --------------------------------------------------------------------------
    def _load_or_create(self, create: bool) -> bytes:
        path = self.device_key_path
        try:
            return self._load(path)
        except FileNotFoundError:
            pass
        existing = sum(1 for _ in self.ids())
        if existing or not create:
            raise DeviceKeyMissing(
                f"no device key at {path}"
                + (f" but {existing} recording keys exist" if existing else "")
                + ": the recordings they protect cannot be decrypted. Restore the device key "
                "from the owner's backup (restore_device_key); a new key would not open them."
            )
        key = secrets.token_bytes(KEY_BYTES)
        try:
            _write_new_private(path, _DEVICE_MAGIC + key + _checksum(key))
        except FileExistsError:  # created meanwhile by another process: use that one
            return self._load(path)
        log.warning("new device key created at %s: back it up (callrec keys export)", path)
        return key

    @staticmethod
    def _load(path: Path) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise DeviceKeyError(
                    f"device key {path} belongs to uid {st.st_uid}, not the service user "
                    f"(uid {os.geteuid()}): refusing to use a key others may control"
                )
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.fchmod(fd, 0o600)
                log.warning(
                    "device key %s was readable by others (mode %o): set to 0600; consider "
                    "the key exposed", path, stat.S_IMODE(st.st_mode)
                )
            raw = os.read(fd, _DEVICE_FILE_BYTES + 1)
        finally:
            os.close(fd)
        return _parse_device_key(raw, str(path))

    @property
    def device_key_id(self) -> str:
        """A short public fingerprint of the device key (hex), to match it with a backup."""
        return self._fingerprint.hex()

    def export_device_key(self) -> str:
        """The device key as text for the owner's offline backup, with a warning."""
        raw = self._device_key + _checksum(self._device_key)
        b32 = base64.b32encode(raw).decode().rstrip("=")
        groups = " ".join(b32[i : i + 4] for i in range(0, len(b32), 4))
        return (
            "callrec device key backup\n"
            f"{EXPORT_WARNING}\n\n"
            f"fingerprint: {self.device_key_id}\n"
            f"key: {groups}\n"
        )

    def destroy_device_key(self) -> bool:
        """Erase the device key: every recording it protects becomes unreadable, for good
        (unless the owner kept a backup). For a factory reset. The store is unusable after."""
        gone = _overwrite_and_unlink(self.device_key_path)
        self._device_key = b""
        return gone

    def derive_key(self, purpose: str) -> bytes:
        """A key for `purpose` (e.g. "index") derived from the device key: data that belongs
        to no single recording (the index) is sealed under it."""
        return _hkdf(self._device_key, b"callrec derived key v1 " + purpose.encode())

    # -- recording keys ----------------------------------------------------------------------
    def _path(self, rec_id: str) -> Path:
        _check_name(rec_id)
        return self.keys_dir / rec_id[:6] / f"{rec_id}.key"

    def _aad(self, rec_id: str) -> bytes:
        return _WRAP_MAGIC + bytes([_WRAP_VERSION]) + self._fingerprint + rec_id.encode()

    def new_key(self, rec_id: str) -> bytes:
        """A new random data key for `rec_id`, durably stored (wrapped) before it is returned.

        Raises `KeyExists` if the recording already has one. Call it before creating the
        recording's files: a crash in between leaves only an unused key.
        """
        path = self._path(rec_id)
        key = secrets.token_bytes(KEY_BYTES)
        nonce = secrets.token_bytes(12)
        sealed = self._wrap.encrypt(nonce, key, self._aad(rec_id))
        blob = _WRAP.pack(_WRAP_MAGIC, _WRAP_VERSION, self._fingerprint, nonce, sealed)
        try:
            with self._lock:
                _mkdir_private(path.parent)
                _write_new_private(path, blob)
        except FileExistsError:
            raise KeyExists(f"recording {rec_id} already has a key") from None
        return key

    def key_for(self, rec_id: str) -> bytes | None:
        """The data key of `rec_id`, or None if it has none (never created, or destroyed)."""
        path = self._path(rec_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) != WRAPPED_KEY_FILE_BYTES or raw[:4] != _WRAP_MAGIC:
            raise KeyFileCorrupt(f"key file of recording {rec_id} is damaged: it is unreadable")
        _magic, version, fingerprint, nonce, sealed = _WRAP.unpack(raw)
        if version != _WRAP_VERSION:
            raise KeyFileCorrupt(f"key file of recording {rec_id}: unknown version {version}")
        if fingerprint != self._fingerprint:
            raise WrongDeviceKey(
                f"the key of recording {rec_id} was made by another device key "
                f"({fingerprint.hex()}, installed: {self.device_key_id}): restore that device "
                "key to read this recording"
            )
        try:
            return self._wrap.decrypt(nonce, sealed, self._aad(rec_id))
        except InvalidTag:
            raise KeyFileCorrupt(
                f"key file of recording {rec_id} does not authenticate (damaged or tampered "
                "with): the recording cannot be decrypted"
            ) from None

    def has_key(self, rec_id: str) -> bool:
        return self._path(rec_id).exists()

    def destroy(self, rec_id: str) -> bool:
        """Crypto-erase `rec_id`: overwrite and delete its key file, fsync the directory.

        Returns False if there was no key. After this, nothing can decrypt the recording's
        audio or sidecar, wherever copies of them remain. Do it before deleting the files.
        """
        return _overwrite_and_unlink(self._path(rec_id))

    def ids(self) -> Iterator[str]:
        """The names that have a key, in sorted order."""
        if not self.keys_dir.is_dir():
            return
        for path in sorted(self.keys_dir.glob("*/*.key")):
            if _NAME_RE.match(path.stem):
                yield path.stem


def restore_device_key(text: str, device_key_path: Path = DEFAULT_DEVICE_KEY_PATH) -> str:
    """Install a device key from `KeyStore.export_device_key` text; returns its fingerprint.

    Refuses (FileExistsError) to replace an existing device key: move that one away first,
    knowing that recordings made with it will need it back.
    """
    match = re.search(r"^key:\s*([A-Z2-7 ]+)\s*$", text, re.MULTILINE)
    if not match:
        raise DeviceKeyCorrupt("no 'key:' line in the backup text")
    b32 = match.group(1).replace(" ", "")
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except (binascii.Error, ValueError):
        raise DeviceKeyCorrupt("the backup's key line is not valid base32") from None
    key = _parse_device_key(_DEVICE_MAGIC + raw, "backup")
    device_key_path = Path(device_key_path)
    _mkdir_private(device_key_path.parent)
    _write_new_private(device_key_path, _DEVICE_MAGIC + key + _checksum(key))
    return _fingerprint(key).hex()
