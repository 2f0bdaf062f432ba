"""Everything the box holds about a phone number, and the person's rights over it.

A privacy officer gives a number in any common form; `find_recordings` returns every indexed
recording whose caller or called number is that number (French national and international
forms are one number: `donotrecord.normalise_number`), on every volume, interrupted ones
included. `Subjects` then carries out each right on those recordings, writes the request
record (`privacy.requests`) and hands each access log entry to the caller's `record` function
(the web layer's, or the CLI's), so the web UI, the JSON API and `callrec subject` behave the
same:

- access / portability: `export_plan()`, a ZIP built while it is sent (`ZipPlan.iter_bytes`):
  each recording's audio as stored (Ogg/Opus, FLAC or WAV, decrypted on the fly), its
  metadata as JSON, and an information sheet (`privacy.sheet`). ZIP_STORED: audio does not
  compress, and with stored entries the archive's length is known before the first byte
  (`zip_length`), so the browser shows real progress; memory stays at one 64 KiB block.
- erasure: `erase()`, crypto-erasure of every recording through `RecordingStore.erase_many`
  (keys first), then the number is dropped from the request register; a receipt lists what
  was erased by id and time, never by number.
- restriction: `restrict()` / `lift()`: `restricted: true` plus `restriction: {reason, by,
  at}` in the sidecar and the index. A boolean flag because retention (`storage.retention`)
  reads `restricted` as one and never erases a restricted recording; the details sit next to
  it. Playback, download and export then need the privacy officer and a stated reason.
- rectification: `rectify()` changes numbers, name and notes; the log gets the changed
  fields and the numbers' pseudonyms only.
- objection: `object()` puts the number on the do-not-record list.

Nothing here logs a number: log lines name recording ids and pseudonyms.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callrec.privacy.donotrecord import DoNotRecord, normalise_number
from callrec.privacy.requests import RequestBook
from callrec.storage.audio_files import EXTENSION
from callrec.storage.index_shards import phone_key
from callrec.storage.recordings import RecordingStore, UnknownRecording

if TYPE_CHECKING:
    from callrec.storage.audio_files import AudioSource

log = logging.getLogger(__name__)

__all__ = [
    "NUMBER_FIELDS", "Record", "Subjects", "ZipEntry", "ZipPlan", "find_recordings",
    "number_variants", "rectification", "same_number", "zip_length",
]

NUMBER_FIELDS = ("caller_number", "called_number")
RECTIFIABLE = ("caller_number", "caller_name", "called_number", "notes")
MAX_NAME = 64
MAX_NOTES = 1000
MAX_REASON = 1000
CHUNK = 64 * 1024
# Internal fields that say nothing about the person (file names, sizes, parts).
_INTERNAL = ("parts", "size_bytes")
_FR_NATIONAL = 10  # "0" + 9 digits

Record = Callable[[str, str, str, dict[str, Any]], None]  # action, target, reason, details


# -- pure: numbers -----------------------------------------------------------------------------
def number_variants(number: str) -> list[str]:
    """The digit strings under which the index may hold `number` (it hashes the digits as
    captured): a French number as caller ID sends it ("0612345678") and as it may have been
    dialled or typed ("+33 6…", "0033 6…", "+33 (0)6…"). Empty if there is no digit."""
    n = normalise_number(number)
    if not n:
        return []
    variants = [n]
    if len(n) == _FR_NATIONAL and n.startswith("0") and n[1] != "0":
        rest = n[1:]
        variants += [f"33{rest}", f"0033{rest}", f"330{rest}", f"00330{rest}"]
    raw = phone_key(number)
    if raw and raw not in variants:
        variants.append(raw)
    return variants


def same_number(a: object, b: object) -> bool:
    na, nb = normalise_number(a), normalise_number(b)
    return bool(na) and na == nb


def concerns(doc: dict[str, Any], number: str) -> bool:
    """True if the recording's caller or called number is `number` (any form)."""
    return any(same_number(doc.get(f), number) for f in NUMBER_FIELDS)


def find_recordings(store: RecordingStore, number: str) -> list[dict[str, Any]]:
    """Every recording of `number`, newest first: the index's number search for each form
    the number may have been stored in, each hit checked by its normalised number."""
    found: dict[str, dict[str, Any]] = {}
    for digits in number_variants(number):
        for doc in store.search_number(digits):
            if doc["id"] not in found and concerns(doc, number):
                found[doc["id"]] = doc
    return sorted(found.values(), key=lambda d: d["id"], reverse=True)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What a receipt or a log may say of a recording: no number, no name."""
    return {k: doc.get(k) for k in ("id", "started_at", "ended_at", "duration_s", "direction",
                                    "status", "volume")} | {"volume": doc.get("volume") or "sd"}


def exported_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """A recording's metadata as given to the person: all of it but storage internals."""
    meta = {k: v for k, v in doc.items() if k not in _INTERNAL and v is not None}
    audio = meta.get("audio")
    if isinstance(audio, dict):
        meta["audio"] = {k: v for k, v in audio.items() if k not in ("file", "encryption")}
    return meta


def rectification(doc: dict[str, Any], changes: dict[str, str],
                  pseudonymize: Callable[[str], str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the fields to set, the access log details) for correcting a recording. Only the
    fields in RECTIFIABLE; "" clears one. The details name the changed fields, and for
    numbers the old and new pseudonyms: never a number or a name in clear. ValueError for
    a value that cannot be stored."""
    fields: dict[str, Any] = {}
    details: dict[str, Any] = {"fields": []}
    for name, raw in changes.items():
        if name not in RECTIFIABLE:
            raise ValueError(f"{name} cannot be rectified")
        value = raw.strip()
        if name in NUMBER_FIELDS and value and not normalise_number(value):
            raise ValueError(f"{name} must be a phone number")
        if name in NUMBER_FIELDS and value and any(c.isalpha() for c in value):
            raise ValueError(f"{name} must be a phone number")
        limit = MAX_NOTES if name == "notes" else MAX_NAME
        if len(value) > limit or any(c in value for c in "\r\0"):
            raise ValueError(f"{name} is too long or holds control characters")
        old = doc.get(name) or ""
        if value == old:
            continue
        fields[name] = value or None
        details["fields"].append(name)
        if name in NUMBER_FIELDS:
            details[name] = {"from": _pseudo(old, pseudonymize), "to": _pseudo(value,
                                                                            pseudonymize)}
    return fields, details


def _pseudo(number: str, pseudonymize: Callable[[str], str]) -> str:
    try:
        return pseudonymize(number) if number else ""
    except ValueError:
        return ""


# -- pure: the ZIP's layout ---------------------------------------------------------------------
_LOCAL_HEADER = 30
_DATA_DESCRIPTOR = 16  # signature, CRC-32, sizes: zipfile writes one per entry to a stream
_CENTRAL_HEADER = 46
_END_RECORD = 22
# zipfile switches to ZIP64 fields (other sizes) for an entry over ZIP64_LIMIT / 1.05 or
# offsets past ZIP64_LIMIT; such an archive is sent without a precomputed length.
_LENGTH_LIMIT = int(zipfile.ZIP64_LIMIT / 1.05) - 1


def zip_length(entries: Iterable[tuple[str, int]]) -> int | None:
    """The exact size of a ZIP_STORED archive of (ASCII name, size) entries as `ZipPlan`
    writes it, or None when it would need ZIP64 fields (over ~2 GB)."""
    total = _END_RECORD
    for name, size in entries:
        if not name.isascii() or size > _LENGTH_LIMIT:
            return None
        total += _LOCAL_HEADER + _CENTRAL_HEADER + 2 * len(name) + size + _DATA_DESCRIPTOR
    return total if total <= _LENGTH_LIMIT else None


@dataclass
class ZipEntry:
    name: str  # ASCII
    size: int
    data: bytes | None = None  # small entries (metadata, sheet)
    opener: Callable[[], AudioSource] | None = None  # audio, opened when its turn comes


class _Sink:
    """What zipfile writes into: kept until the generator hands it on. No seek(), so zipfile
    writes data descriptors instead of going back to patch headers."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


_DATE = (2000, 1, 1, 0, 0, 0)


@dataclass
class ZipPlan:
    """An archive to stream: `length` (None: unknown) then `iter_bytes()`."""

    entries: list[ZipEntry]
    length: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.length = zip_length((e.name, e.size) for e in self.entries)

    def iter_bytes(self) -> Iterator[bytes]:
        """The archive, 64 KiB at a time. An audio file is opened when its turn comes and
        closed after; a source that changed size meanwhile (erased) ends the archive short
        rather than lying about its content."""
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as zf:
            for entry in self.entries:
                info = zipfile.ZipInfo(entry.name, _DATE)
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = entry.size
                with zf.open(info, "w") as dest:
                    if entry.data is not None:
                        dest.write(entry.data)
                    elif entry.opener is not None:
                        source = entry.opener()
                        try:
                            if source.size() != entry.size:
                                raise OSError(f"{entry.name} changed during the export")
                            offset = 0
                            while offset < entry.size:
                                block = source.read_range(offset, min(entry.size,
                                                                      offset + CHUNK))
                                if not block:
                                    raise OSError(f"{entry.name} ended early")
                                dest.write(block)
                                offset += len(block)
                                yield sink.take()
                        finally:
                            source.close()
                yield sink.take()
        yield sink.take()


# -- the service --------------------------------------------------------------------------------
@dataclass
class Erasure:
    """What an erasure did: the receipt's content."""

    subject: str
    request: str
    at: str
    by: str
    erased: list[dict[str, Any]]
    not_erased: list[dict[str, Any]]  # in progress, or left on disk (with why)
    on_do_not_record_list: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "request": self.request, "erased_at": self.at,
                "erased_by": self.by, "erased": self.erased, "not_erased": self.not_erased,
                "on_do_not_record_list": self.on_do_not_record_list,
                "warnings": self.warnings}


class Subjects:
    """The rights of one person over what the box holds, as one object the web layer and the
    CLI share. `record(action, target, reason, details)` writes an access log entry as the
    caller; `actor` names who acts (an account, or cli:<user>)."""

    def __init__(self, store: RecordingStore, requests: RequestBook,
                 pseudonymize: Callable[[str], str], do_not_record: Callable[[], DoNotRecord],
                 record: Record) -> None:
        self.store = store
        self.requests = requests
        self.pseudonymize = pseudonymize
        self.do_not_record = do_not_record
        self.record = record

    # -- reading ---------------------------------------------------------------------------
    def subject(self, number: str) -> str:
        """The number's pseudonym; ValueError if it is not a number."""
        if not normalise_number(number):
            raise ValueError("not a phone number")
        return self.pseudonymize(number)

    def recordings(self, number: str) -> list[dict[str, Any]]:
        return find_recordings(self.store, number)

    def listed(self, number: str) -> bool:
        return self.do_not_record().matches(number)

    def show(self, number: str, actor_reason: str = "") -> dict[str, Any]:
        """Everything held about `number` (logged as subject.show: looking is processing)."""
        subject = self.subject(number)
        docs = self.recordings(number)
        self.record("subject.show", subject, actor_reason, {"recordings": len(docs)})
        return {
            "subject": subject,
            "recordings": docs,
            "requests": [r.as_dict() for r in self.requests.for_subject(subject)],
            "on_do_not_record_list": self.listed(number),
        }

    # -- access ----------------------------------------------------------------------------
    def export_plan(self, number: str, sheet: Callable[[list[dict[str, Any]]], str],
                    by: str, reason: str = "", *, allow_restricted: bool = True) -> ZipPlan:
        """The person's archive. `sheet(docs)` renders the information sheet (it reads the
        access log, which this does not hold). Restricted recordings are included only with
        `allow_restricted` and a reason (the privacy officer's), else ValueError."""
        subject = self.subject(number)
        docs = self.recordings(number)
        restricted = [d["id"] for d in docs if d.get("restricted")]
        if restricted and not (allow_restricted and reason.strip()):
            raise ValueError("restricted recordings are exported only with a stated reason")
        entries: list[ZipEntry] = []
        missing: list[str] = []
        for doc in reversed(docs):  # oldest first in the archive
            rec_id = doc["id"]
            try:
                source = self.store.open_audio(rec_id)
            except FileNotFoundError:
                missing.append(rec_id)
            else:
                try:
                    size = source.size()
                finally:
                    source.close()
                fmt = str((doc.get("audio") or {}).get("format") or "wav")
                ext = EXTENSION.get(fmt, ".wav")
                entries.append(ZipEntry(f"recordings/{rec_id}{ext}", size,
                                        opener=_opener(self.store, rec_id)))
            meta = exported_metadata(doc)
            if rec_id in missing:
                meta["audio_missing"] = "the audio is not available (a USB stick not inserted)"
            entries.append(ZipEntry(f"recordings/{rec_id}.json", 0,
                                    data=json.dumps(meta, indent=1, ensure_ascii=False
                                                    ).encode()))
        html = sheet(docs).encode("utf-8")
        entries.insert(0, ZipEntry("information.html", 0, data=html))
        for entry in entries:
            if entry.data is not None:
                entry.size = len(entry.data)
        plan = ZipPlan(entries)
        details = {"recordings": len(docs), "audio_missing": len(missing),
                   "restricted": restricted, "bytes": plan.length}
        self.record("subject.export", subject, reason, details)
        for rec_id in restricted:
            self.record("recording.restricted_access", rec_id, reason, {"for": "export"})
        req = self.requests.answer("access", subject, f"archive of {len(docs)} recording(s) "
                                   "given", by)
        log.info("subject %s: export of %d recording(s) (request %s)", subject, len(docs),
                 req.id)
        return plan

    # -- erasure ---------------------------------------------------------------------------
    def erase(self, number: str, by: str, reason: str = "") -> Erasure:
        subject = self.subject(number)
        docs = self.recordings(number)
        busy = self.store.in_progress()
        doomed = [d for d in docs if d["id"] not in busy]
        not_erased = [{**summary(d), "why": "being recorded now: erase again after the call"}
                      for d in docs if d["id"] in busy]
        erased_ids = set(self.store.erase_many([d["id"] for d in doomed]))
        erased: list[dict[str, Any]] = []
        warnings: list[str] = []
        for doc in doomed:
            rec_id = doc["id"]
            if self.store.has_files(rec_id) and not self.store.available(
                    str(doc.get("volume") or "sd")):
                warnings.append(f"{rec_id}: its files on the USB stick (not inserted) are "
                                "crypto-erased (key destroyed); delete them when it is back")
            if rec_id in erased_ids and not self.store.has_files(rec_id):
                erased.append(summary(doc))
            elif rec_id in erased_ids and self.store.keys is not None:
                erased.append({**summary(doc), "note": "crypto-erased; some files remain "
                               "unreadable on a volume that is not there"})
            else:
                not_erased.append({**summary(doc), "why": "could not be erased"})
        listed = self.listed(number)
        if listed:
            warnings.append("the number stays on the do-not-record list: the person objected "
                            "to being recorded, and honouring that needs the number")
        outcome = f"{len(erased)} recording(s) erased" + (
            f", {len(not_erased)} not erased" if not_erased else "")
        req = self.requests.answer("erasure", subject, outcome, by)
        self.requests.forget_number(subject)
        self.record("subject.erase", subject, reason, {
            "request": req.id, "erased": [e["id"] for e in erased][:40],
            "count": len(erased), "not_erased": len(not_erased)})
        log.info("subject %s: %d recording(s) erased (request %s)", subject, len(erased),
                 req.id)
        result = Erasure(subject, req.id, datetime.now(UTC).isoformat(timespec="seconds"), by,
                         erased, not_erased, listed, warnings)
        self.requests.attach_receipt(req.id, result.as_dict())
        return result

    # -- restriction -----------------------------------------------------------------------
    def restrict(self, number: str, reason: str, by: str,
                 ids: Iterable[str] | None = None) -> list[str]:
        """Restrict the person's recordings (all, or `ids` among them); returns those now
        restricted by this call. ValueError without a reason."""
        subject = self.subject(number)
        if not reason.strip():
            raise ValueError("a restriction needs a reason")
        wanted = set(ids) if ids is not None else None
        done = []
        for doc in self.recordings(number):
            if wanted is not None and doc["id"] not in wanted:
                continue
            if not doc.get("restricted"):
                self.set_restriction(doc["id"], reason, by, subject=subject)
                done.append(doc["id"])
        req = self.requests.answer("restriction", subject,
                                   f"{len(done)} recording(s) restricted", by)
        self.record("subject.restrict", subject, reason, {"request": req.id,
                                                          "recordings": done[:40]})
        return done

    def set_restriction(self, rec_id: str, reason: str, by: str, subject: str = "") -> None:
        if not reason.strip():
            raise ValueError("a restriction needs a reason")
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self.store.set_fields(rec_id, restricted=True,
                              restriction={"reason": reason.strip()[:MAX_REASON], "by": by,
                                           "at": at})
        self.record("recording.restrict", rec_id, reason,
                    {"subject": subject} if subject else {})
        log.info("recording %s restricted", rec_id)

    def lift(self, rec_id: str, reason: str, by: str) -> None:
        """Lift a recording's restriction (logged; retention applies to it again)."""
        doc = self.store.get(rec_id)
        if doc is None:
            raise UnknownRecording(rec_id)
        if not doc.get("restricted"):
            return
        self.store.set_fields(rec_id, restricted=None, restriction=None)
        self.record("recording.unrestrict", rec_id, reason,
                    {"restricted_since": str((doc.get("restriction") or {}).get("at", ""))})
        log.info("recording %s: restriction lifted", rec_id)

    # -- rectification ---------------------------------------------------------------------
    def rectify(self, rec_id: str, changes: dict[str, str], by: str,
                reason: str = "") -> list[str]:
        """Correct a recording's numbers, name or notes; returns the changed fields."""
        doc = self.store.get(rec_id)
        if doc is None:
            raise UnknownRecording(rec_id)
        fields, details = rectification(doc, changes, self.pseudonymize)
        if not fields:
            return []
        self.store.set_fields(rec_id, **fields)
        subject = next((_pseudo(str(doc.get(f) or ""), self.pseudonymize)
                        for f in NUMBER_FIELDS if doc.get(f)), "")
        req = self.requests.answer("rectification", subject or "-",
                                   f"{', '.join(details['fields'])} corrected on {rec_id}", by)
        self.record("recording.rectify", rec_id, reason, {**details, "request": req.id})
        log.info("recording %s rectified: %s", rec_id, ", ".join(details["fields"]))
        return list(details["fields"])

    # -- objection -------------------------------------------------------------------------
    def object(self, number: str, by: str, reason: str = "") -> bool:
        """Put the number on the do-not-record list; False if it already was."""
        subject = self.subject(number)
        dnr = self.do_not_record()
        already = dnr.matches(number)
        req = self.requests.answer("objection", subject, "number on the do-not-record list",
                                   by)
        if not already:
            dnr.add(number, "number", reason=f"objection, request {req.id}")
        self.record("subject.object", subject, reason, {"request": req.id,
                                                        "already_listed": already})
        log.info("subject %s on the do-not-record list (request %s)", subject, req.id)
        return not already


def _opener(store: RecordingStore, rec_id: str) -> Callable[[], AudioSource]:
    return lambda: store.open_audio(rec_id)
