"""The recordings on disk and their index: the one writer of the TinyDB index.

Layout under <data_dir>/recordings/YYYY/MM/:
    <id>.cra    the audio, encrypted (crypto.EncryptedWriter: AES-256-GCM, one-second chunks)
    <id>.json   the sidecar: the recording's metadata, the source of truth for the index,
                sealed under the recording's key ({"id": ..., "sealed": base64})
and <data_dir>/keys/: the device key and each recording's wrapped key (keystore.KeyStore).
Without a KeyStore (encryption turned off in the configuration) the audio is a plain <id>.wav
and the sidecar plain JSON; both kinds are read whatever the setting, so turning encryption on
keeps older recordings playable. Ids are made of the UTC start time and random hex: no phone
number or name ever appears in a file or folder name.

The index is sharded by month (index/YYYY-MM.json, one TinyDB each, see index_shards), so adding
a recording rewrites only its month; index/recordings.json is a manifest naming the shards. A
shard that is corrupt or missing at start falls back to its previous version (.prev) merged with
that month's sidecars; a corrupt manifest rebuilds everything from the sidecars, as does
`reindex()`. With encryption on, shards and manifest are sealed under a key derived from the
device key (the index holds phone numbers). An index in the old single-file layout
(index/recordings.json holding the documents) is converted to shards at the first start and
kept as index/recordings.v1.json.

Reads never touch the disk: the store holds every recording's metadata as compact JSON bytes,
sorted by id (paging), and a map from the digits of caller and called numbers to ids (search).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tinydb import Query, TinyDB
from tinydb.table import Table

from callrec.storage.atomic_json import AtomicJSONStorage, CorruptIndex, fsync_dir, write_atomic
from callrec.storage.crypto import (
    CryptoError,
    EncryptedReader,
    EncryptedWav,
    EncryptedWriter,
    Sealer,
    decrypt_blob,
    encrypt_blob,
)
from callrec.storage.crypto import recover as recover_container
from callrec.storage.index_shards import (
    TABLE,
    ShardStorage,
    compact,
    is_manifest,
    month_of,
    phone_key,
    shard_docs,
    shard_document,
    shard_files,
    write_manifest,
)
from callrec.storage.index_view import IndexView
from callrec.storage.keystore import KeyStore, KeyStoreError
from callrec.storage.wavstream import StreamingWavWriter, repair

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^(\d{4})(\d{2})\d{2}T\d{6}Z-[0-9a-f]{8}$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


class UnknownRecording(KeyError):
    """No recording has this id (or the id is not well-formed)."""


def new_recording_id(started: datetime | None = None) -> str:
    """A sortable id from the UTC start time plus 32 random bits; no personal data."""
    started = (started or datetime.now(UTC)).astimezone(UTC)
    return f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def is_recording_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}"


ENCRYPTED_SUFFIX = ".cra"
ENCRYPTION = "aes-256-gcm-chunked-v1"


class AudioWriter(Protocol):
    """What the recorder writes through: StreamingWavWriter or crypto.EncryptedWriter."""

    path: Path
    data_bytes: int

    def write(self, pcm: bytes) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class AudioSource(Protocol):
    """A recording's playable audio as a WAV file, read by byte range (HTTP Range)."""

    content_type: str

    def size(self) -> int: ...
    def read_range(self, start: int, end: int) -> bytes: ...
    def close(self) -> None: ...


class PlainWav:
    """An unencrypted WAV file as an AudioSource."""

    content_type = "audio/wav"

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")  # closed by close()
        self._size = os.fstat(self._f.fileno()).st_size

    def size(self) -> int:
        return self._size

    def read_range(self, start: int, end: int) -> bytes:
        return os.pread(self._f.fileno(), max(0, min(end, self._size) - start), start)

    def close(self) -> None:
        self._f.close()


class DecryptedWav:
    """An encrypted recording as an AudioSource: a WAV header plus the decrypted chunks."""

    content_type = "audio/wav"

    def __init__(self, reader: EncryptedReader, rate: int) -> None:
        self._reader = reader
        self._wav = EncryptedWav(reader, rate)

    def size(self) -> int:
        return self._wav.size()

    def read_range(self, start: int, end: int) -> bytes:
        return self._wav.read_range(start, end)

    def close(self) -> None:
        self._reader.close()


def load_sidecar_file(path: Path, rec_id: str, keys: KeyStore | None) -> dict[str, Any] | None:
    """The sidecar at `path`, opened if sealed; None (and a log line) if it is missing,
    unreadable or its key is gone (crypto-erased)."""
    try:
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and "sealed" in doc:
            key = keys.key_for(rec_id) if keys is not None else None
            if key is None:
                raise CryptoError("sealed, and its key is gone (erased) or encryption is off")
            blob = base64.b64decode(doc["sealed"], validate=True)
            doc = json.loads(decrypt_blob(key, blob, rec_id.encode()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, CryptoError, KeyStoreError) as exc:
        log.warning("unreadable sidecar %s: %s", path.name, exc)
        return None
    return doc if isinstance(doc, dict) and doc.get("id") == rec_id else None


def open_audio_file(path: Path, rec_id: str, keys: KeyStore | None, rate: int) -> AudioSource:
    """The audio file of `rec_id` as a WAV AudioSource; FileNotFoundError if it cannot be
    read (missing, or encrypted and its key is gone)."""
    if path.suffix != ENCRYPTED_SUFFIX:
        return PlainWav(path)
    key = keys.key_for(rec_id) if keys is not None else None
    if key is None:
        raise FileNotFoundError(f"recording {rec_id}: no key to decrypt its audio")
    try:
        reader = EncryptedReader(path, key, rec_id, require_final=False)
    except CryptoError as exc:
        raise FileNotFoundError(f"recording {rec_id}: {exc}") from None
    return DecryptedWav(reader, rate)


class RecordingStore:
    """Files and index of recordings. Thread-safe; the only code that writes the index."""

    def __init__(self, data_dir: Path, keys: KeyStore | None = None) -> None:
        self.keys = keys
        self._sealer = Sealer(keys.derive_key("index")) if keys is not None else None
        self.root = Path(data_dir) / "recordings"
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_dir = Path(data_dir) / "index"
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = self.index_dir / "recordings.json"
        self._lock = threading.RLock()
        self._view = IndexView()
        self._months: set[str] = set()  # months with a shard
        self._dbs: dict[str, TinyDB] = {}
        self._hot: str | None = None  # the month whose shard data stays parsed
        self.bytes_written = 0  # index bytes written by this object (for the benchmark)
        with self._lock:
            self._open_index()

    # -- paths -------------------------------------------------------------------------------
    def _folder(self, rec_id: str) -> Path:
        m = _ID_RE.match(rec_id)
        if not m:
            raise UnknownRecording(rec_id)
        return self.root / m.group(1) / m.group(2)

    def audio_path(self, rec_id: str) -> Path:
        """Where the audio is (encrypted .cra, or a plain .wav from before encryption); for a
        recording without audio yet, where a new one would go."""
        folder = self._folder(rec_id)
        sealed, plain = folder / f"{rec_id}{ENCRYPTED_SUFFIX}", folder / f"{rec_id}.wav"
        if sealed.exists() or (self.keys is not None and not plain.exists()):
            return sealed
        return plain

    def has_files(self, rec_id: str) -> bool:
        """Anything of the recording left on disk (audio, sidecar or key)."""
        folder = self._folder(rec_id)
        names = (f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav", f"{rec_id}.json")
        key = self.keys is not None and self.keys.has_key(rec_id)
        return key or any((folder / n).exists() for n in names)

    def sidecar_path(self, rec_id: str) -> Path:
        return self._folder(rec_id) / f"{rec_id}.json"

    def shard_path(self, month: str) -> Path:
        return self.index_dir / f"{month}.json"

    # -- index: start-up ---------------------------------------------------------------------
    def _open_index(self) -> None:
        months = set(shard_files(self.index_dir))
        try:
            data = AtomicJSONStorage(self._manifest, self._sealer).read()
        except CorruptIndex as exc:
            log.error("index corrupt (%s); rebuilding from sidecar files", exc)
            self._manifest.rename(self._manifest.with_suffix(f".corrupt-{_stamp()}"))
            self._rebuild()
            return
        listed: set[str] = set()
        if data is not None and not is_manifest(data):
            self._migrate(data)
            return
        if data is not None:
            listed = {m for m in data.get("shards", {}) if _MONTH_RE.match(m)}
        months |= listed
        for month in sorted(months):
            self._load_shard(month)
        self._months = months
        if data is None or months != listed:
            self._write_manifest()

    def _load_shard(self, month: str) -> None:
        """Load one month into memory; a corrupt or missing shard is rebuilt (see _fallback)."""
        path = self.shard_path(month)
        try:
            data = ShardStorage(path, self._sealer).read()
            if data is None:
                raise CorruptIndex(f"{path.name}: missing or empty")
            docs = shard_docs(data)
        except (CorruptIndex, ValueError) as exc:
            docs = self._fallback(month, str(exc))
        self._extend(month, docs)

    def _extend(self, month: str, docs: Iterable[dict[str, Any]]) -> None:
        """Append a month's documents to the view; months must come in ascending order."""
        prefix = month.replace("-", "")
        by_id = {d["id"]: d for d in docs if is_recording_id(d["id"]) and d["id"][:6] == prefix}
        self._view.extend(by_id[rec_id] for rec_id in sorted(by_id))

    def _fallback(self, month: str, reason: str) -> list[dict[str, Any]]:
        """A shard is unusable: its .prev merged with the month's sidecars (which win)."""
        log.error("index shard %s unusable (%s); rebuilding it from .prev and sidecars",
                  month, reason)
        path = self.shard_path(month)
        storage = ShardStorage(path, self._sealer)
        if path.exists():
            path.rename(path.with_name(f"{path.name}.corrupt-{_stamp()}"))
        try:
            previous = shard_docs(AtomicJSONStorage(storage.prev, self._sealer).read())
        except (CorruptIndex, ValueError):
            previous = []
        folder = self.root / month[:4] / month[5:]
        found = {m["id"]: m for m in self._read_sidecars(folder)}
        docs = list(found.values())
        for doc in previous:
            rec_id = doc["id"]
            # Keep the previous entry only where the sidecar exists but could not be read.
            if rec_id not in found and is_recording_id(rec_id) and (
                self.sidecar_path(rec_id).exists()
            ):
                docs.append(doc)
        storage.write(shard_document(sorted(docs, key=lambda d: str(d["id"]))))
        self.bytes_written += storage.bytes_written
        return docs

    def _migrate(self, data: dict[str, Any]) -> None:
        """Convert the old single-file index to month shards; keep it as recordings.v1.json."""
        try:
            docs = shard_docs(data)
        except ValueError as exc:
            log.error("old index unusable (%s); rebuilding from sidecar files", exc)
            self._manifest.rename(self._manifest.with_suffix(f".corrupt-{_stamp()}"))
            self._rebuild()
            return
        kept = self.index_dir / "recordings.v1.json"
        if not kept.exists():
            try:
                os.link(self._manifest, kept)
            except OSError:
                shutil.copyfile(self._manifest, kept)
            fsync_dir(self.index_dir)
        self._replace_all(docs)
        log.info("index migrated to month shards: %d recordings (old index kept as %s)",
                 len(docs), kept.name)

    def _replace_all(self, docs: list[dict[str, Any]]) -> int:
        """Write every shard from `docs` (removing other shards) and reload the view."""
        by_month: dict[str, list[dict[str, Any]]] = {}
        for doc in docs:
            rec_id = doc.get("id")
            if isinstance(rec_id, str) and is_recording_id(rec_id):
                by_month.setdefault(month_of(rec_id), []).append(doc)
        for db in self._dbs.values():
            db.close()
        self._dbs, self._hot = {}, None
        self._view = IndexView()
        for month in sorted(by_month):
            storage = ShardStorage(self.shard_path(month), self._sealer)
            storage.write(shard_document(sorted(by_month[month], key=lambda d: d["id"])))
            self.bytes_written += storage.bytes_written
            self._extend(month, by_month[month])
        for month in set(shard_files(self.index_dir)) - set(by_month):
            self.shard_path(month).unlink(missing_ok=True)
            ShardStorage(self.shard_path(month)).prev.unlink(missing_ok=True)
        self._months = set(by_month)
        self._write_manifest()
        return len(self._view)

    def _write_manifest(self) -> None:
        write_manifest(self._manifest, sorted(self._months), self._sealer)

    def _rebuild(self) -> int:
        n = self._replace_all(list(self.iter_sidecars()))
        log.info("index rebuilt: %d recordings", n)
        return n

    def reindex(self) -> int:
        """Rebuild the index from the sidecar files; returns the number of recordings."""
        with self._lock:
            return self._rebuild()

    def load_sidecar(self, rec_id: str) -> dict[str, Any] | None:
        """A recording's sidecar, opened if sealed; None (and a log line) if it is missing,
        unreadable or its key is gone (crypto-erased)."""
        return load_sidecar_file(self.sidecar_path(rec_id), rec_id, self.keys)

    def _read_sidecars(self, folder: Path) -> Iterator[dict[str, Any]]:
        for path in sorted(folder.glob("*.json")):
            if is_recording_id(path.stem):
                meta = self.load_sidecar(path.stem)
                if meta is not None:
                    yield meta

    def iter_sidecars(self) -> Iterator[dict[str, Any]]:
        for folder in sorted(self.root.glob("*/*")):
            if folder.is_dir():
                yield from self._read_sidecars(folder)

    # -- index: writes -----------------------------------------------------------------------
    def _table(self, month: str) -> Table:
        """The TinyDB table of a month, its data parsed from the in-memory view if needed."""
        db = self._dbs.get(month)
        if db is None:
            db = self._dbs[month] = TinyDB(
                self.shard_path(month), storage=ShardStorage, sealer=self._sealer
            )
        storage = db.storage
        assert isinstance(storage, ShardStorage)
        if self._hot != month:
            if self._hot is not None and self._hot in self._dbs:
                hot = self._dbs[self._hot].storage
                assert isinstance(hot, ShardStorage)
                hot.drop_cache()
            storage.seed(shard_document(self._view.month_docs(month.replace("-", ""))))
            self._hot = month
        return db.table(TABLE, cache_size=0)

    def _written(self, month: str, before: int) -> None:
        storage = self._dbs[month].storage
        assert isinstance(storage, ShardStorage)
        self.bytes_written += storage.bytes_written - before
        if month not in self._months:
            self._months.add(month)
            self._write_manifest()

    def _shard_bytes(self, month: str) -> int:
        db = self._dbs.get(month)
        return db.storage.bytes_written if db is not None else 0  # type: ignore[attr-defined]

    # -- writes ------------------------------------------------------------------------------
    def prepare(self, rec_id: str) -> Path:
        """Create the folder for a new recording and return where its audio goes."""
        self._folder(rec_id).mkdir(parents=True, exist_ok=True)
        return self.audio_path(rec_id)

    def _key(self, rec_id: str) -> bytes | None:
        """The recording's data key, made (and durably stored, wrapped) on first use."""
        if self.keys is None:
            return None
        return self.keys.key_for(rec_id) or self.keys.new_key(rec_id)

    def open_writer(self, sidecar: dict[str, Any], rate: int) -> AudioWriter:
        """Start a recording's files: its key, its sidecar (status "recording", so a crash is
        recovered at the next start), then the audio file, returned open for appending."""
        rec_id = sidecar["id"]
        path = self.prepare(rec_id)
        key = self._key(rec_id)
        self.write_sidecar(sidecar)
        if key is None:
            return StreamingWavWriter(path, rate)
        return EncryptedWriter(path, key, rec_id)

    def audio_info(self, writer: AudioWriter, rate: int) -> dict[str, Any]:
        """The "audio" part of a recording's metadata once `writer` is closed."""
        info: dict[str, Any] = {
            "file": writer.path.name,
            "format": "wav",
            "codec": "pcm_s16le",
            "sample_rate": rate,
            "channels": 1,
            "bytes": writer.data_bytes,
        }
        if isinstance(writer, EncryptedWriter):
            info["encryption"] = ENCRYPTION
        return info

    def write_sidecar(self, meta: dict[str, Any]) -> None:
        """Durably write a recording's sidecar (its metadata), without indexing it."""
        rec_id = meta["id"]
        payload = json.dumps(meta, indent=1, ensure_ascii=False).encode()
        key = self._key(rec_id)
        if key is not None:
            sealed = encrypt_blob(key, payload, rec_id.encode())
            envelope = {"id": rec_id, "sealed": base64.b64encode(sealed).decode("ascii")}
            payload = json.dumps(envelope).encode()
        self._folder(rec_id).mkdir(parents=True, exist_ok=True)
        write_atomic(self.sidecar_path(rec_id), payload)

    def open_audio(self, rec_id: str) -> AudioSource:
        """The recording's audio as a WAV, for playback and download. Raises
        FileNotFoundError if there is none (never recorded, erased, or its key is gone)."""
        meta = self.get(rec_id) or self.load_sidecar(rec_id) or {}
        rate = int(meta.get("audio", {}).get("sample_rate", 8000))
        return open_audio_file(self.audio_path(rec_id), rec_id, self.keys, rate)

    def has_audio(self, rec_id: str) -> bool:
        path = self.audio_path(rec_id)
        if path.suffix == ENCRYPTED_SUFFIX:
            return path.is_file() and self.keys is not None and self.keys.has_key(rec_id)
        return path.is_file()

    def add(self, meta: dict[str, Any]) -> None:
        """Write the sidecar (durably) and then index the recording (in its month's shard).
        `size_bytes` (what retention counts) is set from the files on disk."""
        rec_id = meta["id"]
        meta = {**meta, "size_bytes": self.disk_bytes(rec_id)}
        self.write_sidecar(meta)
        month = month_of(rec_id)
        with self._lock:
            table = self._table(month)
            before = self._shard_bytes(month)
            try:
                if self._view.find(rec_id) is None:
                    table.insert(dict(meta))  # upsert would write twice: update, then insert
                else:
                    table.upsert(dict(meta), Query().id == rec_id)
            except BaseException:
                self._hot = None  # the shard's cached data may be ahead of the view: reseed
                raise
            self._written(month, before)
            self._view.put(json.loads(compact(meta)))  # a copy the caller cannot change

    def erase(self, rec_id: str) -> bool:
        """Destroy the key, delete the audio, then the sidecar, then the index entry. False if
        unknown."""
        audio, sidecar = self.audio_path(rec_id), self.sidecar_path(rec_id)
        with self._lock:
            known = self._view.find(rec_id) is not None
            found = known or self.has_files(rec_id)
            # The key first (crypto-erasure): once it is gone, copies of the audio and sidecar
            # left in flash blocks are unreadable. Then the audio: it is the personal data. A
            # crash after it leaves a sidecar without audio, which the index check at start
            # drops, never audio without a record.
            if self.keys is not None:
                self.keys.destroy(rec_id)
            for path in (audio, sidecar):
                path.unlink(missing_ok=True)
            if audio.parent.is_dir():
                fsync_dir(audio.parent)
            if known:
                self._remove([rec_id])
        if found:
            log.info("recording %s erased", rec_id)
        return found

    def _remove(self, ids: list[str]) -> None:
        by_month: dict[str, list[str]] = {}
        for rec_id in ids:
            by_month.setdefault(month_of(rec_id), []).append(rec_id)
        for month, month_ids in sorted(by_month.items()):
            table = self._table(month)
            before = self._shard_bytes(month)
            try:
                table.remove(Query().id.one_of(month_ids))
            except BaseException:
                self._hot = None
                raise
            self._written(month, before)
            for rec_id in month_ids:
                self._view.drop(rec_id)

    def recover(self) -> list[str]:
        """At start: finish recordings a crash interrupted, drop index entries without audio.

        A sidecar still marked "recording" belongs to a call that was in progress when the
        process died: its WAV header is repaired from the file size, it is marked
        "interrupted" and indexed, so it shows in the UI and plays. Only sidecars that are not
        indexed, or indexed as "recording", are read (a complete recording is indexed only
        after its final sidecar was written).
        """
        on_disk: set[str] = set()
        for folder in self.root.glob("*/*"):
            if folder.is_dir():
                on_disk.update(
                    name[:-5] for name in os.listdir(folder)
                    if name.endswith(".json") and is_recording_id(name[:-5])
                )
        with self._lock:
            view = self._view
            to_read = sorted(i for i in on_disk if view.find(i) is None or i in view.open)
        recovered = []
        for rec_id in to_read:
            meta = self.load_sidecar(rec_id)
            if meta is None or meta.get("status") != "recording":
                continue
            audio = self.audio_path(rec_id)
            try:
                size = self._repair_audio(rec_id, audio)
            except (OSError, ValueError, KeyStoreError) as exc:  # CryptoError is a ValueError
                log.warning("recording %s cannot be recovered: %s", rec_id, exc)
                continue
            rate = int(meta.get("audio", {}).get("sample_rate", 8000))
            meta.update(
                status="interrupted",
                ended_at=datetime.fromtimestamp(audio.stat().st_mtime, UTC).isoformat(),
                duration_s=round(size / (2 * rate), 3),
            )
            meta.setdefault("audio", {}).update(
                bytes=size, file=audio.name, format="wav", codec="pcm_s16le", channels=1
            )
            if audio.suffix == ENCRYPTED_SUFFIX:
                meta["audio"]["encryption"] = ENCRYPTION
            self.add(meta)
            recovered.append(rec_id)
            log.warning(
                "recording %s was interrupted; recovered %.1f s", rec_id, meta["duration_s"]
            )
        with self._lock:
            gone = [i for i in self._view.ids
                    if i not in on_disk and not self.sidecar_path(i).exists()]
            if gone:
                self._remove(gone)
        return recovered

    def _repair_audio(self, rec_id: str, audio: Path) -> int:
        """Make an interrupted recording's audio complete and playable; its audio bytes."""
        if audio.suffix != ENCRYPTED_SUFFIX:
            return repair(audio)
        key = self.keys.key_for(rec_id) if self.keys is not None else None
        if key is None:
            raise ValueError("encrypted, and its key is gone or encryption is off")
        return recover_container(audio, key, rec_id)

    # -- reads -------------------------------------------------------------------------------
    def get(self, rec_id: str) -> dict[str, Any] | None:
        if not is_recording_id(rec_id):
            return None
        with self._lock:
            i = self._view.find(rec_id)
            return self._view.doc(i) if i is not None else None

    def page(self, offset: int = 0, limit: int = 25) -> tuple[list[dict[str, Any]], int]:
        """One page of recordings, newest first, and the total count."""
        with self._lock:
            n = len(self._view)
            hi = n - max(0, offset)
            lo = max(0, hi - max(0, limit))
            return [self._view.doc(i) for i in range(hi - 1, lo - 1, -1)], n

    def search_number(self, number: str) -> list[dict[str, Any]]:
        """Recordings whose caller or called number has the same digits, newest first.

        '+33 6 12-34' and '33612 34' are the same number; '0612…' and '+33612…' are not.
        """
        key = phone_key(number)
        if not key:
            return []
        with self._lock:
            view = self._view
            found = (view.find(i) for i in reversed(view.phones.get(key, [])))
            return [view.doc(i) for i in found if i is not None]

    def all_docs(self) -> list[dict[str, Any]]:
        """Every recording's metadata, oldest first (for retention: a copy, read once)."""
        with self._lock:
            return [self._view.doc(i) for i in range(len(self._view))]

    def in_progress(self) -> frozenset[str]:
        """Ids indexed while still being recorded: retention never touches them."""
        with self._lock:
            return frozenset(self._view.open)

    def disk_bytes(self, rec_id: str) -> int:
        """Bytes the recording takes on disk: audio, sidecar and key file."""
        folder = self._folder(rec_id)
        paths = [self.audio_path(rec_id), folder / f"{rec_id}.json"]
        if self.keys is not None:
            paths.append(self.keys.keys_dir / rec_id[:6] / f"{rec_id}.key")
        return sum(p.stat().st_size for p in paths if p.exists())

    def count(self) -> int:
        with self._lock:
            return len(self._view)

    def close(self) -> None:
        with self._lock:
            for db in self._dbs.values():
                db.close()
            self._dbs, self._hot = {}, None
