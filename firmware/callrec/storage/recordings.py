"""The recordings on disk and their index: the one writer of the TinyDB index.

Layout under <data_dir>/recordings/YYYY/MM/ (volume "sd", the SD card) or
<usb_mount_point>/callrec/recordings/YYYY/MM/ (volume "usb", the USB stick):
    <id>.cra    the audio, encrypted (crypto.EncryptedWriter: AES-256-GCM, one-second chunks)
    <id>.json   the sidecar: the recording's metadata, the source of truth for the index,
                sealed under the recording's key ({"id": ..., "sealed": base64})
and, on the SD card only, <data_dir>/index/ and <data_dir>/keys/: the device key and each
recording's wrapped key (keystore.KeyStore).
Without a KeyStore (encryption turned off in the configuration) the audio is a plain <id>.wav
and the sidecar plain JSON; both kinds are read whatever the setting, so turning encryption on
keeps older recordings playable. Ids are made of the UTC start time and random hex: no phone
number or name ever appears in a file or folder name.

A recording's metadata names its `volume`: where its sidecar is (absent: "sd"). Its audio is
<id>.cra next to it, unless `parts` lists the audio files in order, each
{"volume", "file", "bytes"}: a stick that failed during a call leaves the audio written to it
until the last successful sync, and the rest of the call continues on the SD card as
<id>.part2.cra (the sidecar then on the SD card). Only the first `bytes` of each part count
(a part abandoned after an error may hold a few unsynced bytes that the next part repeats).
A recording whose stick is not inserted stays indexed; its audio cannot be played until the
stick is back. The index and the keys never go on the stick.

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
import errno
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.table import Table

from callrec.storage.atomic_json import AtomicJSONStorage, CorruptIndex, fsync_dir, write_atomic
from callrec.storage.crypto import (
    CryptoError,
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
from callrec.storage.volumes import (
    DEFAULT_USB_SUBDIR,
    MOUNTINFO,
    SD,
    USB,
    label,
    mount_for,
    parse_mountinfo,
)
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


from callrec.storage.audio_files import (  # noqa: E402 (re-exported)
    ENCRYPTED_SUFFIX,
    AudioSource,
    AudioWriter,
    JoinedWav,
    PcmPart,
    open_audio_file,
)

ENCRYPTION = "aes-256-gcm-chunked-v1"



def usb_mounted(mount_point: Path) -> bool:
    """The stick's folder is on a filesystem mounted at `mount_point` or below it (not on the
    SD card's empty mount-point directory). Reads the mount table only: never blocks on the
    stick itself."""
    point = os.path.realpath(mount_point)
    try:
        text = MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return os.path.ismount(point)
    entry = mount_for(os.path.join(point, DEFAULT_USB_SUBDIR), parse_mountinfo(text))
    if entry is None:
        return False
    at = os.path.normpath(entry.mount_point)
    return at == point or at.startswith(point.rstrip("/") + "/")


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


class RecordingStore:
    """Files and index of recordings. Thread-safe; the only code that writes the index."""

    def __init__(
        self,
        data_dir: Path,
        keys: KeyStore | None = None,
        *,
        usb_mount_point: Path | str | None = None,
        usb_available: Callable[[], bool] | None = None,
    ) -> None:
        """`usb_mount_point`: the stick's recordings are under <it>/callrec/recordings.
        `usb_available` tells whether the stick is there now (default: its mount is listed in
        the mount table); tests pass their own."""
        self.keys = keys
        self._sealer = Sealer(keys.derive_key("index")) if keys is not None else None
        self.root = Path(data_dir) / "recordings"
        self.root.mkdir(parents=True, exist_ok=True)
        self.roots: dict[str, Path] = {SD: self.root}
        self.usb_mount_point = Path(usb_mount_point) if usb_mount_point is not None else None
        if self.usb_mount_point is not None:
            self.roots[USB] = self.usb_mount_point / DEFAULT_USB_SUBDIR / "recordings"
            point = self.usb_mount_point
            self._usb_available = usb_available or (lambda: usb_mounted(point))
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

    # -- volumes and paths -------------------------------------------------------------------
    def available(self, volume: str) -> bool:
        """Whether a volume's files can be read and written now (the SD card always is)."""
        if volume == SD:
            return True
        return volume == USB and USB in self.roots and self._usb_available()

    def usable_roots(self) -> list[tuple[str, Path]]:
        return [(name, root) for name, root in self.roots.items() if self.available(name)]

    def _folder(self, rec_id: str, volume: str = SD) -> Path:
        m = _ID_RE.match(rec_id)
        if not m:
            raise UnknownRecording(rec_id)
        return self.roots.get(volume, self.root) / m.group(1) / m.group(2)

    def _order(self, first: str) -> list[str]:
        return [first, *(v for v in self.roots if v != first)] if first in self.roots else [
            *self.roots]

    def part_file(self, rec_id: str, part: int = 1) -> str:
        """The name of a recording's audio file: <id>.cra, or <id>.partN.cra after a fall-back
        (.wav without encryption)."""
        suffix = ENCRYPTED_SUFFIX if self.keys is not None else ".wav"
        return f"{rec_id}{suffix}" if part == 1 else f"{rec_id}.part{part}{suffix}"

    def _meta(self, rec_id: str) -> dict[str, Any]:
        return self.get(rec_id) or self.load_sidecar(rec_id) or {}

    def audio_parts(
        self, rec_id: str, meta: dict[str, Any] | None = None
    ) -> list[tuple[str, Path, int | None]]:
        """The recording's audio files in order: (volume, path, bytes that count or None)."""
        meta = self._meta(rec_id) if meta is None else meta
        parts = meta.get("parts")
        if isinstance(parts, list) and parts:
            return [
                (str(p.get("volume", SD)), self._folder(rec_id, str(p.get("volume", SD)))
                 / Path(str(p["file"])).name, p.get("bytes"))
                for p in parts if isinstance(p, dict) and p.get("file")
            ]
        volume = str(meta.get("volume") or SD)
        for vol in self._order(volume):
            folder = self._folder(rec_id, vol)
            for name in (f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav"):
                if (folder / name).exists():
                    return [(vol, folder / name, None)]
        return [(volume, self._folder(rec_id, volume) / self.part_file(rec_id), None)]

    def audio_path(self, rec_id: str) -> Path:
        """Where the (last part of the) audio is (encrypted .cra, or a plain .wav from before
        encryption); for a recording without audio yet, where a new one would go."""
        return self.audio_parts(rec_id)[-1][1]

    def _file_names(self, rec_id: str) -> list[str]:
        """Every file name a recording can have in its folder: audio parts first, sidecar last."""
        audio = [f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav"]
        audio += [f"{rec_id}.part{n}{ext}" for n in (2, 3) for ext in (ENCRYPTED_SUFFIX, ".wav")]
        return [*audio, f"{rec_id}.json"]

    def has_files(self, rec_id: str) -> bool:
        """Anything of the recording left on disk (audio, sidecar or key), on any volume."""
        key = self.keys is not None and self.keys.has_key(rec_id)
        return key or any(
            (self._folder(rec_id, vol) / n).exists()
            for vol in self.roots for n in self._file_names(rec_id)
        )

    def sidecar_path(self, rec_id: str, volume: str | None = None) -> Path:
        """The sidecar on `volume`; without it, the one that exists (the SD card's wins: a
        fall-back's final sidecar is there), else where the SD card's would go."""
        if volume is not None:
            return self._folder(rec_id, volume) / f"{rec_id}.json"
        for vol in self.roots:
            path = self._folder(rec_id, vol) / f"{rec_id}.json"
            if path.exists():
                return path
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
        found: dict[str, dict[str, Any]] = {}
        for _, root in self.usable_roots():
            for meta in self._read_sidecars(root / month[:4] / month[5:]):
                found.setdefault(meta["id"], meta)  # the SD card's first: it wins
        docs = list(found.values())
        for doc in previous:
            rec_id = doc["id"]
            # Keep the previous entry where the sidecar exists but could not be read, or is
            # on a stick that is not inserted.
            if rec_id not in found and is_recording_id(rec_id) and (
                self.sidecar_path(rec_id).exists() or not self._reachable(doc)
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

    def _reachable(self, doc: dict[str, Any]) -> bool:
        """False when the recording's sidecar or audio is on a volume that is not there."""
        volumes = {str(doc.get("volume") or SD)}
        parts = doc.get("parts")
        if isinstance(parts, list):
            volumes |= {str(p.get("volume", SD)) for p in parts if isinstance(p, dict)}
        return all(self.available(v) for v in volumes)

    def _rebuild(self) -> int:
        docs = list(self.iter_sidecars())
        found = {d["id"] for d in docs}
        # Recordings on a stick that is not inserted keep their index entries.
        docs += [d for d in (self._view.doc(i) for i in range(len(self._view)))
                 if d["id"] not in found and d.get("volume", SD) != SD and not self._reachable(d)]
        n = self._replace_all(docs)
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
                meta = load_sidecar_file(path, path.stem, self.keys)
                if meta is not None:
                    yield meta

    def iter_sidecars(self) -> Iterator[dict[str, Any]]:
        """Every readable sidecar on the volumes that are there now; a recording with a
        sidecar on both (a call that fell back to the SD card) is read from the SD card."""
        seen: set[str] = set()
        for _, root in self.usable_roots():
            for folder in sorted(root.glob("*/*")):
                if folder.is_dir():
                    for meta in self._read_sidecars(folder):
                        if meta["id"] not in seen:
                            seen.add(meta["id"])
                            yield meta

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
    def prepare(self, rec_id: str, volume: str = SD) -> Path:
        """Create the folder for a new recording and return where its audio goes."""
        folder = self._writable_folder(rec_id, volume)
        if volume == SD:
            return self.audio_path(rec_id)
        return folder / self.part_file(rec_id)

    def _writable_folder(self, rec_id: str, volume: str) -> Path:
        """The recording's folder on `volume`, created; never on a stick that is not mounted
        (that would write into the SD card's empty mount-point directory)."""
        if not self.available(volume):
            raise OSError(errno.ENODEV, f"{label(volume)} is not mounted")
        folder = self._folder(rec_id, volume)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    def _key(self, rec_id: str) -> bytes | None:
        """The recording's data key, made (and durably stored, wrapped) on first use."""
        if self.keys is None:
            return None
        return self.keys.key_for(rec_id) or self.keys.new_key(rec_id)

    def open_writer(
        self, sidecar: dict[str, Any], rate: int, volume: str = SD, part: int = 1
    ) -> AudioWriter:
        """Start a recording's files on `volume`: its key (on the SD card), its sidecar
        (status "recording", so a crash is recovered at the next start), then the audio file
        (`part` > 1: a continuation, which the sidecar's `parts` must list), returned open
        for appending."""
        rec_id = sidecar["id"]
        path = self._writable_folder(rec_id, volume) / self.part_file(rec_id, part)
        key = self._key(rec_id)
        self.write_sidecar({**sidecar, "volume": volume})
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
        volume = str(meta.get("volume") or SD)
        self._writable_folder(rec_id, volume)
        write_atomic(self.sidecar_path(rec_id, volume), payload)

    def open_audio(self, rec_id: str) -> AudioSource:
        """The recording's audio as a WAV, for playback and download. Raises
        FileNotFoundError if there is none (never recorded, erased, or its key is gone)."""
        meta = self._meta(rec_id)
        rate = int(meta.get("audio", {}).get("sample_rate", 8000))
        parts = self.audio_parts(rec_id, meta)
        present = [p for p in parts if self.available(p[0]) and p[1].is_file()]
        if not present:
            if any(not self.available(vol) for vol, _, _ in parts):
                raise FileNotFoundError(
                    f"recording {rec_id}: its audio is on the USB stick, which is not inserted"
                )
            raise FileNotFoundError(f"recording {rec_id}: no audio")
        if len(parts) == 1:
            return open_audio_file(present[0][1], rec_id, self.keys, rate)
        # A call that fell back to the SD card: its parts joined (those that are there).
        opened: list[PcmPart] = []
        try:
            for _, path, count in present:
                opened.append(PcmPart(path, rec_id, self.keys, count))
        except BaseException:
            for pcm in opened:
                pcm.close()
            raise
        return JoinedWav(opened, rate)

    def has_audio(self, rec_id: str) -> bool:
        paths = [path for vol, path, _ in self.audio_parts(rec_id)
                 if self.available(vol) and path.is_file()]
        if any(path.suffix == ENCRYPTED_SUFFIX for path in paths):
            return self.keys is not None and self.keys.has_key(rec_id)
        return bool(paths)

    def add(self, meta: dict[str, Any]) -> None:
        """Write the sidecar (durably) and then index the recording (in its month's shard).
        `size_bytes` (what retention counts) is set from the files on disk."""
        rec_id = meta["id"]
        meta = {**meta, "size_bytes": self.disk_bytes(rec_id, meta)}
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
        return bool(self.erase_many([rec_id]))

    def erase_many(self, ids: list[str]) -> list[str]:
        """Erase several recordings (as `erase`), writing each month's index shard once: a
        retention run erasing thousands must not rewrite a shard per recording (SD-card
        wear). Returns the ids that existed."""
        found: list[str] = []
        indexed: list[str] = []
        with self._lock:
            for rec_id in ids:
                paths = [self._folder(rec_id, vol) / name
                         for name in self._file_names(rec_id) for vol in self.roots]
                known = self._view.find(rec_id) is not None
                if known or self.has_files(rec_id):
                    found.append(rec_id)
                if known:
                    indexed.append(rec_id)
                # The key first (crypto-erasure): once it is gone, copies of the audio and
                # sidecar left in flash blocks are unreadable. Then the audio: it is the
                # personal data. A crash after it leaves a sidecar without audio, which the
                # index check at start drops, never audio without a record.
                if self.keys is not None:
                    self.keys.destroy(rec_id)
                for path in paths:  # every audio part on every volume, then the sidecars
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:  # a failing stick: its copy is crypto-erased anyway
                        log.warning("recording %s: cannot delete %s: %s", rec_id, path.name, exc)
                for folder in {path.parent for path in paths}:
                    if folder.is_dir():
                        try:
                            fsync_dir(folder)
                        except OSError:
                            pass
            if indexed:
                self._remove(indexed)
        for rec_id in found:
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
        for _, root in self.usable_roots():  # a stick that is not inserted is left alone
            for folder in root.glob("*/*"):
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
            parts = self.audio_parts(rec_id, meta)
            volume, audio, _ = parts[-1]  # the part being written when it stopped
            if not self.available(volume):
                continue
            try:
                size = self._repair_audio(rec_id, audio)
            except (OSError, ValueError, KeyStoreError) as exc:  # CryptoError is a ValueError
                log.warning("recording %s cannot be recovered: %s", rec_id, exc)
                continue
            total = size + sum(int(count or 0) for _, _, count in parts[:-1])
            if isinstance(meta.get("parts"), list) and meta["parts"]:
                meta["parts"][-1]["bytes"] = size
            rate = int(meta.get("audio", {}).get("sample_rate", 8000))
            meta.update(
                status="interrupted",
                ended_at=datetime.fromtimestamp(audio.stat().st_mtime, UTC).isoformat(),
                duration_s=round(total / (2 * rate), 3),
            )
            meta.setdefault("audio", {}).update(
                bytes=total, file=audio.name, format="wav", codec="pcm_s16le", channels=1
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
            # A recording on a stick that is not inserted stays listed.
            gone = [i for i in gone if self._reachable(self.get(i) or {})]
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
        """Every recording's metadata, oldest first (a copy: for small stores and tests)."""
        return list(self.iter_docs())

    def iter_docs(self) -> Iterator[dict[str, Any]]:
        """Every recording's metadata, oldest first, parsed one at a time: a retention run
        over 100,000 recordings must not hold 100,000 dicts at once."""
        with self._lock:
            n = len(self._view)
        for i in range(n):
            with self._lock:
                if i >= len(self._view):
                    return
                doc = self._view.doc(i)
            yield doc

    def in_progress(self) -> frozenset[str]:
        """Ids indexed while still being recorded: retention never touches them."""
        with self._lock:
            return frozenset(self._view.open)

    def disk_bytes(self, rec_id: str, meta: dict[str, Any] | None = None) -> int:
        """Bytes the recording takes on disk: audio parts, sidecar and key file."""
        paths = [path for _, path, _ in self.audio_parts(rec_id, meta)]
        paths.append(self.sidecar_path(rec_id, str((meta or {}).get("volume") or SD))
                     if meta is not None else self.sidecar_path(rec_id))
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
