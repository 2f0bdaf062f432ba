"""The do-not-record list: numbers and prefixes of people who objected to being recorded.

Two parts. `Matcher` and the `normalise_*` functions are pure: the call flow asks "is this
caller ID / these dialled digits on the list?" with no I/O. `DoNotRecord` is the small store
behind it: one JSON document, written atomically (temporary file, fsync, rename) and sealed
with AES-256-GCM under a key derived from the device key when encryption at rest is on, since
the list is made of phone numbers. Writers (web UI, CLI, daemon) take an fcntl lock around
read-modify-write; readers notice a changed file with `refresh()` (one stat).

How numbers are compared (French numbering plan, the line's country): only digits count
(`phone_key`), and the international forms of a French number are reduced to its national
form, so that an objection entered as "+33 6 12 34 56 78" matches a caller ID "0612345678"
and the other way round:

    +33 6 12 34 56 78, 0033 612345678, 33612345678, +33 (0)6 12 34 56 78  ->  0612345678

A bare "33" + nine digits is taken as international only when the national number would not
start with 0 (French exchanges send caller ID nationally; an 11-digit "33..." is not a French
national number). Prefixes are reduced the same way ("+33 1" -> "01"), so a prefix matches
every number that starts with it in national form. Other countries' numbers are compared by
their digits as given. Digits a PBX needs for an outside line are not stripped: list the
number as it is dialled if the office dials through one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec.storage.atomic_json import CorruptIndex, seal, unseal, write_atomic
from callrec.storage.index_shards import phone_key

if TYPE_CHECKING:
    from callrec.storage.crypto import Sealer
    from callrec.storage.keystore import KeyStore

KINDS = ("number", "prefix")
KEY_PURPOSE = "donotrecord-v1"
FORMAT_VERSION = 1
# A French national number: 0 + 9 digits; its international form drops the 0 after 33.
_FR_NATIONAL_DIGITS = 9
_ONLY_DIALLABLE = re.compile(r"^[\d\s+().\-/]+$")


class DoNotRecordError(ValueError):
    """A list entry that cannot be used (no digits, unknown kind) or an unreadable list."""


def _to_national(digits: str, international: bool) -> str:
    """Reduce the international forms of a French number (or prefix) to the national one."""
    if digits.startswith("0033"):
        digits, international = digits[2:], True
    if digits.startswith("33") and (international or len(digits) == 2 + _FR_NATIONAL_DIGITS):
        rest = digits[2:]
        if rest.startswith("0"):  # "+33 (0)6 ..." written with the trunk 0 kept
            rest = rest[1:]
        if international or not rest.startswith("0"):
            return "0" + rest
    return digits


def normalise_number(raw: object) -> str:
    """The comparable form of a phone number ("" when it holds no digit)."""
    if not isinstance(raw, str):
        return ""
    digits = phone_key(raw)
    if not digits:
        return ""
    return _to_national(digits, raw.strip().startswith("+"))


def normalise_prefix(raw: object) -> str:
    """The comparable form of a prefix: as a number, but "+33" alone is "0" (every French
    number) and "33" without "+" stays digits (it may be a national prefix elsewhere)."""
    if not isinstance(raw, str):
        return ""
    digits = phone_key(raw)
    if not digits:
        return ""
    international = raw.strip().startswith("+") or digits.startswith("0033")
    if not international:
        return digits
    return _to_national(digits, True)


@dataclass(frozen=True)
class Entry:
    value: str  # normalised digits
    kind: str  # "number" or "prefix"
    reason: str = ""  # e.g. "objection, request 2026-031": never the person's name
    added_at: str = ""


@dataclass(frozen=True)
class Matcher:
    """The pure decision: is a number on the list?"""

    numbers: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Matcher:
        listed = list(entries)
        return cls(
            frozenset(e.value for e in listed if e.kind == "number"),
            tuple(sorted({e.value for e in listed if e.kind == "prefix"})),
        )

    def matches(self, number: object) -> bool:
        """True if `number` (caller ID or dialled digits, any common format) is listed
        exactly or starts with a listed prefix. A withheld number (None, "") never matches."""
        n = normalise_number(number)
        return bool(n) and (n in self.numbers or n.startswith(self.prefixes))


def sealer_for(keys: KeyStore | None) -> Sealer | None:
    """The list's sealer: a key derived from the device key (None: encryption is off)."""
    if keys is None:
        return None
    from callrec.storage.crypto import Sealer

    return Sealer(keys.derive_key(KEY_PURPOSE))


class DoNotRecord:
    """The list on disk and its matcher. Load with `DoNotRecord.load(path, sealer)`."""

    def __init__(self, path: Path, sealer: Sealer | None, entries: list[Entry],
                 stamp: tuple[int, int, int] | None) -> None:
        self.path, self.sealer = path, sealer
        self._entries = entries
        self._stamp = stamp
        self.matcher = Matcher.of(entries)

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], sealer: Sealer | None) -> DoNotRecord:
        """The list at `path` (empty if the file does not exist yet). Raises
        DoNotRecordError if it exists but cannot be read (damaged, another device's key)."""
        p = Path(path)
        entries, stamp = _read(p, sealer)
        return cls(p, sealer, entries, stamp)

    def refresh(self) -> bool:
        """Reload if another process changed the file; True if it did. An unreadable file
        keeps the list in memory (never silently an empty list: that would record objectors)."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._entries, self._stamp = _read(self.path, self.sealer)
        self.matcher = Matcher.of(self._entries)
        return True

    def matches(self, number: object) -> bool:
        return self.matcher.matches(number)

    def entries(self) -> list[Entry]:
        return list(self._entries)

    # -- changing --------------------------------------------------------------------------
    def add(self, number_or_prefix: str, kind: str = "number", reason: str = "") -> Entry:
        """Put a number (or a prefix) on the list and save it; adding one already listed
        keeps the first entry. Returns the entry."""
        if kind not in KINDS:
            raise DoNotRecordError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        value = _valid(number_or_prefix, kind)
        with self._locked():
            for entry in self._entries:
                if (entry.value, entry.kind) == (value, kind):
                    return entry
            entry = Entry(value, kind, reason, datetime.now(UTC).isoformat(timespec="seconds"))
            self._save([*self._entries, entry])
            return entry

    def remove(self, number_or_prefix: str, kind: str | None = None) -> bool:
        """Take a number (or prefix; any kind if None) off the list; False if not listed."""
        value = _valid(number_or_prefix, kind or "number")
        if kind is None:
            values = {value, _valid(number_or_prefix, "prefix")}
        else:
            values = {value}
        with self._locked():
            kept = [e for e in self._entries
                    if not (e.value in values and (kind is None or e.kind == kind))]
            if len(kept) == len(self._entries):
                return False
            self._save(kept)
            return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Read-modify-write under an exclusive lock, on the latest version of the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.refresh()
            yield
        finally:
            os.close(fd)

    def _save(self, entries: list[Entry]) -> None:
        doc = {"version": FORMAT_VERSION, "entries": [asdict(e) for e in entries]}
        payload = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        write_atomic(self.path, seal(payload, self.path, self.sealer))
        self._entries, self._stamp = entries, _stamp(self.path)
        self.matcher = Matcher.of(entries)


def _valid(raw: str, kind: str) -> str:
    if not isinstance(raw, str) or not _ONLY_DIALLABLE.match(raw):
        raise DoNotRecordError("a number or prefix is made of digits (spaces, +, -, . allowed)")
    value = normalise_prefix(raw) if kind == "prefix" else normalise_number(raw)
    if not value:
        raise DoNotRecordError("a number or prefix needs at least one digit")
    return value


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read(path: Path, sealer: Sealer | None) -> tuple[list[Entry], tuple[int, int, int] | None]:
    stamp = _stamp(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], None
    try:
        doc: Any = json.loads(unseal(raw, path, sealer))
    except (CorruptIndex, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DoNotRecordError(f"{path}: the do-not-record list cannot be read ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise DoNotRecordError(f"{path}: not a do-not-record list")
    entries = []
    for item in doc["entries"]:
        if not isinstance(item, dict) or item.get("kind") not in KINDS or not item.get("value"):
            raise DoNotRecordError(f"{path}: an entry is damaged")
        entries.append(Entry(str(item["value"]), str(item["kind"]), str(item.get("reason", "")),
                             str(item.get("added_at", ""))))
    return entries, stamp
