"""Keyed pseudonyms of phone numbers, for logs and evidence that must not show a number.

`pseudonym("+33 6 12 34 56 78", key)` is "p-" + 16 hex digits of HMAC-SHA256(key, the
number's normalised form). The normalisation is the do-not-record list's (digits only, the
international forms of a French number reduced to the national one), so every way of writing
one number gives one pseudonym: a privacy officer can find the refusal evidence and access log
entries of a person from the number they give, and nothing else can go from a pseudonym back
to the number.

Why keyed, not a plain hash: phone numbers are a small space (a French mobile number is one of
10^9), so an unkeyed hash is reversed by trying them all in minutes. With a key, whoever holds
the log without the key learns only which entries concern the same person.

The key: with encryption at rest, one derived from the device key (`derive_key("pseudonym-v1")`),
so it is as protected as the recordings and a backup of the device key keeps the pseudonyms
stable. With encryption off there is no device key: a 32-byte random secret in
`<data_dir>/keys/pseudonym.key` (0600), made on first use. Erasing a person's recordings leaves
their pseudonym in the logs: that is the point (the log must still show what was done), and it
is not the number.

64 bits of output: collisions between the numbers one office meets (thousands) are negligible
(~10^-11), and shorter is easier to read and to quote in a request.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from callrec.privacy.donotrecord import normalise_number
from callrec.storage.atomic_json import fsync_dir, write_durably

if TYPE_CHECKING:
    from callrec.storage.keystore import KeyStore

__all__ = [
    "KEY_PURPOSE", "Pseudonymizer", "is_pseudonym", "local_secret", "pseudonym", "pseudonym_key",
]

KEY_PURPOSE = "pseudonym-v1"
SECRET_BYTES = 32
PREFIX = "p-"
HEX_DIGITS = 16


def pseudonym(number: str, key: bytes) -> str:
    """The pseudonym of `number` under `key`; ValueError if it holds no digit."""
    normalised = normalise_number(number)
    if not normalised:
        raise ValueError("not a phone number: no digit")
    digest = hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]


def is_pseudonym(text: str) -> bool:
    """True for text shaped like a pseudonym ("p-" and 16 lowercase hex digits)."""
    rest = text[len(PREFIX):]
    return (text.startswith(PREFIX) and len(rest) == HEX_DIGITS
            and all(c in "0123456789abcdef" for c in rest))


class Pseudonymizer:
    """`pseudonym()` bound to this recorder's key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key needs at least 128 bits")
        self._key = key

    def __call__(self, number: str) -> str:
        return pseudonym(number, self._key)


def local_secret(path: Path) -> bytes:
    """The 32-byte secret in `path`, made on first use (0600, in a 0700 folder).

    Creation is atomic and never replaces an existing secret: a temporary file is written and
    fsynced, then hard-linked into place; if another process linked its own first, that one
    is read. A file of the wrong size is refused rather than replaced: replacing it would
    silently change every pseudonym (or access log seal) made so far.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_durably(fd, secrets.token_bytes(SECRET_BYTES))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                raise
            # No hard links (FAT): O_EXCL-free rename, racy only between two first uses.
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise ValueError(f"{path}: expected {SECRET_BYTES} bytes, found {len(data)}; restore "
                         "it from a backup (a new secret would change what it protects)")
    return data


def pseudonym_key(keys: KeyStore | None, data_dir: Path) -> bytes:
    """This recorder's pseudonym key: from the device key, else the local secret file."""
    if keys is not None:
        return keys.derive_key(KEY_PURPOSE)
    return local_secret(Path(data_dir) / "keys" / "pseudonym.key")
