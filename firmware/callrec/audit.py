"""The access log: who logged in, listened, downloaded, exported, erased or changed what, and why.

GDPR art. 5(2) and 30-32 (accountability): the controller must be able to say at any moment
who accessed which recording and why. This log is the answer: append-only, hash-chained,
sealed with a key, kept for `privacy.audit_retention_days`, and holding no phone number in
clear (numbers become keyed pseudonyms, `callrec.privacy.pseudonym`).

Files, under `<data_dir>/audit/` (0700; files 0600):

- `audit-YYYY-MM.jsonl`: the entries of one month (UTC), one JSON object per line. Monthly
  files because the log has its own retention: old months are deleted whole, so nothing is
  ever rewritten in place (an append-only log that must be rewritten to forget is not
  append-only), each append touches one small file (SD-card wear), and a year is 12 files.
- `head.json`: the seq, hash and seal of the last entry, replaced atomically after each
  append. Without it, deleting the last entries (truncation) would leave a valid chain.
- `checkpoint.json`: written when retention deletes old months: which file the kept log
  starts with, and the seq and `prev` of its first entry, sealed. Verification then starts
  there, and still detects any deletion inside the kept range.
- `lock`: the fcntl lock that the daemon and the CLI take around each append (one lock file,
  not the monthly file, because the file being appended to changes with the month and
  retention deletes files).

An entry: {seq, at, actor, action, target, reason, details, prev, hash, mac}. `hash` is the
SHA-256 of the canonical JSON of the entry without `hash` and `mac` (so it covers `prev`, the
previous entry's hash: editing, deleting or reordering any entry breaks the chain at that
point). `mac` is HMAC-SHA256 of `hash` under the log key.

Threat model. The plain chain detects accidental damage and edits by whoever does not bother
to recompute it; anyone able to write the files could rewrite them all with fresh hashes. The
seal (`mac`) is what stops that: the key is derived from the device key (`derive_key
("audit-v1")`) when encryption at rest is on, else it is a 32-byte secret file next to the
other keys (`<data_dir>/keys/audit.key`). So an SD card edited in another computer cannot be
re-sealed when the device key is bound to the hardware (`storage.key_binding`), and a person
with write access to the data folder but not to the keys cannot forge entries. It does NOT
stop root on the running appliance (who can read the key), nor someone who kept an old copy
of the whole folder from putting it back (a rollback): an external copy of `head.json`
(printed by `callrec audit verify`) is the answer to that, if a site needs it.

Power cuts. An append writes one line per entry and fsyncs it, then replaces `head.json`. A
cut during the write can leave the last line incomplete ("torn"). It is never deleted (it is
evidence too) and never mistaken for tampering: verification reports it as a tear; the next
append ends that line, writes an `audit.torn` entry recording the fragment's length and
SHA-256 (cuts in several writes in a row make one run, recorded once), and continues the
chain from the last complete entry. A line cut short by someone else is told apart by
`head.json`: a tear can only hit an entry that `head.json` does not yet name. An append that
finds `head.json` ahead of the file (entries removed from the end) records that in the chain
itself as an `audit.anomaly` entry, since moving `head.json` on would otherwise hide it.

Appends from several processes (the daemon, a `callrec` command): an exclusive `flock` on
`lock`; under it the last entry is read back from the file, so each process chains from what
is on disk, not from what it remembers. Readers take the shared lock.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import getpass
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec.storage.atomic_json import fsync_dir, write_atomic, write_durably

if TYPE_CHECKING:
    from callrec.config import Config
    from callrec.storage.keystore import KeyStore

__all__ = [
    "ACTIONS",
    "GENESIS",
    "AuditError",
    "AuditLog",
    "Finding",
    "Verification",
    "cli_actor",
    "open_audit",
    "open_audit_for_reading",
    "verify_files",
]

log = logging.getLogger(__name__)

KEY_PURPOSE = "audit-v1"
GENESIS = "0" * 64  # the `prev` of the very first entry
TORN = "audit.torn"  # records incomplete lines left by a power cut
ANOMALY = "audit.anomaly"  # records tampering that an append found (always a problem)
FIELDS = ("seq", "at", "actor", "action", "target", "reason", "details", "prev", "hash", "mac")
# The actions the appliance writes (others may be added: any dotted lowercase name is valid).
ACTIONS = (
    "auth.login", "auth.login_failed", "auth.logout", "user.password",
    "recording.play", "recording.download", "recording.erase", "recording.restrict",
    "recording.unrestrict", "recording.rectify",
    "subject.show", "subject.export", "subject.erase", "subject.object",
    "subject.object_withdrawn", "subject.restrict",
    "subject.rectify",
    "config.change", "user.add", "user.remove", "user.roles", "token.create", "token.revoke",
    "call.refused", "retention.erase", TORN, ANOMALY,
)
MAX_ACTOR = 64
MAX_TARGET = 128
MAX_REASON = 1000
MAX_DETAILS_BYTES = 2000
MAX_PROBLEMS = 20  # reported per verification; the first one is where the chain broke

_FILE_RE = re.compile(r"audit-(\d{4})-(\d{2})\.jsonl")
_ACTION_RE = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A run of at least 7 digits, possibly grouped by spaces, dots, dashes or brackets, not glued
# to letters (so recording ids such as 20240501T090000Z-0123abcd are left alone).
_PHONE_LIKE = re.compile(r"(?<![\w+\-])\+?\(?\d(?:[\d .\-/()]*\d)?(?![\w])")
# The first fields of a canonical entry line (keys sorted: action, actor, at, ...); a JSON
# string cannot hold an unescaped quote, so these are the entry's own fields.
_LEADING_FIELDS = re.compile(
    rb'\{"action":("(?:[^"\\]|\\.)*"),"actor":("(?:[^"\\]|\\.)*"),"at":"([^"\\]*)"')
_NOT_NUMBERS = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3}")  # dates, IPv4


class AuditError(Exception):
    """The access log cannot be written (disk, permissions, a damaged last entry)."""


# -- pure: canonical form, hashes, seals -------------------------------------------------------
def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes that are hashed and sealed: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(doc: dict[str, Any]) -> str:
    """SHA-256 (hex) of an entry without its `hash` and `mac`."""
    body = {k: v for k, v in doc.items() if k not in ("hash", "mac")}
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(key: bytes, text: str) -> str:
    """HMAC-SHA256 (hex) of `text` under the log key."""
    return hmac.new(key, b"callrec audit v1 " + text.encode(), hashlib.sha256).hexdigest()


def _sealed_doc(doc: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """`doc` with its own hash (and seal): for head.json and checkpoint.json."""
    body = {k: v for k, v in doc.items() if k not in ("hash", "mac")}
    out = {**body, "hash": hashlib.sha256(canonical(body)).hexdigest()}
    if key is not None:
        out["mac"] = seal(key, out["hash"])
    return out


def _doc_problem(doc: Any, key: bytes | None, what: str) -> str | None:
    """Why a sealed head/checkpoint document cannot be trusted, or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("hash"), str):
        return f"{what} is not a valid document"
    body = {k: v for k, v in doc.items() if k not in ("hash", "mac")}
    if hashlib.sha256(canonical(body)).hexdigest() != doc["hash"]:
        return f"{what} was edited (its hash does not match its content)"
    if key is not None and not hmac.compare_digest(str(doc.get("mac", "")),
                                                   seal(key, doc["hash"])):
        return f"{what} was rewritten without the key (its seal does not match)"
    return None


def redact_numbers(text: str, pseudonymize: Callable[[str], str] | None) -> str:
    """`text` with every phone-number-like run (7 digits or more) replaced by its pseudonym,
    or by "[number]": a reason typed by a person may quote a caller's number."""
    def replace(m: re.Match[str]) -> str:
        found = m.group(0)
        digits = sum(c.isdigit() for c in found)
        if digits < 7 or _NOT_NUMBERS.fullmatch(found.strip()):
            return found
        if pseudonymize is not None:
            try:
                return pseudonymize(found)
            except ValueError:
                pass
        return "[number]"

    return _PHONE_LIKE.sub(replace, text)


def make_entry(
    seq: int, prev: str, at: datetime, actor: str, action: str, target: str, reason: str,
    details: dict[str, Any], key: bytes | None,
) -> dict[str, Any]:
    """A complete, hashed (and sealed) entry. Raises ValueError for fields that cannot go in."""
    if not _ACTION_RE.fullmatch(action):
        raise ValueError(f"action {action!r} is not a dotted lowercase name")
    if not actor or len(actor) > MAX_ACTOR or any(c in actor for c in "\n\r\t"):
        raise ValueError("actor must be a short single-line name")
    if len(target) > MAX_TARGET or any(c in target for c in "\n\r"):
        raise ValueError("target is too long or spans lines")
    if len(reason) > MAX_REASON:
        raise ValueError(f"reason is longer than {MAX_REASON} characters")
    if not isinstance(details, dict) or len(canonical(details)) > MAX_DETAILS_BYTES:
        raise ValueError(f"details must be a JSON object of at most {MAX_DETAILS_BYTES} bytes")
    doc: dict[str, Any] = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "reason": reason,
        "details": details,
        "prev": prev,
    }
    doc["hash"] = entry_hash(doc)
    if key is not None:
        doc["mac"] = seal(key, doc["hash"])
    return doc


def _parse_entry(raw: bytes) -> dict[str, Any] | None:
    """An entry-shaped JSON object from one line, else None (a fragment or garbage)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not set(FIELDS) - {"mac"} <= set(doc) <= set(FIELDS):
        return None
    if (not isinstance(doc["seq"], int) or isinstance(doc["seq"], bool)
            or not isinstance(doc["hash"], str) or not isinstance(doc["prev"], str)):
        return None
    return doc


# -- pure: verification ------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One thing verification found: a problem (tampering or damage) or a tear (power cut)."""

    kind: str  # "tampered", "tear"
    message: str
    file: str = ""
    line: int = 0
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "file": self.file,
                "line": self.line, "seq": self.seq}


@dataclass
class Verification:
    """The result of checking the whole log."""

    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[Finding] = field(default_factory=list)
    tears: list[Finding] = field(default_factory=list)
    sealed: bool = True  # seals were checked (the key was available)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No edit, deletion or reordering found (tears from power cuts are not problems)."""
        return not self.problems

    @property
    def broken_at(self) -> int | None:
        """The seq where the first problem is (None: intact, or not tied to one entry)."""
        return self.problems[0].seq if self.problems else None

    def summary(self) -> str:
        """One line for people: OK, or where it broke."""
        if self.problems:
            first = self.problems[0]
            where = f" at seq {first.seq}" if first.seq is not None else ""
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return f"access log BROKEN{where}: {first.message}{more}"
        span = f", seq {self.first_seq}..{self.last_seq}" if self.entries else ""
        tears = f", {len(self.tears)} torn line(s) from power cuts" if self.tears else ""
        seals = "" if self.sealed else ", seals NOT checked (no key)"
        return f"access log OK: {self.entries} entries{span}{tears}{seals}"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary(), "entries": self.entries,
                "first_seq": self.first_seq, "last_seq": self.last_seq,
                "broken_at": self.broken_at, "sealed": self.sealed, "files": self.files,
                "problems": [f.as_dict() for f in self.problems],
                "tears": [f.as_dict() for f in self.tears]}


def _lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes, terminated) for each line of a file's content."""
    pieces = data.split(b"\n")
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if i == last:
            if piece:
                yield i + 1, piece, False
            return
        yield i + 1, piece, True


class _Verifier:
    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.result = Verification(sealed=key is not None)
        self.expected_seq = 1
        self.expected_prev = GENESIS
        self.hashes: dict[int, str] = {}
        self.fragment: Finding | None = None
        self.fragment_raw = b""
        self.first_item = True
        self.start_file = ""

    def problem(self, message: str, file: str = "", line: int = 0,
                seq: int | None = None) -> None:
        if len(self.result.problems) < MAX_PROBLEMS:
            self.result.problems.append(Finding("tampered", message, file, line, seq))

    def line(self, name: str, number: int, raw: bytes, terminated: bool) -> None:
        doc = _parse_entry(raw)
        if doc is None:
            if self.fragment is not None:  # several cut writes in a row: one run
                self.fragment_raw += b"\n" + raw
                return
            self.fragment = Finding("tear", f"line {number} of {name} is incomplete "
                                    "(a write cut by a power loss?)", name, number,
                                    self.expected_seq)
            self.fragment_raw = raw
            self.first_item = False
            return
        self.entry(name, number, doc)

    def unmatched_fragment(self) -> None:
        frag = self.fragment
        assert frag is not None
        self.problem(f"line {frag.line} of {frag.file} is not a valid entry", frag.file,
                     frag.line, frag.seq)
        self.fragment = None

    def entry(self, name: str, number: int, doc: dict[str, Any]) -> None:
        seq = doc["seq"]
        where = {"file": name, "line": number, "seq": seq}
        if doc["action"] == TORN:
            self.torn_record(doc, where)
        elif self.fragment is not None:
            self.unmatched_fragment()
        self.first_item = False
        if doc["action"] == ANOMALY:
            found = (doc.get("details") or {}).get("found", "?")
            self.problem(f"entry {seq} records tampering found when it was written: {found}",
                         **where)
        if entry_hash(doc) != doc["hash"]:
            self.problem(f"entry {seq} was edited (its hash does not match its content)",
                         **where)
        elif self.key is not None and not hmac.compare_digest(
                str(doc.get("mac", "")), seal(self.key, doc["hash"])):
            self.problem(f"entry {seq} was rewritten without the key (its seal does not "
                         "match)", **where)
        if seq != self.expected_seq or doc["prev"] != self.expected_prev:
            if seq > self.expected_seq:
                missing = (f"{self.expected_seq}" if seq == self.expected_seq + 1
                           else f"{self.expected_seq}..{seq - 1}")
                self.problem(f"entries {missing} are missing before entry {seq} (deleted)",
                             **where)
            elif seq < self.expected_seq:
                self.problem(f"entry {seq} comes after entry {self.expected_seq - 1}: entries "
                             "were reordered or duplicated", **where)
            else:
                self.problem(f"entry {seq} does not follow the entry before it (chain broken: "
                             "an entry was replaced or edited)", **where)
        self.expected_seq = seq + 1
        self.expected_prev = doc["hash"]
        self.hashes[seq] = doc["hash"]
        if len(self.hashes) > 8:  # head.json names the last entry or the one before
            del self.hashes[next(iter(self.hashes))]
        r = self.result
        r.entries += 1
        r.first_seq = seq if r.first_seq is None else r.first_seq
        r.last_seq = seq

    def torn_record(self, doc: dict[str, Any], where: dict[str, Any]) -> None:
        details = doc.get("details") or {}
        if self.fragment is None:
            if not self.first_item:  # after a checkpoint, the fragment went with its month
                self.problem(f"the torn line that entry {doc['seq']} records is missing",
                             **where)
            return
        frag, raw = self.fragment, self.fragment_raw
        self.fragment = None
        if (details.get("bytes") != len(raw)
                or details.get("sha256") != hashlib.sha256(raw).hexdigest()):
            self.problem(f"line {frag.line} of {frag.file} is not the torn line that entry "
                         f"{doc['seq']} records (edited)", frag.file, frag.line, frag.seq)
            return
        self.result.tears.append(Finding(
            "tear", f"line {frag.line} of {frag.file}: a write cut by a power loss, recorded "
            f"by entry {doc['seq']}", frag.file, frag.line, frag.seq))

    def finish(self, head: Any, head_missing: bool) -> None:
        r = self.result
        if self.fragment is not None:
            frag = self.fragment
            self.fragment = None
            head_seq = head.get("seq") if isinstance(head, dict) else None
            if isinstance(head_seq, int) and frag.seq is not None and head_seq >= frag.seq:
                pass  # a line head.json vouches for was cut: reported as truncation below
            else:
                r.tears.append(Finding("tear", frag.message + "; the next entry will record "
                                       "it", frag.file, frag.line, frag.seq))
        if head_missing:
            if r.entries > 1:
                self.problem("head.json is missing: the end of the log cannot be checked")
            return
        problem = _doc_problem(head, self.key, "head.json")
        if problem:
            self.problem(problem)
            return
        seq, hash_ = head.get("seq"), head.get("hash_of_last")
        if not isinstance(seq, int) or not isinstance(hash_, str):
            self.problem("head.json is not a valid document")
            return
        last = r.last_seq or 0
        if seq > last:
            self.problem(f"the log ends at entry {last} but entry {seq} was written: entries "
                         "were removed from the end (truncated)", seq=last + 1)
        elif seq in self.hashes and self.hashes[seq] != hash_:
            self.problem(f"entry {seq} is not the one head.json records (replaced)", seq=seq)


def _begin(checkpoint: Any, key: bytes | None) -> _Verifier:
    """A verifier positioned where the kept log starts (checkpoint.json, else the genesis)."""
    v = _Verifier(key)
    if checkpoint is not None:
        problem = _doc_problem(checkpoint, key, "checkpoint.json")
        if problem:
            v.problem(problem)
        elif not (isinstance(checkpoint.get("seq"), int) and isinstance(
                checkpoint.get("prev"), str) and isinstance(checkpoint.get("file"), str)):
            v.problem("checkpoint.json is not a valid document")
        else:
            v.expected_seq, v.expected_prev = checkpoint["seq"], checkpoint["prev"]
            v.start_file = checkpoint["file"]
    # An audit.torn entry first is legitimate only after a checkpoint: the torn line it
    # records was at the end of a month that retention deleted.
    v.first_item = bool(v.start_file)
    return v


def _feed(v: _Verifier, name: str, data: bytes, first_line: int = 1) -> None:
    """Check the lines of `data`, part of file `name` starting at line `first_line`."""
    if first_line == 1:
        if v.start_file and name < v.start_file:
            return  # retention is deleting it (the checkpoint was written first)
        if v.start_file and not v.result.files and name != v.start_file:
            v.problem(f"{v.start_file}, where the kept log starts (checkpoint.json), is "
                      "missing", file=v.start_file)
        v.result.files.append(name)
    for number, raw, terminated in _lines(data):
        v.line(name, number + first_line - 1, raw, terminated)


def verify_files(
    files: Iterable[tuple[str, bytes]],
    head: Any,
    checkpoint: Any,
    key: bytes | None,
    *,
    head_missing: bool = False,
) -> Verification:
    """Check the log: `files` in order (name, content), the parsed head.json (None if missing
    with `head_missing`), the parsed checkpoint.json (None if there is none). Pure."""
    v = _begin(checkpoint, key)
    for name, data in files:
        _feed(v, name, data)
    v.finish(head, head_missing)
    return v.result


@dataclass
class _Resume:
    """Where the last verification stopped, to check only what was appended since."""

    others: tuple[Any, ...]  # the stat of every other file (a change: verify all again)
    newest: str
    inode: int
    length: int  # of the newest file's complete lines then
    digest: bytes  # their SHA-256: an edit of them means verifying all again
    lines: int
    verifier: _Verifier


# -- I/O ----------------------------------------------------------------------------------------
def _month_file(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"audit-{utc.year:04d}-{utc.month:02d}.jsonl"


def _month_end(name: str) -> datetime | None:
    """The first instant after the month a file name covers."""
    m = _FILE_RE.fullmatch(name)
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        return None
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _default_clock_trusted() -> bool:
    # Imported late: housekeeping imports the storage stack, and may one day import this.
    from callrec.housekeeping import clock_trusted

    return clock_trusted()


def _read_json(path: Path) -> tuple[Any, bool]:
    """(parsed document or the string "unreadable", exists)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, False
    try:
        return json.loads(raw), True
    except (ValueError, UnicodeDecodeError):
        return "unreadable", True


def _tail_lines(path: Path) -> list[tuple[bytes, bool]]:
    """The last lines of a file, (bytes, terminated) in order: enough of them to hold its
    last complete entry, or all of them. Read from the end (the file may be months long)."""
    size = path.stat().st_size
    block = 8192
    with open(path, "rb") as f:
        while True:
            start = max(0, size - block)
            f.seek(start)
            items = [(raw, ended) for _, raw, ended in _lines(f.read(size - start))]
            if start > 0:
                items = items[1:]  # the block may begin in the middle of a line
            if start == 0 or any(_parse_entry(raw) is not None for raw, _ in items):
                return items
            block *= 4


@dataclass(frozen=True)
class _Tip:
    """Where the chain ends on disk: what the next entry chains from."""

    seq: int  # of the last complete entry (0: none)
    hash: str
    newest: str | None  # the newest monthly file (None: there is none)
    unterminated: bool  # the newest file does not end with a newline
    fragments: tuple[bytes, ...]  # incomplete lines after the last entry (power cuts)


class AuditLog:
    """The access log in `directory`. Thread-safe; safe across processes (fcntl lock).

    `key`: the seal key (None: hashes only, for tests and a CLI that cannot read the key).
    `pseudonymize`: turns a phone number into its pseudonym (numbers found in reasons and
    details are replaced). `retention_days`: old months are deleted whole (see `prune`).
    """

    def __init__(
        self,
        directory: Path,
        key: bytes | None,
        *,
        retention_days: int = 365,
        pseudonymize: Callable[[str], str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock_trusted: Callable[[], bool] = _default_clock_trusted,
    ) -> None:
        self.directory = Path(directory)
        self.key = key
        self.retention_days = retention_days
        self.pseudonymize = pseudonymize
        self._now = now
        self._clock_trusted = clock_trusted
        self._lock = threading.Lock()
        self._verified: tuple[tuple[Any, ...], Verification] | None = None
        self._resume: _Resume | None = None
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- locking ---------------------------------------------------------------------------
    def _own(self, path: Path) -> None:
        """A file made by root (a `callrec` command run without sudo -u) is given to the
        folder's owner, the service user, or the daemon could no longer append."""
        if os.geteuid() == 0:
            st = self.directory.stat()
            if st.st_uid != 0:
                os.chown(path, st.st_uid, st.st_gid)

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        with self._lock:
            path = self.directory / "lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._own(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)  # releases the flock

    def files(self) -> list[str]:
        """The monthly files present, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _FILE_RE.fullmatch(n))

    # -- appending -------------------------------------------------------------------------
    def record(self, actor: str, action: str, target: str = "", reason: str = "",
               details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append one entry; returns it. Raises AuditError if it could not be made durable,
        ValueError for fields that cannot go in the log."""
        return self.record_many([(actor, action, target, reason, details or {})])[0]

    def record_many(
        self, items: Iterable[tuple[str, str, str, str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Append several entries (actor, action, target, reason, details) with one fsync:
        for a retention run that erases hundreds of recordings."""
        wanted = [
            (actor, action, self._clean(target), self._clean(reason), self._clean_details(d))
            for actor, action, target, reason, d in items
        ]
        if not wanted:
            return []
        try:
            with self._locked(exclusive=True):
                written, new_month = self._append(wanted)
                if new_month:
                    self._prune_locked()
        except OSError as exc:
            raise AuditError(f"the access log cannot be written: {exc}") from exc
        return written

    def _clean(self, text: str) -> str:
        return redact_numbers(str(text), self.pseudonymize)

    def _clean_details(self, details: dict[str, Any]) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, str):
                return self._clean(value)
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        cleaned: dict[str, Any] = clean(dict(details))
        return cleaned

    def _tip(self) -> _Tip:
        names = self.files()
        newest = names[-1] if names else None
        unterminated = False
        fragments: list[bytes] = []  # newest first while walking back
        for name in reversed(names):
            items = _tail_lines(self.directory / name)
            if name == newest and items and not items[-1][1]:
                unterminated = True
            for raw, _ in reversed(items):
                doc = _parse_entry(raw)
                if doc is not None:  # complete (even if only its newline was lost)
                    return _Tip(doc["seq"], doc["hash"], newest, unterminated,
                                tuple(reversed(fragments)))
                fragments.append(raw)
        seq, prev = 0, GENESIS
        checkpoint, _ = _read_json(self.directory / "checkpoint.json")
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get("seq"), int):
            seq, prev = checkpoint["seq"] - 1, str(checkpoint.get("prev"))
        return _Tip(seq, prev, newest, unterminated, tuple(reversed(fragments)))

    def _anomaly(self, tip: _Tip) -> str | None:
        """What head.json says is wrong with the end of the log, before appending to it.

        Appending moves head.json on, so a truncation found now must go into the chain
        itself, or the next append would hide it. head.json may lag behind the log (a
        power cut between an append and its update), never run ahead of it.
        """
        head, exists = _read_json(self.directory / "head.json")
        if not exists:
            return "head.json is missing" if tip.seq > 1 else None
        problem = _doc_problem(head, self.key, "head.json")
        if problem or not isinstance(head.get("seq"), int):
            return problem or "head.json is not a valid document"
        if head["seq"] > tip.seq:
            return (f"head.json names entry {head['seq']} but the log ends at entry "
                    f"{tip.seq}: entries were removed from the end")
        if head["seq"] == tip.seq and head.get("hash_of_last") != tip.hash:
            return f"entry {tip.seq} is not the one head.json names: it was replaced"
        return None

    def _append(
        self, wanted: list[tuple[str, str, str, str, dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], bool]:
        tip = self._tip()
        anomaly = self._anomaly(tip)
        now = self._now()
        name = _month_file(now)
        if tip.newest and tip.newest > name:
            name = tip.newest  # the clock went back (a Pi without a battery clock): keep order
        entries: list[dict[str, Any]] = []
        seq, prev = tip.seq, tip.hash
        if tip.fragments:
            # Right after the fragments, as verification expects it there.
            joined = b"\n".join(tip.fragments)
            seq += 1
            entries.append(make_entry(seq, prev, now, "system", TORN, tip.newest or "", "", {
                "bytes": len(joined), "lines": len(tip.fragments),
                "sha256": hashlib.sha256(joined).hexdigest(),
            }, self.key))
            prev = entries[-1]["hash"]
            log.warning("access log: an incomplete last line (power cut during a write) in %s "
                        "is kept and recorded as entry %d", tip.newest, seq)
        if anomaly:
            seq += 1
            entries.append(make_entry(seq, prev, now, "system", ANOMALY, "", "",
                                      {"found": anomaly}, self.key))
            prev = entries[-1]["hash"]
            log.error("access log: %s (recorded as entry %d)", anomaly, seq)
        internal = len(entries)
        for actor, action, target, reason, details in wanted:
            seq += 1
            doc = make_entry(seq, prev, now, actor, action, target, reason, details, self.key)
            entries.append(doc)
            prev = doc["hash"]
        data = b"".join(canonical_line(doc) for doc in entries)
        if tip.unterminated and tip.newest == name:
            data = b"\n" + data
        path = self.directory / name
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            write_durably(fd, data)
        finally:
            os.close(fd)
        if created:
            self._own(path)
            fsync_dir(self.directory)
        last = entries[-1]
        write_atomic(self.directory / "head.json", json.dumps(_sealed_doc(
            {"seq": last["seq"], "hash_of_last": last["hash"], "file": name}, self.key
        )).encode())
        self._own(self.directory / "head.json")
        return entries[internal:], created and tip.newest is not None

    # -- retention -------------------------------------------------------------------------
    def prune(self) -> list[str]:
        """Delete the monthly files older than the retention period; returns their names.

        A file goes once its whole month is older than `retention_days` (so no entry is
        kept for less), never the newest file (the chain's tip), and only with a trusted
        clock (a Pi whose clock is years ahead would otherwise delete the whole log).
        checkpoint.json is written first, so a crash between the two leaves files that
        verification skips and the next prune deletes.
        """
        with self._locked(exclusive=True):
            return self._prune_locked()

    def _prune_locked(self) -> list[str]:
        files = self.files()
        if len(files) < 2 or not self._clock_trusted():
            return []
        cutoff = self._now() - timedelta(days=self.retention_days)
        old = []
        for name in files[:-1]:
            end = _month_end(name)
            if end is None or end > cutoff:
                break
            old.append(name)
        if not old:
            return []
        kept = files[len(old)]
        first = self._first_entry(kept)
        if first is None:
            log.warning("access log: %s does not start with a valid entry; old months kept",
                        kept)
            return []
        previous, _ = _read_json(self.directory / "checkpoint.json")
        deleted = list(previous.get("deleted", [])) if isinstance(previous, dict) else []
        checkpoint = _sealed_doc({
            "file": kept, "seq": first["seq"], "prev": first["prev"],
            "deleted": (deleted + old)[-120:],  # ten years of names is plenty of history
            "at": self._now().astimezone(UTC).isoformat(timespec="seconds"),
        }, self.key)
        write_atomic(self.directory / "checkpoint.json", json.dumps(checkpoint).encode())
        self._own(self.directory / "checkpoint.json")
        for name in old:
            (self.directory / name).unlink(missing_ok=True)
        fsync_dir(self.directory)
        log.info("access log: deleted %s (older than %d days)", ", ".join(old),
                 self.retention_days)
        return old

    def _first_entry(self, name: str) -> dict[str, Any] | None:
        with open(self.directory / name, "rb") as f:
            # A torn line may come first (cut at the start of the month); the audit.torn
            # entry after it is then where the kept chain starts.
            for _, raw in zip(range(2), f, strict=False):
                doc = _parse_entry(raw.rstrip(b"\n"))
                if doc is not None:
                    return doc
        return None

    # -- reading ---------------------------------------------------------------------------
    def verify(self) -> Verification:
        """Check the whole log. Cached until a file changes; when only the newest month
        grew (appends), the lines verified before are compared by their SHA-256 and only
        the new lines are checked: the viewer shows the verification on every page."""
        with self._locked(exclusive=False):
            signature = self._signature()
            if self._verified is not None and self._verified[0] == signature:
                return self._verified[1]
            head, head_exists = _read_json(self.directory / "head.json")
            names = self.files()
            newest = names[-1] if names else ""
            others = tuple(st for st in signature if st[0] not in (newest, "head.json"))
            data = (self.directory / newest).read_bytes() if newest else b""
            resume = self._resume
            v: _Verifier | None = None
            start, lines = 0, 0
            if (resume is not None and resume.others == others and resume.newest == newest
                    and resume.inode == (self.directory / newest).stat().st_ino
                    and hashlib.sha256(data[:resume.length]).digest() == resume.digest):
                v = copy.deepcopy(resume.verifier)
                start, lines = resume.length, resume.lines
            if v is None:
                checkpoint, _ = _read_json(self.directory / "checkpoint.json")
                v = _begin(checkpoint, self.key)
                for name in names[:-1]:
                    _feed(v, name, (self.directory / name).read_bytes())
            cut = data.rfind(b"\n") + 1
            if newest and (cut > start or start == 0):
                _feed(v, newest, data[start:cut], lines + 1)
                lines += data.count(b"\n", start, cut)
            if newest:
                self._resume = _Resume(others, newest, (self.directory / newest).stat().st_ino,
                                       cut, hashlib.sha256(data[:cut]).digest(), lines,
                                       copy.deepcopy(v))
            if cut < len(data):  # an unterminated last line: checked, not kept in the resume
                v.line(newest, lines + 1, data[cut:], False)
            v.finish(head, not head_exists)
            self._verified = (signature, v.result)
            return v.result

    def _signature(self) -> tuple[Any, ...]:
        stamps = []
        for name in sorted(os.listdir(self.directory)):
            try:
                st = os.stat(self.directory / name)
            except FileNotFoundError:
                continue
            stamps.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
        return tuple(stamps)

    def _raw_lines(self, newest_first: bool) -> Iterator[bytes]:
        """Every line of the log, one monthly file read at a time (under the shared lock)."""
        names = self.files()
        for name in reversed(names) if newest_first else names:
            with self._locked(exclusive=False):
                try:
                    data = (self.directory / name).read_bytes()
                except FileNotFoundError:
                    continue
            lines = [raw for _, raw, _ in _lines(data)]
            yield from reversed(lines) if newest_first else lines

    def entries(self, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        """Every complete entry, in log order (or newest first); fragments are skipped."""
        for raw in self._raw_lines(newest_first):
            doc = _parse_entry(raw)
            if doc is not None:
                yield doc

    def search(
        self,
        *,
        actor: str = "",
        action: str = "",
        targets: Collection[str] = (),
        since: date | None = None,
        until: date | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """(one page of matching entries newest first, how many match in all).

        `action` matches exactly, or as a prefix when it ends with "." ("recording.");
        `since`/`until` are UTC dates, both included.

        The filters are applied to the lines as written, not to parsed JSON: the canonical
        form puts action, actor and at first and target last, so each filter is an exact
        comparison of bytes, and only the page shown is parsed (a year of a busy office's
        log is tens of thousands of lines, read on a Pi Zero).
        """
        low = since.isoformat().encode() if since else b""
        high = (until + timedelta(days=1)).isoformat().encode() if until else b""
        want_actor = _json_bytes(actor) if actor else b""
        want_action = _json_bytes(action) if action else b""
        if action.endswith("."):
            want_action = want_action[:-1]  # without the closing quote: a prefix
        endings = tuple(b',"target":' + _json_bytes(t) + b"}" for t in targets)
        page: list[dict[str, Any]] = []
        total = 0
        for raw in self._raw_lines(newest_first=True):
            m = _LEADING_FIELDS.match(raw)
            if m is None:
                continue  # a torn line (verification reports it)
            line_action, line_actor, at = m.groups()
            if want_actor and line_actor != want_actor:
                continue
            if want_action and not (line_action == want_action or (
                    action.endswith(".") and line_action.startswith(want_action))):
                continue
            if endings and not raw.endswith(endings):
                continue
            if (low and at < low) or (high and at >= high):
                continue
            if offset <= total < offset + limit:
                doc = _parse_entry(raw)
                if doc is None:
                    continue
                page.append(doc)
            total += 1
        return page, total

    # -- conveniences for the other layers -------------------------------------------------
    def try_record(self, actor: str, action: str, target: str = "", reason: str = "",
                   details: dict[str, Any] | None = None) -> bool:
        """`record` for threads that must go on when the log cannot be written (the daemon's
        loop, retention): a failure is logged as an error, never raised."""
        try:
            self.record(actor, action, target, reason, details)
        except (AuditError, ValueError) as exc:
            log.error("access log: %s on %s not recorded: %s", action, target or "-", exc)
            return False
        return True

    def evidence(self, kind: str, details: dict[str, Any]) -> None:
        """A call kept out of recording (the daemon's `on_evidence`: "call.refused", ...):
        the caller's pseudonym ("subject") is the target. Never raises."""
        target = str(details.get("subject") or "")
        rest = {k: v for k, v in details.items() if v is not None and k != "subject"}
        self.try_record("system", kind, target, "", rest)

    def retention_erased(self, erased: Iterable[tuple[str, str, int]]) -> bool:
        """Record what a retention run erased, (recording id, rule, bytes) each, with one
        fsync for the batch. Never raises: a failure is logged as an error."""
        try:
            self.record_many(
                ("system", "retention.erase", rec_id, "", {"rule": str(rule), "bytes": size})
                for rec_id, rule, size in erased
            )
        except (AuditError, ValueError) as exc:
            log.error("access log: retention erasures not recorded: %s", exc)
            return False
        return True


def _json_bytes(value: str) -> bytes:
    """A string as the canonical form writes it (quoted and escaped)."""
    return json.dumps(value, ensure_ascii=False).encode()


def canonical_line(doc: dict[str, Any]) -> bytes:
    """An entry as one line of its file."""
    return canonical(doc) + b"\n"


def cli_actor() -> str:
    """The actor of entries written by a `callrec` command: "cli:<login name>", the person
    behind sudo rather than the service user the command runs as."""
    name = os.environ.get("SUDO_USER", "")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = str(os.getuid())
    return f"cli:{name}"[:MAX_ACTOR]


def open_audit_for_reading(config: Config) -> tuple[AuditLog, str | None]:
    """The access log for `callrec audit`: with its seal key when this user can read it
    (never creating one), else checking hashes only; and why the key is missing, if it is."""
    from callrec.storage.keystore import KeyStoreError
    from callrec.storage.open_store import open_keys

    key: bytes | None = None
    why: str | None = None
    try:
        if config.storage.encrypt:
            keys = open_keys(config, create_device_key=False)
            key = keys.derive_key(KEY_PURPOSE) if keys is not None else None
        else:
            key = (config.data_dir / "keys" / "audit.key").read_bytes()
    except (KeyStoreError, OSError) as exc:
        why = str(exc)
    return AuditLog(config.data_dir / "audit", key,
                    retention_days=config.privacy.audit_retention_days), why


def record_from_cli(config: Config, action: str, target: str = "", reason: str = "",
                    details: dict[str, Any] | None = None) -> bool:
    """Write one entry for a `callrec` command (actor "cli:<user>"), sealed with the same
    key as the daemon's; False, with the reason on standard error, if it cannot be."""
    import sys

    from callrec.storage.keystore import KeyStoreError
    from callrec.storage.open_store import open_keys

    try:
        journal = open_audit(config, open_keys(config))
        journal.record(cli_actor(), action, target, reason, details)
    except (AuditError, KeyStoreError, OSError, ValueError) as exc:
        print(f"callrec: the access log could not record {action}: {exc}", file=sys.stderr)
        return False
    return True


def audit_key(keys: KeyStore | None, data_dir: Path) -> bytes:
    """The seal key: from the device key, else the local secret `<data_dir>/keys/audit.key`."""
    if keys is not None:
        return keys.derive_key(KEY_PURPOSE)
    from callrec.privacy.pseudonym import local_secret

    return local_secret(Path(data_dir) / "keys" / "audit.key")


def open_audit(config: Config, keys: KeyStore | None, **kwargs: Any) -> AuditLog:
    """The appliance's access log, keyed and pseudonymising as the configuration says."""
    from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key

    data_dir = config.data_dir
    return AuditLog(
        data_dir / "audit",
        audit_key(keys, data_dir),
        retention_days=config.privacy.audit_retention_days,
        pseudonymize=Pseudonymizer(pseudonym_key(keys, data_dir)),
        **kwargs,
    )
