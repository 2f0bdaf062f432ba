"""The index of recordings: day shards of TinyDB on disk, an in-memory view for reads.

The index is sharded by day (index/YYYY-MM-DD.json, one TinyDB each, see index_shards), so
adding a recording rewrites only its day; index/recordings.json is a manifest naming the
shards. A shard that is corrupt or missing at start falls back to its previous version
(.prev) merged with that day's sidecars; a corrupt manifest rebuilds everything from the
sidecars, as does `rebuild()` (`callrec reindex`). With encryption on, shards and manifest are
sealed (`Sealer`): the index holds phone numbers. Month shards (format 2) are split into day
shards at start; an index in the old single-file layout (index/recordings.json holding the
documents) is converted to shards at the first start and kept as index/recordings.v1.json.

Reads never touch the disk: `view` holds every recording's metadata compactly, sorted by id
(paging), with hashes of the caller and called numbers' digits (search); see index_view.

Split from recordings.py: the RecordingStore owns one ShardedIndex, serialises every call to
it under its lock (this class is not thread-safe by itself), and is its `SidecarSource`, the
recordings' own metadata files that the index is rebuilt from.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tinydb import Query, TinyDB
from tinydb.table import Table

from callrec.storage.atomic_json import AtomicJSONStorage, CorruptIndex, fsync_dir
from callrec.storage.crypto import Sealer
from callrec.storage.index_shards import (
    FORMAT,
    MONTH_RE,
    TABLE,
    ShardStorage,
    compact,
    day_of,
    id_prefix,
    is_manifest,
    manifest_format,
    month_of,
    shard_docs,
    shard_document,
    shard_files,
    write_manifest,
)
from callrec.storage.index_view import IndexView, valid_id
from callrec.storage.volumes import SD

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")  # <UTC start>-<random hex>
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_recording_id(value: str) -> bool:
    """Whether `value` is a well-formed recording id (checked before any path is made)."""
    return bool(_ID_RE.match(value))


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}"


class SidecarSource(Protocol):
    """Where the index is rebuilt from: the recordings' sidecars on the volumes there now."""

    def sidecars(self, month: str, prefix: str) -> Iterator[dict[str, Any]]:
        """The readable sidecars of `month` ("YYYY-MM") whose id starts with `prefix`, the
        SD card's first."""
        ...

    def months_on_disk(self) -> set[str]: ...

    def has_sidecar(self, rec_id: str) -> bool: ...

    def reachable(self, doc: dict[str, Any]) -> bool:
        """False when the recording's files are on a volume that is not there now."""
        ...


class ShardedIndex:
    """Day shards plus the in-memory view; every method is called under the store's lock."""

    def __init__(self, index_dir: Path, sealer: Sealer | None, source: SidecarSource) -> None:
        self.index_dir = index_dir
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = index_dir / "recordings.json"
        self._sealer = sealer
        self.source = source
        self.view = IndexView()
        self._shards: set[str] = set()  # days with a shard
        self._dbs: dict[str, TinyDB] = {}
        self._hot: str | None = None  # the day whose shard data stays parsed
        self.bytes_written = 0  # index bytes written by this object (for the benchmark)

    def shard_path(self, month: str) -> Path:
        return self.index_dir / f"{month}.json"

    # -- start-up ---------------------------------------------------------------------
    def open(self) -> None:
        try:
            data = AtomicJSONStorage(self.manifest, self._sealer).read()
        except CorruptIndex as exc:
            log.error("index corrupt (%s); rebuilding from sidecar files", exc)
            self.manifest.rename(self.manifest.with_suffix(f".corrupt-{_stamp()}"))
            self.rebuild()
            return
        if data is not None and not is_manifest(data):
            self._migrate(data)
            return
        fmt = manifest_format(data) if data is not None else None
        listed = {s for s in (data or {}).get("shards", {}) if _DAY_RE.match(s)} if (
            fmt == FORMAT) else set()
        # Format 2 had a shard per month: each is split into day shards (the month's shards
        # written first, the manifest next, the month's files deleted last, so that a crash
        # at any point leaves the month file to split again at the next start).
        months = set(shard_files(self.index_dir, MONTH_RE))
        if fmt == 2 and data is not None:
            months |= {m for m in data.get("shards", {}) if _MONTH_RE.match(m)}
        for month in sorted(months):
            self._split_month(month)
        days = set(shard_files(self.index_dir)) | listed
        for day in sorted(days):
            self._load_shard(day)
        self._shards = days
        if data is None or months or days != listed:
            self._write_manifest()
        if months:
            self._delete_shards(months)
            log.info("index: %d month shard(s) split into day shards", len(months))

    def _split_month(self, month: str) -> None:
        """Write a format-2 month shard's recordings as day shards (its .prev and the month's
        sidecars if it is unusable)."""
        try:
            docs = self._read_shard(month)
        except (CorruptIndex, ValueError) as exc:
            docs = self._recovered_docs(month, str(exc))
        by_day: dict[str, list[dict[str, Any]]] = {}
        for doc in docs:
            if is_recording_id(doc["id"]) and doc["id"].startswith(id_prefix(month)):
                by_day.setdefault(day_of(doc["id"]), []).append(doc)
        for day in sorted(by_day):
            self._write_shard(day, by_day[day])

    def _load_shard(self, day: str) -> None:
        """Load one day into memory; a corrupt or missing shard is rebuilt (see _fallback)."""
        try:
            docs = self._read_shard(day)
        except (CorruptIndex, ValueError) as exc:
            docs = self._fallback(day, str(exc))
        self._extend(day, docs)

    def _read_shard(self, shard: str) -> list[dict[str, Any]]:
        """A shard's documents; CorruptIndex or ValueError if it is missing or unusable."""
        path = self.shard_path(shard)
        data = ShardStorage(path, self._sealer).read()
        if data is None:
            raise CorruptIndex(f"{path.name}: missing or empty")
        return shard_docs(data)

    def _extend(self, day: str, docs: Iterable[dict[str, Any]]) -> None:
        """Append a day's documents to the view; days must come in ascending order."""
        prefix = id_prefix(day)
        by_id = {d["id"]: d for d in docs if d["id"].startswith(prefix)}
        self.view.extend(by_id[rec_id] for rec_id in sorted(by_id))  # leaves out bad ids

    def _write_shard(self, shard: str, docs: list[dict[str, Any]]) -> None:
        storage = ShardStorage(self.shard_path(shard), self._sealer)
        storage.write(shard_document(sorted(docs, key=lambda d: str(d["id"]))))
        self.bytes_written += storage.bytes_written

    def _delete_shards(self, shards: Iterable[str]) -> None:
        for shard in shards:
            path = self.shard_path(shard)
            # .prev first: a file left by a crash is then the newest version.
            ShardStorage(path).prev.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        fsync_dir(self.index_dir)

    def _fallback(self, day: str, reason: str) -> list[dict[str, Any]]:
        """A shard is unusable: rebuilt from its .prev and the day's sidecars (which win)."""
        docs = self._recovered_docs(day, reason)
        self._write_shard(day, docs)
        return docs

    def _recovered_docs(self, shard: str, reason: str) -> list[dict[str, Any]]:
        """An unusable shard's (a day's, or a format-2 month's) recordings: its .prev merged
        with the sidecars (which win). The damaged file is kept as .corrupt-<time>."""
        log.error("index shard %s unusable (%s); rebuilding it from .prev and sidecars",
                  shard, reason)
        path = self.shard_path(shard)
        storage = ShardStorage(path, self._sealer)
        if path.exists():
            path.rename(path.with_name(f"{path.name}.corrupt-{_stamp()}"))
        try:
            previous = shard_docs(AtomicJSONStorage(storage.prev, self._sealer).read())
        except (CorruptIndex, ValueError):
            previous = []
        prefix = id_prefix(shard)
        found: dict[str, dict[str, Any]] = {}
        for meta in self.source.sidecars(shard[:7], prefix):
            found.setdefault(meta["id"], meta)  # the SD card's first: it wins
        docs = list(found.values())
        for doc in previous:
            rec_id = doc["id"]
            # Keep the previous entry where the sidecar exists but could not be read, or is
            # on a stick that is not inserted.
            if rec_id not in found and is_recording_id(rec_id) and rec_id.startswith(prefix) and (
                self.source.has_sidecar(rec_id) or not self.source.reachable(doc)
            ):
                docs.append(doc)
        return docs

    def _migrate(self, data: dict[str, Any]) -> None:
        """Convert the old single-file index to day shards; keep it as recordings.v1.json."""
        try:
            docs = shard_docs(data)
        except ValueError as exc:
            log.error("old index unusable (%s); rebuilding from sidecar files", exc)
            self.manifest.rename(self.manifest.with_suffix(f".corrupt-{_stamp()}"))
            self.rebuild()
            return
        kept = self.index_dir / "recordings.v1.json"
        if not kept.exists():
            try:
                os.link(self.manifest, kept)
            except OSError:
                shutil.copyfile(self.manifest, kept)
            fsync_dir(self.index_dir)
        self._replace_all(docs)
        log.info("index migrated to day shards: %d recordings (old index kept as %s)",
                 len(docs), kept.name)

    def _replace_all(self, docs: list[dict[str, Any]]) -> int:
        """Write every shard from `docs` (removing other shards) and reload the view."""
        self._start_replacing()
        self._put_month_docs(docs)
        return self._finish_replacing()

    def _start_replacing(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs, self._hot = {}, None
        self.view = IndexView()
        self._shards = set()

    def _put_month_docs(self, docs: Iterable[dict[str, Any]]) -> None:
        """Write the day shards of `docs` and add them to the view (after earlier months)."""
        by_day: dict[str, list[dict[str, Any]]] = {}
        for doc in docs:
            rec_id = doc.get("id")
            if isinstance(rec_id, str) and is_recording_id(rec_id) and valid_id(rec_id):
                by_day.setdefault(day_of(rec_id), []).append(doc)
        for day in sorted(by_day):
            self._write_shard(day, by_day[day])
            self._extend(day, by_day[day])
            self._shards.add(day)

    def _finish_replacing(self) -> int:
        """Delete the shards not rewritten (and any format-2 month shard), write the manifest."""
        stale = set(shard_files(self.index_dir)) - self._shards
        self._delete_shards(stale | set(shard_files(self.index_dir, MONTH_RE)))
        self._write_manifest()
        return len(self.view)

    def _write_manifest(self) -> None:
        write_manifest(self.manifest, sorted(self._shards), self._sealer)

    def rebuild(self) -> int:
        """Every shard rewritten from the sidecars, a month at a time: the metadata of
        100,000 recordings parsed at once would take hundreds of MB."""
        old = self.view
        months = self.source.months_on_disk()
        i = 0
        while i < len(old):  # the months of the index too (a stick's may not be there)
            rec_id = old.id_at(i)
            months.add(month_of(rec_id))
            i = old.prefix_range(rec_id[:6]).stop
        self._start_replacing()
        for month in sorted(months):
            prefix = id_prefix(month)
            found: dict[str, dict[str, Any]] = {}
            for meta in self.source.sidecars(month, prefix):  # a fall-back's SD card's wins
                found.setdefault(meta["id"], meta)
            # Recordings on a stick that is not inserted keep their index entries.
            for i in old.prefix_range(prefix):
                d = old.doc(i)
                if (d["id"] not in found and d.get("volume", SD) != SD
                        and not self.source.reachable(d)):
                    found[d["id"]] = d
            self._put_month_docs(found.values())
        n = self._finish_replacing()
        log.info("index rebuilt: %d recordings", n)
        return n

    # -- writes -----------------------------------------------------------------------
    def _table(self, day: str) -> Table:
        """The TinyDB table of a day, its data parsed from the in-memory view if needed."""
        db = self._dbs.get(day)
        if db is None:
            db = self._dbs[day] = TinyDB(
                self.shard_path(day), storage=ShardStorage, sealer=self._sealer
            )
        storage = db.storage
        assert isinstance(storage, ShardStorage)
        if self._hot != day:
            if self._hot is not None and self._hot in self._dbs:
                hot = self._dbs[self._hot].storage
                assert isinstance(hot, ShardStorage)
                hot.drop_cache()
            storage.seed(shard_document(self.view.prefix_docs(id_prefix(day))))
            self._hot = day
        return db.table(TABLE, cache_size=0)

    def _written(self, day: str, before: int) -> None:
        storage = self._dbs[day].storage
        assert isinstance(storage, ShardStorage)
        self.bytes_written += storage.bytes_written - before
        if day not in self._shards:
            self._shards.add(day)
            self._write_manifest()

    def _shard_bytes(self, day: str) -> int:
        db = self._dbs.get(day)
        return db.storage.bytes_written if db is not None else 0  # type: ignore[attr-defined]

    # -- changes -----------------------------------------------------------------------------
    def put(self, meta: dict[str, Any]) -> None:
        """Index (or update) one recording: only its day's shard is written."""
        rec_id = meta["id"]
        day = day_of(rec_id)
        table = self._table(day)
        before = self._shard_bytes(day)
        try:
            if self.view.find(rec_id) is None:
                table.insert(dict(meta))  # upsert would write twice: update, then insert
            else:
                table.upsert(dict(meta), Query().id == rec_id)
        except BaseException:
            self._hot = None  # the shard's cached data may be ahead of the view: reseed
            raise
        self._written(day, before)
        self.view.put(json.loads(compact(meta)))  # a copy the caller cannot change

    def remove(self, ids: list[str]) -> None:
        """Drop recordings from the index, writing each day's shard once."""
        by_day: dict[str, list[str]] = {}
        for rec_id in ids:
            by_day.setdefault(day_of(rec_id), []).append(rec_id)
        for day, day_ids in sorted(by_day.items()):
            table = self._table(day)
            before = self._shard_bytes(day)
            try:
                table.remove(Query().id.one_of(day_ids))
            except BaseException:
                self._hot = None
                raise
            self._written(day, before)
            for rec_id in day_ids:
                self.view.drop(rec_id)

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs, self._hot = {}, None
