"""The access log's pure core: entries, their canonical form, hashes and seals, and the
verification of a chain (split from audit.py, which keeps the files, the locking and the
appliance's helpers; see its docstring for the design and the threat model).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
