"""A TinyDB storage that never leaves a half-written index behind.

TinyDB's JSONStorage rewrites its file in place, so a power cut mid-write leaves a truncated or
trailing-garbage file. Here every write goes to a temporary file that is fsync'ed, renamed over
the old one, and the directory fsync'ed: after a crash the file is either the old or the new one.
With a `Sealer` (encryption at rest) the file holds the JSON sealed with AES-256-GCM; a plain
JSON file (written before encryption was turned on) is still read, and sealed at its next write.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinydb.storages import Storage

if TYPE_CHECKING:
    from callrec.storage.crypto import Sealer


def write_durably(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less) and fsync it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content.

    The temporary file is `.<name>.tmp` in the same directory (same file system: the rename
    is atomic; a fixed name: one left by a power cut is reused, never piled up), given `mode`
    (and `owner`, as root) before its data, fsynced, renamed, then the directory fsynced. A
    failure leaves the old file and no temporary one. Callers serialise their own writers.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            write_durably(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CorruptIndex(ValueError):
    """The index file exists but is not a valid TinyDB document."""


def logical_name(path: Path) -> str:
    """The name a sealed file is bound to: a shard's .prev is the same shard."""
    return path.name.removesuffix(".prev")


def unseal(raw: bytes, path: Path, sealer: Sealer | None) -> bytes:
    """The JSON bytes of a file that may be sealed; raises CorruptIndex if it cannot be
    opened (damaged, another device's key, or sealed while no key was given)."""
    from callrec.storage.crypto import CryptoError, Sealer

    if not Sealer.is_sealed(raw):
        return raw
    if sealer is None:
        raise CorruptIndex(f"{path}: encrypted, and encryption is turned off")
    try:
        return sealer.open(raw, logical_name(path))
    except CryptoError as exc:
        raise CorruptIndex(f"{path}: {exc}") from None


def seal(payload: bytes, path: Path, sealer: Sealer | None) -> bytes:
    return sealer.seal(payload, logical_name(path)) if sealer is not None else payload


class AtomicJSONStorage(Storage):
    """TinyDB storage: whole-file JSON, written atomically, validated when read."""

    def __init__(self, path: str | os.PathLike[str], sealer: Sealer | None = None) -> None:
        self.path = Path(path)
        self.sealer = sealer
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw:
            return None
        raw = unseal(raw, self.path, self.sealer)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptIndex(f"{self.path}: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            raise CorruptIndex(f"{self.path}: not a TinyDB document")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        write_atomic(self.path, seal(payload, self.path, self.sealer))

    def close(self) -> None:
        pass
