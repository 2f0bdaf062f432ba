"""Requests about a person (GDPR art. 15-21): the register the privacy officer answers from.

Each request is a record: its type (access, erasure, restriction, rectification, objection),
its subject, when it was received, its due date (one month later, art. 12(3)), its status
(open, done, refused), the outcome and who handled it. `overdue()` flags the open ones past
their due date.

The subject is a keyed pseudonym (`privacy.pseudonym`): that is what ties the register to the
access log. An OPEN request also keeps the number itself, because the officer has a month to
act on it and must be able to find the person's recordings again from the register (after a
restart, from another browser); the register is sealed at rest like the index. The number is
dropped the moment the request is closed (`close()`), whatever its outcome: an answered
request needs to prove what was done, not to whom, and after an erasure nothing on the box may
reveal the number.

Pure parts (`due_date`, `overdue`, `Request.closed`) take values and return values. The store
(`RequestBook`) is one JSON document, `<data_dir>/privacy/requests.json`, sealed with
AES-256-GCM under `derive_key("requests-v1")` when encryption at rest is on, written
atomically (temporary file, fsync, rename) under an fcntl lock, because the daemon's web UI
and a `callrec subject` command may both write it.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec.storage.atomic_json import CorruptIndex, seal, unseal, write_atomic

if TYPE_CHECKING:
    from callrec.storage.crypto import Sealer
    from callrec.storage.keystore import KeyStore

__all__ = [
    "KEY_PURPOSE", "STATUSES", "TYPES", "Request", "RequestBook", "RequestError", "due_date",
    "overdue", "sealer_for",
]

KEY_PURPOSE = "requests-v1"
TYPES = ("access", "erasure", "restriction", "rectification", "objection")
STATUSES = ("open", "done", "refused")
FORMAT_VERSION = 1
MAX_OUTCOME = 2000


class RequestError(ValueError):
    """A request that cannot be recorded, an unknown request, or an unreadable register."""


def due_date(received: date) -> date:
    """One month after `received` (GDPR art. 12(3)); a day the next month lacks (31 January)
    gives that month's last day (regulation 1182/71 on periods, art. 3(2)(c))."""
    year, month = (received.year + 1, 1) if received.month == 12 else (
        received.year, received.month + 1)
    return date(year, month, min(received.day, calendar.monthrange(year, month)[1]))


def new_request_id(received: date) -> str:
    """A short id to quote in letters: the date received and random hex; nothing personal."""
    return f"R{received:%Y%m%d}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Request:
    id: str
    type: str
    subject: str  # the keyed pseudonym of the number
    received: str  # ISO date
    due: str  # ISO date
    status: str = "open"
    outcome: str = ""
    handled_by: str = ""
    closed_at: str = ""
    number: str | None = None  # only while open (see the module's docstring)
    history: list[dict[str, str]] = field(default_factory=list)  # who did what, when
    receipt: dict[str, Any] | None = None  # an erasure's receipt (ids and times, no number)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def closed(self, status: str, outcome: str, by: str, at: datetime) -> Request:
        """This request answered (`status` "done" or "refused"): the number is dropped."""
        if status not in ("done", "refused"):
            raise RequestError("a request is closed as done or refused")
        if not self.is_open:
            raise RequestError(f"request {self.id} is already closed")
        when = at.astimezone(UTC).isoformat(timespec="seconds")
        return replace(self, status=status, outcome=outcome[:MAX_OUTCOME], handled_by=by,
                       closed_at=when, number=None,
                       history=[*self.history, {"at": when, "by": by, "did": status}])

    def as_dict(self, *, with_number: bool = False) -> dict[str, Any]:
        """For the UI, the API and the file (`with_number`: the file, and the officer's view)."""
        doc = asdict(self)
        if not with_number:
            doc.pop("number")
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Request:
        if not isinstance(doc, dict):
            raise RequestError("a request is not an object")
        try:
            req = cls(
                id=str(doc["id"]), type=str(doc["type"]), subject=str(doc["subject"]),
                received=str(doc["received"]), due=str(doc["due"]),
                status=str(doc.get("status", "open")), outcome=str(doc.get("outcome", "")),
                handled_by=str(doc.get("handled_by", "")),
                closed_at=str(doc.get("closed_at", "")),
                number=doc.get("number") if isinstance(doc.get("number"), str) else None,
                history=[dict(h) for h in doc.get("history", []) if isinstance(h, dict)],
                receipt=doc.get("receipt") if isinstance(doc.get("receipt"), dict) else None,
            )
        except KeyError as exc:
            raise RequestError(f"a request has no {exc.args[0]}") from None
        if req.type not in TYPES or req.status not in STATUSES:
            raise RequestError(f"request {req.id} has an unknown type or status")
        return req


def overdue(req: Request, today: date) -> bool:
    """Open and past its due date (the due day itself is still in time)."""
    return req.is_open and today > date.fromisoformat(req.due)


def sealer_for(keys: KeyStore | None) -> Sealer | None:
    """The register's sealer (None: encryption at rest is off)."""
    if keys is None:
        return None
    from callrec.storage.crypto import Sealer

    return Sealer(keys.derive_key(KEY_PURPOSE))


class RequestBook:
    """The register on disk. Every call re-reads the file (it is small: one line per request
    a year, in an office) so the daemon and the CLI never act on a stale copy."""

    def __init__(self, path: Path, sealer: Sealer | None) -> None:
        self.path = Path(path)
        self.sealer = sealer

    @classmethod
    def for_data_dir(cls, data_dir: Path, keys: KeyStore | None) -> RequestBook:
        return cls(Path(data_dir) / "privacy" / "requests.json", sealer_for(keys))

    # -- reading -----------------------------------------------------------------------------
    def _read(self) -> list[Request]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            doc = json.loads(unseal(raw, self.path, self.sealer))
        except (CorruptIndex, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(f"{self.path}: the request register cannot be read ({exc})"
                               ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("requests"), list):
            raise RequestError(f"{self.path}: not a request register")
        return [Request.from_dict(item) for item in doc["requests"]]

    def all(self) -> list[Request]:
        """Every request, newest received first (open ones first)."""
        with self._locked(exclusive=False):
            items = self._read()
        return sorted(items, key=lambda r: (r.is_open, r.received, r.id), reverse=True)

    def get(self, req_id: str) -> Request | None:
        return next((r for r in self.all() if r.id == req_id), None)

    def for_subject(self, subject: str) -> list[Request]:
        return [r for r in self.all() if r.subject == subject]

    def number_of(self, subject: str) -> str | None:
        """The number of a subject with an open request (None: no open request has it)."""
        return next((r.number for r in self.all()
                     if r.subject == subject and r.is_open and r.number), None)

    # -- changing ----------------------------------------------------------------------------
    def open(self, type_: str, subject: str, number: str | None, by: str,
             received: date | None = None) -> Request:
        """Register a request received on `received` (today by default)."""
        if type_ not in TYPES:
            raise RequestError(f"type must be one of {', '.join(TYPES)}")
        when = received or datetime.now(UTC).date()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        req = Request(new_request_id(when), type_, subject, when.isoformat(),
                      due_date(when).isoformat(), number=number,
                      history=[{"at": now, "by": by, "did": "received"}])
        with self._writing() as items:
            items.append(req)
        return req

    def close(self, req_id: str, status: str, outcome: str, by: str) -> Request:
        with self._writing() as items:
            for i, req in enumerate(items):
                if req.id == req_id:
                    items[i] = req.closed(status, outcome, by, datetime.now(UTC))
                    return items[i]
        raise RequestError(f"no request {req_id}")

    def answer(self, type_: str, subject: str, outcome: str, by: str,
               status: str = "done") -> Request:
        """Close the oldest open request of this type for this subject with `outcome`, or,
        when none was registered (the person asked on the phone and the officer acted at
        once), record one received today and closed at once: every action on a person's
        data leaves a request record."""
        with self._writing() as items:
            for i, req in sorted(enumerate(items), key=lambda p: p[1].received):
                if req.type == type_ and req.subject == subject and req.is_open:
                    items[i] = req.closed(status, outcome, by, datetime.now(UTC))
                    return items[i]
            today = datetime.now(UTC).date()
            fresh = Request(new_request_id(today), type_, subject, today.isoformat(),
                            due_date(today).isoformat(),
                            history=[{"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                      "by": by, "did": "received"}])
            items.append(fresh.closed(status, outcome, by, datetime.now(UTC)))
            return items[-1]

    def attach_receipt(self, req_id: str, receipt: dict[str, Any]) -> None:
        with self._writing() as items:
            for i, req in enumerate(items):
                if req.id == req_id:
                    items[i] = replace(req, receipt=receipt)

    def forget_number(self, subject: str) -> int:
        """Drop the number from every request of `subject` (after an erasure: nothing may
        reveal it any more); they keep the pseudonym. Returns how many changed."""
        changed = 0
        with self._writing() as items:
            for i, req in enumerate(items):
                if req.subject == subject and req.number is not None:
                    items[i] = replace(req, number=None)
                    changed += 1
        return changed

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _writing(self) -> Iterator[list[Request]]:
        """Read-modify-write of the latest file under the exclusive lock; written back only
        when the block succeeds."""
        with self._locked(exclusive=True):
            items = self._read()
            yield items
            doc = {"version": FORMAT_VERSION,
                   "requests": [r.as_dict(with_number=True) for r in items]}
            payload = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
            write_atomic(self.path, seal(payload, self.path, self.sealer))
