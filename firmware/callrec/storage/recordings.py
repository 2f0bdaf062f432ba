"""The recordings on disk and their index: the one writer of the TinyDB index.

Layout under <data_dir>/recordings/YYYY/MM/:
    <id>.wav    the audio
    <id>.json   the sidecar: the recording's metadata, the source of truth for the index
Ids are made of the UTC start time and random hex: no phone number or name ever appears in a
file or folder name. The index (index/recordings.json) is a cache of the sidecars and can be
rebuilt from them at any time.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB

from callrec.storage.atomic_json import AtomicJSONStorage, CorruptIndex, fsync_dir, write_atomic
from callrec.storage.wavstream import repair

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^(\d{4})(\d{2})\d{2}T\d{6}Z-[0-9a-f]{8}$")


class UnknownRecording(KeyError):
    """No recording has this id (or the id is not well-formed)."""


def new_recording_id(started: datetime | None = None) -> str:
    """A sortable id from the UTC start time plus 32 random bits; no personal data."""
    started = (started or datetime.now(UTC)).astimezone(UTC)
    return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_recording_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


class RecordingStore:
    """Files and index of recordings. Thread-safe; the only code that writes the index."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "recordings"
        self.root.mkdir(parents=True, exist_ok=True)
        index_path = Path(data_dir) / "index" / "recordings.json"
        self._lock = threading.RLock()
        self._db = self._open_index(index_path)
        self._table = self._db.table("recordings")
        self._sorted: list[dict[str, Any]] | None = None

    # -- paths -------------------------------------------------------------------------------
    def _folder(self, rec_id: str) -> Path:
        m = _ID_RE.match(rec_id)
        if not m:
            raise UnknownRecording(rec_id)
        return self.root / m.group(1) / m.group(2)

    def audio_path(self, rec_id: str) -> Path:
        return self._folder(rec_id) / f"{rec_id}.wav"

    def sidecar_path(self, rec_id: str) -> Path:
        return self._folder(rec_id) / f"{rec_id}.json"

    # -- index -------------------------------------------------------------------------------
    def _open_index(self, path: Path) -> TinyDB:
        try:
            db = TinyDB(path, storage=AtomicJSONStorage)
            db.table("recordings").all()  # read now so that corruption is found at start
            return db
        except CorruptIndex as exc:
            log.error("index corrupt (%s); rebuilding from sidecar files", exc)
            path.rename(path.with_suffix(f".corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S}"))
            db = TinyDB(path, storage=AtomicJSONStorage)
            self._rebuild(db)
            return db

    def _rebuild(self, db: TinyDB) -> int:
        table = db.table("recordings")
        table.truncate()
        metas = list(self.iter_sidecars())
        table.insert_multiple(metas)
        log.info("index rebuilt: %d recordings", len(metas))
        return len(metas)

    def reindex(self) -> int:
        """Rebuild the index from the sidecar files; returns the number of recordings."""
        with self._lock:
            self._sorted = None
            return self._rebuild(self._db)

    def iter_sidecars(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.root.glob("*/*/*.json")):
            if not is_recording_id(path.stem):
                continue
            try:
                meta = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("unreadable sidecar %s: %s", path.name, exc)
                continue
            if isinstance(meta, dict) and meta.get("id") == path.stem:
                yield meta

    # -- writes ------------------------------------------------------------------------------
    def prepare(self, rec_id: str) -> Path:
        """Create the folder for a new recording and return its audio path."""
        folder = self._folder(rec_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{rec_id}.wav"

    def write_sidecar(self, meta: dict[str, Any]) -> None:
        """Durably write a recording's sidecar (its metadata), without indexing it."""
        payload = json.dumps(meta, indent=1, ensure_ascii=False).encode()
        self._folder(meta["id"]).mkdir(parents=True, exist_ok=True)
        write_atomic(self.sidecar_path(meta["id"]), payload)

    def add(self, meta: dict[str, Any]) -> None:
        """Write the sidecar (durably) and then index the recording."""
        rec_id = meta["id"]
        self.write_sidecar(meta)
        with self._lock:
            self._table.upsert(meta, Query().id == rec_id)
            self._sorted = None

    def erase(self, rec_id: str) -> bool:
        """Delete the audio, then the sidecar, then the index entry. False if unknown."""
        audio, sidecar = self.audio_path(rec_id), self.sidecar_path(rec_id)
        with self._lock:
            known = bool(self._table.search(Query().id == rec_id))
            found = known or audio.exists() or sidecar.exists()
            # Audio first: it is the personal data. A crash after it leaves a sidecar without
            # audio, which the index check at start drops, never audio without a record.
            for path in (audio, sidecar):
                path.unlink(missing_ok=True)
            fsync_dir(audio.parent)
            self._table.remove(Query().id == rec_id)
            self._sorted = None
        if found:
            log.info("recording %s erased", rec_id)
        return found

    def recover(self) -> list[str]:
        """At start: finish recordings a crash interrupted, drop index entries without audio.

        A sidecar still marked "recording" belongs to a call that was in progress when the
        process died: its WAV header is repaired from the file size, it is marked
        "interrupted" and indexed, so it shows in the UI and plays.
        """
        recovered = []
        for meta in list(self.iter_sidecars()):
            if meta.get("status") != "recording":
                continue
            rec_id = meta["id"]
            audio = self.audio_path(rec_id)
            try:
                size = repair(audio)
            except (OSError, ValueError) as exc:
                log.warning("recording %s cannot be recovered: %s", rec_id, exc)
                continue
            rate = int(meta.get("audio", {}).get("sample_rate", 8000))
            meta.update(
                status="interrupted",
                ended_at=datetime.fromtimestamp(audio.stat().st_mtime, UTC).isoformat(),
                duration_s=round(size / (2 * rate), 3),
            )
            meta.setdefault("audio", {})["bytes"] = size
            self.add(meta)
            recovered.append(rec_id)
            log.warning(
                "recording %s was interrupted; recovered %.1f s", rec_id, meta["duration_s"]
            )
        with self._lock:
            for doc in self._table.all():
                if not self.sidecar_path(doc["id"]).exists():
                    self._table.remove(Query().id == doc["id"])
                    self._sorted = None
        return recovered

    # -- reads -------------------------------------------------------------------------------
    def get(self, rec_id: str) -> dict[str, Any] | None:
        if not is_recording_id(rec_id):
            return None
        with self._lock:
            found = self._table.search(Query().id == rec_id)
        return dict(found[0]) if found else None

    def _newest_first(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(
                    (dict(d) for d in self._table.all()), key=lambda d: d["id"], reverse=True
                )
            return self._sorted

    def page(self, offset: int = 0, limit: int = 25) -> tuple[list[dict[str, Any]], int]:
        """One page of recordings, newest first, and the total count."""
        rows = self._newest_first()
        offset = max(0, offset)
        return [dict(r) for r in rows[offset : offset + max(0, limit)]], len(rows)

    def count(self) -> int:
        return len(self._newest_first())

    def close(self) -> None:
        with self._lock:
            self._db.close()
