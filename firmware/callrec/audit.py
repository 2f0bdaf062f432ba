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
import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec.audit_chain import (  # the pure core, re-exported
    _FILE_RE,
    _LEADING_FIELDS,
    ACTIONS,
    ANOMALY,
    GENESIS,
    KEY_PURPOSE,
    MAX_ACTOR,
    MAX_REASON,
    TORN,
    AuditError,
    Finding,
    Verification,
    _begin,
    _doc_problem,
    _feed,
    _lines,
    _parse_entry,
    _Resume,
    _sealed_doc,
    _Verifier,
    canonical,
    entry_hash,
    make_entry,
    redact_numbers,
    seal,
    verify_files,
)
from callrec.clock import clock_state
from callrec.storage.atomic_json import fsync_dir, write_atomic, write_durably

if TYPE_CHECKING:
    from callrec.config import Config
    from callrec.storage.keystore import KeyStore

__all__ = [
    "ACTIONS",
    "GENESIS",
    "MAX_REASON",
    "AuditError",
    "AuditLog",
    "Finding",
    "Verification",
    "canonical",
    "canonical_line",
    "cli_actor",
    "entry_hash",
    "open_audit",
    "open_audit_for_reading",
    "redact_numbers",
    "seal",
    "verify_files",
]

log = logging.getLogger(__name__)

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
    return clock_state().synchronised  # the same reading as retention's (callrec.clock)


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
