"""Keys for encryption at rest: one device key, and one wrapped data key per recording.

- The device key (32 random bytes) lives OFF the removable volume, by default in
  /var/lib/callrec/keys/device.key on the appliance's own storage: file 0600, directory 0700,
  owned by the service user, created atomically (temporary file, fsync, link into place,
  fsync of the directory) so a crash never leaves a half-written key.
- That file is on the SD card, so it is itself stored WRAPPED when a hardware binding is
  given (`key_binding`): AES-256-GCM under HKDF(hardware secret, random salt), the secret
  being the Raspberry Pi's OTP customer key or a file on another medium. The SD card read in
  another computer then holds only a sealed device key. The file records which kind of
  secret wrapped it and a short id of that secret, so a wrong or missing secret is named as
  such rather than reported as damage. The older unwrapped format (`CRDEVK01`) is still read,
  and re-wrapped in place when a binding is configured.
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
computer. Without a hardware binding it does not protect against someone who has the SD card
(the device key is on it); with one, it does not protect against someone who has the whole
recorder (the secret is in it), nor against root on the running appliance.

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
from typing import Protocol

from callrec.storage.aead import AESGCM, InvalidTag, hkdf_sha256
from callrec.storage.atomic_json import fsync_dir, write_durably

__all__ = [
    "DEFAULT_DEVICE_KEY_PATH",
    "DeviceKeyCorrupt",
    "DeviceKeyError",
    "DeviceKeyMissing",
    "HardwareSecret",
    "HardwareSecretError",
    "KeyExists",
    "KeyFileCorrupt",
    "KeyStore",
    "KeyStoreError",
    "WrongDeviceKey",
    "WrongHardwareSecret",
    "bound_kind",
    "restore_device_key",
]

log = logging.getLogger(__name__)

DEFAULT_DEVICE_KEY_PATH = Path("/var/lib/callrec/keys/device.key")
KEY_BYTES = 32

_DEVICE_MAGIC = b"CRDEVK01"
_DEVICE_FILE_BYTES = len(_DEVICE_MAGIC) + KEY_BYTES + 8  # magic | key | sha256(...)[:8]
# The device key wrapped by a hardware secret: magic, kind of secret, secret id, HKDF salt,
# GCM nonce, sealed key (32 + 16-byte tag). Everything before the nonce is associated data.
_BOUND_MAGIC = b"CRDEVK02"
_BOUND = struct.Struct("<8sB8s16s12s48s")
_BOUND_FILE_BYTES = _BOUND.size  # 93
_BOUND_HEADER_BYTES = _BOUND_FILE_BYTES - 12 - 48  # magic, kind, secret id, salt: 33
_BOUND_KINDS = {"otp": 1, "file": 2}  # the byte recorded in the file; never renumber
_KIND_NAMES = {v: k for k, v in _BOUND_KINDS.items()}
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


class HardwareSecretError(DeviceKeyError):
    """The hardware secret that wraps the device key cannot be read (absent, unprovisioned,
    not allowed): the device key, and so every recording, stays sealed until it can."""


class WrongHardwareSecret(DeviceKeyError):
    """The device key was wrapped by another hardware secret than the one this recorder has
    (the SD card was moved to another recorder, or the binding file was replaced)."""


class HardwareSecret(Protocol):
    """Where the secret that wraps the device key comes from (see `key_binding`)."""

    @property
    def kind(self) -> str:
        """"otp" or "file": recorded in the wrapped device key file."""
        ...

    def describe(self) -> str:
        """For status output and errors: what the secret is, never its value."""
        ...

    def read(self, *, create: bool) -> bytes:
        """The 32-byte secret. `create`: a file-held secret may be made now, because no device
        key depends on it yet. Raises HardwareSecretError."""
        ...


class KeyExists(KeyStoreError):
    """`new_key` for a recording that already has a key (replacing it would lose the audio)."""


def _hkdf(key: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return hkdf_sha256(key, info, length)


def _fingerprint(device_key: bytes) -> bytes:
    return _hkdf(device_key, b"callrec device key id v1", 8)


def _checksum(key: bytes) -> bytes:
    return hashlib.sha256(_DEVICE_MAGIC + key).digest()[:8]


def _secret_id(secret: bytes) -> bytes:
    # Public: 64 bits of an HKDF output say which secret wrapped the key, revealing nothing of
    # a 256-bit secret, so that "another recorder's card" is told apart from "damaged file".
    return _hkdf(secret, b"callrec hardware secret id v1", 8)


def _read_secret(binding: HardwareSecret, *, create: bool) -> bytes:
    secret = binding.read(create=create)
    if len(secret) != KEY_BYTES:
        raise HardwareSecretError(f"{binding.describe()}: {len(secret)} bytes, not {KEY_BYTES}")
    return secret


def _seal_device_key(key: bytes, binding: HardwareSecret, secret: bytes) -> bytes:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = _BOUND_MAGIC + bytes([_BOUND_KINDS[binding.kind]]) + _secret_id(secret) + salt
    wrap = AESGCM(_hkdf_salted(secret, salt))
    return header + nonce + wrap.encrypt(nonce, key, header)


def _hkdf_salted(secret: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(secret, b"callrec device key binding v1", KEY_BYTES, salt)


def bound_kind(device_key_path: Path) -> str | None:
    """The kind of hardware secret ("otp", "file") the device key file is wrapped by; None if
    it is in the unwrapped format, absent or unreadable (the key store then says why)."""
    try:
        with open(device_key_path, "rb") as f:
            head = f.read(len(_BOUND_MAGIC) + 1)
    except OSError:
        return None
    if len(head) == len(_BOUND_MAGIC) + 1 and head[:-1] == _BOUND_MAGIC:
        return _KIND_NAMES.get(head[-1], "unknown")
    return None


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


def _durable_tmp(path: Path, data: bytes) -> Path:
    """A new private (0600) temporary file beside `path` holding `data`, fsynced."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_durably(fd, data)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def check_private_fd(fd: int, path: Path, what: str, error: type[Exception]) -> None:
    """Refuse a secret file that another user owns (`error`); make one others can read
    private again, with a warning (it must be considered exposed)."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise error(f"{what} {path} belongs to uid {st.st_uid}, not the service user "
                    f"(uid {os.geteuid()}): refusing a secret others may control")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
        log.warning("%s %s was readable by others (mode %o): set to 0600; consider it "
                    "exposed", what, path, stat.S_IMODE(st.st_mode))


def _write_new_private(path: Path, data: bytes) -> None:
    """Create `path` (mode 0600) holding `data`, atomically, never replacing an existing file.

    Raises FileExistsError if it exists. A crash leaves either no file or the complete one.
    """
    tmp = _durable_tmp(path, data)
    try:
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


def _replace_private(path: Path, data: bytes) -> None:
    """Replace the small file `path` by `data` (mode 0600), atomically, then scrub the old
    content: a crash leaves the old file or the new one, both complete, never neither.

    The old inode is kept under a second name until the new file is in place, then overwritten
    and deleted (best effort: flash wear levelling may keep old blocks, see ARCHITECTURE.md);
    a leftover from a crash is scrubbed by `_scrub_leftovers` at the next start.
    """
    second_name = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
    old: Path | None = second_name
    try:
        os.link(path, second_name)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        old = None  # no second name (FAT): the old blocks are only freed, not overwritten
    tmp = _durable_tmp(path, data)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    if old is not None:
        _overwrite_and_unlink(old)


def _scrub_leftovers(path: Path) -> None:
    """Scrub copies of an old device key file that a crash during `_replace_private` left."""
    try:
        live = path.lstat()
    except FileNotFoundError:
        return  # then a leftover may be the only copy of the key: never destroy it
    for leftover in path.parent.glob(f".{path.name}.*.old"):
        st = leftover.lstat()
        if (st.st_dev, st.st_ino) == (live.st_dev, live.st_ino):
            # The crash came before the new file took the key's place: the leftover is a
            # second name of the key in use, which overwriting would destroy. Drop the name.
            leftover.unlink()
            fsync_dir(path.parent)
        else:
            _overwrite_and_unlink(leftover)
            log.warning("scrubbed an old copy of the device key left by an interrupted re-wrap")


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
    `binding`: the hardware secret the device key file is wrapped by (None: stored unwrapped,
    readable by whoever reads the SD card; `unbound_reason` then says why, for the status).
    A key in the unwrapped format is re-wrapped in place when a binding is given; a wrapped
    key is never opened without its secret, and never silently replaced.
    """

    def __init__(
        self,
        keys_dir: Path,
        device_key_path: Path = DEFAULT_DEVICE_KEY_PATH,
        *,
        removable_root: Path | None = None,
        create_device_key: bool = True,
        binding: HardwareSecret | None = None,
        unbound_reason: str = "",
    ) -> None:
        self.keys_dir = Path(keys_dir)
        self._lock = threading.Lock()
        self.device_key_path = Path(device_key_path)
        self.binding = binding
        self._unbound_reason = unbound_reason
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
        _scrub_leftovers(path)
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
            _write_new_private(path, _device_key_file(key, self.binding))
        except FileExistsError:  # created meanwhile by another process: use that one
            return self._load(path)
        log.warning("new device key created at %s (%s): back it up (callrec keys export)",
                    path, self.binding_text)
        return key

    def _load(self, path: Path) -> bytes:
        raw = self._read_file(path)
        if raw[: len(_BOUND_MAGIC)] == _BOUND_MAGIC:
            return self._unwrap(raw, path)
        key = _parse_device_key(raw, str(path))
        if self.binding is not None:
            # The unwrapped format with a binding now configured: wrap it in place, so that
            # the SD card alone stops opening the recordings from this start on.
            _replace_private(path, _device_key_file(key, self.binding))
            log.warning(
                "device key %s is now wrapped by %s; copies of the unwrapped key may survive "
                "in the SD card's old flash blocks (see ARCHITECTURE.md)",
                path, self.binding.describe(),
            )
        return key

    def _unwrap(self, raw: bytes, path: Path) -> bytes:
        if len(raw) != _BOUND_FILE_BYTES:
            raise DeviceKeyCorrupt(
                f"device key {path} is damaged (a wrapped key of {len(raw)} bytes): recordings "
                "whose keys it protects cannot be decrypted. Restore it from the owner's backup."
            )
        _magic, kind_byte, secret_id, salt, nonce, sealed = _BOUND.unpack(raw)
        kind = _KIND_NAMES.get(kind_byte, f"unknown ({kind_byte})")
        restore = (f"Otherwise move {path} away and restore the device key from the owner's "
                   "backup (callrec keys restore), which wraps it under this recorder's binding.")
        if self.binding is None:
            raise HardwareSecretError(
                f"device key {path} is bound to a hardware secret ({kind}) but no binding is "
                f"configured (storage.key_binding): set storage.key_binding = \"{kind}\". "
                + restore
            )
        if self.binding.kind != kind:
            raise HardwareSecretError(
                f"device key {path} is bound to a secret of kind {kind}, but this recorder is "
                f"configured for {self.binding.describe()}: set storage.key_binding = "
                f"\"{kind}\". " + restore
            )
        try:
            secret = _read_secret(self.binding, create=False)
        except HardwareSecretError as exc:
            raise HardwareSecretError(
                f"device key {path} is bound to {self.binding.describe()}, which cannot be "
                f"read: {exc}. Until it can, the recordings stay sealed. " + restore
            ) from None
        if not hmac.compare_digest(secret_id, _secret_id(secret)):
            raise WrongHardwareSecret(
                f"device key {path} was wrapped by another {kind} secret (id "
                f"{secret_id.hex()}) than this recorder's {self.binding.describe()} (id "
                f"{_secret_id(secret).hex()}): this SD card comes from another recorder, or "
                "the binding secret was replaced: put the card back in its own recorder. "
                + restore
            )
        header = raw[:_BOUND_HEADER_BYTES]
        try:
            return AESGCM(_hkdf_salted(secret, salt)).decrypt(nonce, sealed, header)
        except InvalidTag:
            raise DeviceKeyCorrupt(
                f"device key {path} does not authenticate under its hardware secret (damaged "
                "storage): recordings whose keys it protects cannot be decrypted. Restore it "
                "from the owner's backup."
            ) from None

    @staticmethod
    def _read_file(path: Path) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            check_private_fd(fd, path, "device key", DeviceKeyError)
            raw = os.read(fd, _BOUND_FILE_BYTES + 1)
        finally:
            os.close(fd)
        return raw

    @property
    def device_key_id(self) -> str:
        """A short public fingerprint of the device key (hex), to match it with a backup."""
        return self._fingerprint.hex()

    @property
    def binding_kind(self) -> str | None:
        """"otp" or "file" when the device key file is wrapped by a hardware secret, else None."""
        return self.binding.kind if self.binding is not None else None

    @property
    def unbound_warning(self) -> str | None:
        """The plain statement of the risk when the device key is not bound, else None."""
        if self.binding is not None:
            return None
        reason = f" ({self._unbound_reason})" if self._unbound_reason else ""
        return ("the device key is NOT bound to this recorder's hardware: the SD card read in "
                f"another computer opens every recording on it{reason}")

    @property
    def binding_text(self) -> str:
        """One line for logs and `callrec keys status`."""
        if self.binding is None:
            return self.unbound_warning or ""
        return (f"bound to {self.binding.describe()}: without it, the SD card read in another "
                "computer opens no recording")

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


def _device_key_file(key: bytes, binding: HardwareSecret | None) -> bytes:
    """The device key file's content: wrapped by the binding's secret, or (no binding) the
    unwrapped format. The binding's secret may be created here: no key depends on it yet."""
    if binding is None:
        return _DEVICE_MAGIC + key + _checksum(key)
    return _seal_device_key(key, binding, _read_secret(binding, create=True))


def restore_device_key(
    text: str,
    device_key_path: Path = DEFAULT_DEVICE_KEY_PATH,
    binding: HardwareSecret | None = None,
) -> str:
    """Install a device key from `KeyStore.export_device_key` text; returns its fingerprint.

    The key is wrapped by `binding`'s secret (None: the unwrapped format). Refuses
    (FileExistsError) to replace an existing device key: move that one away first, knowing
    that recordings made with it will need it back.
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
    _write_new_private(device_key_path, _device_key_file(key, binding))
    return _fingerprint(key).hex()
