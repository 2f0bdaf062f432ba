"""The recordings on disk and their index: the one writer of the TinyDB index.

Layout under <data_dir>/recordings/YYYY/MM/ (volume "sd", the SD card) or
<usb_mount_point>/callrec/recordings/YYYY/MM/ (volume "usb", the USB stick):
    <id>.cra    the audio as captured, encrypted PCM (crypto.EncryptedWriter: AES-256-GCM,
                one-second chunks), until the transcoder replaces it after hang-up by
    <id>.opus.cra  (or .flac.cra) the stored Ogg/Opus (FLAC) file, encrypted the same way
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

The index (index_store.ShardedIndex: day shards on disk, a compact view in memory) is rebuilt
from the sidecars when it is damaged; this store is its only writer and its sidecar source.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callrec.storage.atomic_json import fsync_dir, write_atomic
from callrec.storage.crypto import (
    DEFAULT_CHUNK_BYTES,
    CryptoError,
    EncryptedWriter,
    Sealer,
    decrypt_blob,
    encrypt_blob,
)
from callrec.storage.crypto import recover as recover_container
from callrec.storage.index_shards import (
    phone_key,
)
from callrec.storage.index_store import ShardedIndex, is_recording_id
from callrec.storage.index_view import IndexView, valid_id
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



from callrec.storage.audio_files import (  # noqa: E402 (re-exported)
    ENCRYPTED_SUFFIX,
    EXTENSION,
    TMP_SUFFIX,
    AudioSource,
    AudioWriter,
    JoinedWav,
    PcmPart,
    open_audio_file,
    stored_file_name,
)

ENCRYPTION = "aes-256-gcm-chunked-v1"
FLAC_BLOCK_SAMPLES = 4096  # libsndfile's FLAC frame: 0.512 s at 8 kHz
_TRANSCODED = [(fmt, enc) for fmt in EXTENSION if fmt != "wav" for enc in (True, False)]
_TRANSCODED_ENDINGS = tuple(stored_file_name("", fmt, enc) for fmt, enc in _TRANSCODED)


def _captured_names(rec_id: str) -> list[str]:
    """The names of a recording's captured audio: <id>.cra, or <id>.wav (no encryption), and
    the parts a fall-back to the SD card adds."""
    names = [f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav"]
    return names + [f"{rec_id}.part{n}{ext}" for n in (2, 3) for ext in (ENCRYPTED_SUFFIX, ".wav")]


def _transcoded_names(rec_id: str) -> list[str]:
    return [stored_file_name(rec_id, fmt, enc) for fmt, enc in _TRANSCODED]



def audio_layout(meta: dict[str, Any]) -> tuple[int, int]:
    """(sample rate, channels) of a recording's audio from its metadata: 8000 and 1 when it
    does not say (every recording before two-channel SIP calls)."""
    audio = meta.get("audio")
    audio = audio if isinstance(audio, dict) else {}
    rate = int(audio.get("sample_rate") or 8000)
    channels = int(audio.get("channels") or 1)
    return rate, channels


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
        self._lock = threading.RLock()
        self._writing: set[str] = set()  # recordings open for writing now: recover() skips them
        self._index = ShardedIndex(Path(data_dir) / "index", self._sealer, self)
        with self._lock:
            self._index.open()

    @property
    def _view(self) -> IndexView:
        """The index's in-memory view (a new one after a rebuild): read under the lock."""
        return self._index.view

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
        named = Path(str((meta.get("audio") or {}).get("file") or "")).name
        names = [f"{rec_id}{ENCRYPTED_SUFFIX}", f"{rec_id}.wav"]
        if named.startswith(rec_id) and named not in names:  # transcoded: <id>.opus.cra…
            names.insert(0, named)
        for vol in self._order(volume):
            folder = self._folder(rec_id, vol)
            for name in names:
                if (folder / name).exists():
                    return [(vol, folder / name, None)]
        return [(volume, self._folder(rec_id, volume) / self.part_file(rec_id), None)]

    def audio_path(self, rec_id: str) -> Path:
        """Where the (last part of the) audio is (encrypted .cra, or a plain .wav from before
        encryption); for a recording without audio yet, where a new one would go."""
        return self.audio_parts(rec_id)[-1][1]

    @staticmethod
    def _file_names(rec_id: str) -> list[str]:
        """Every file name a recording can have in its folder: audio first (captured, then
        transcoded, then a transcoding's temporary file), sidecar last."""
        stored = _transcoded_names(rec_id)
        return [*_captured_names(rec_id), *stored, *(f"{n}{TMP_SUFFIX}" for n in stored),
                f"{rec_id}.json"]

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

    # -- the index's sidecar source (index_store.SidecarSource) -----------------------------
    def reachable(self, doc: dict[str, Any]) -> bool:
        """False when the recording's sidecar or audio is on a volume that is not there."""
        volumes = {str(doc.get("volume") or SD)}
        parts = doc.get("parts")
        if isinstance(parts, list):
            volumes |= {str(p.get("volume", SD)) for p in parts if isinstance(p, dict)}
        return all(self.available(v) for v in volumes)

    def _shard_sidecars(self, folder: Path, prefix: str) -> Iterator[dict[str, Any]]:
        """The readable sidecars in `folder` whose id starts with `prefix` (a day's or a
        month's): a day is rebuilt without opening the rest of its month."""
        for path in sorted(folder.glob(f"{prefix}*.json")):
            if is_recording_id(path.stem):
                meta = load_sidecar_file(path, path.stem, self.keys)
                if meta is not None:
                    yield meta

    def sidecars(self, month: str, prefix: str) -> Iterator[dict[str, Any]]:
        for _, root in self.usable_roots():  # the SD card's first
            yield from self._shard_sidecars(root / month[:4] / month[5:7], prefix)

    def months_on_disk(self) -> set[str]:
        return {f"{folder.parent.name}-{folder.name}"
                for _, root in self.usable_roots() for folder in root.glob("*/*")
                if folder.is_dir() and _MONTH_RE.match(f"{folder.parent.name}-{folder.name}")}

    def has_sidecar(self, rec_id: str) -> bool:
        return self.sidecar_path(rec_id).exists()

    @property
    def bytes_written(self) -> int:
        """Index bytes written since this store was opened (for the benchmark)."""
        return self._index.bytes_written

    def reindex(self) -> int:
        """Rebuild the index from the sidecar files; returns the number of recordings."""
        with self._lock:
            return self._index.rebuild()

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

    def _key_if_any(self, rec_id: str) -> bytes | None:
        return self.keys.key_for(rec_id) if self.keys is not None else None

    def _key(self, rec_id: str) -> bytes | None:
        """The recording's data key, made (and durably stored, wrapped) on first use."""
        if self.keys is None:
            return None
        return self.keys.key_for(rec_id) or self.keys.new_key(rec_id)

    def open_writer(
        self, sidecar: dict[str, Any], rate: int, volume: str = SD, part: int = 1,
        channels: int = 1,
    ) -> AudioWriter:
        """Start a recording's files on `volume`: its key (on the SD card), its sidecar
        (status "recording", so a crash is recovered at the next start), then the audio file
        (`part` > 1: a continuation, which the sidecar's `parts` must list), returned open
        for appending. `channels` > 1: what is written is interleaved PCM16 frames."""
        rec_id = sidecar["id"]
        path = self._writable_folder(rec_id, volume) / self.part_file(rec_id, part)
        key = self._key(rec_id)
        with self._lock:
            self._writing.add(rec_id)
        # The provisional sidecar says how the audio is laid out: recover() computes the
        # duration of an interrupted recording from it (an encrypted capture has no WAV
        # header to tell the channel count).
        audio = {**(sidecar.get("audio") or {}), "sample_rate": rate, "channels": channels}
        self.write_sidecar({**sidecar, "volume": volume, "audio": audio})
        if key is None:
            return StreamingWavWriter(path, rate, channels)
        # About a second of audio per chunk whatever the channels: what a crash can lose.
        return EncryptedWriter(path, key, rec_id, chunk_size=DEFAULT_CHUNK_BYTES * channels)

    def audio_info(self, writer: AudioWriter, rate: int, channels: int = 1) -> dict[str, Any]:
        """The "audio" part of a recording's metadata once `writer` is closed."""
        info: dict[str, Any] = {
            "file": writer.path.name,
            "format": "wav",
            "codec": "pcm_s16le",
            "sample_rate": rate,
            "channels": channels,
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
        rate, channels = audio_layout(meta)
        parts = self.audio_parts(rec_id, meta)
        present = [p for p in parts if self.available(p[0]) and p[1].is_file()]
        if not present:
            if any(not self.available(vol) for vol, _, _ in parts):
                raise FileNotFoundError(
                    f"recording {rec_id}: its audio is on the USB stick, which is not inserted"
                )
            raise FileNotFoundError(f"recording {rec_id}: no audio")
        if len(parts) == 1:
            fmt = str(meta.get("audio", {}).get("format") or "wav")
            return open_audio_file(present[0][1], rec_id, self.keys, rate, fmt, channels)
        # A call that fell back to the SD card: its parts joined (those that are there).
        opened: list[PcmPart] = []
        try:
            for _, path, count in present:
                opened.append(PcmPart(path, rec_id, self._key_if_any(rec_id), count))
        except BaseException:
            for pcm in opened:
                pcm.close()
            raise
        return JoinedWav(opened, rate, channels)

    def has_audio(self, rec_id: str) -> bool:
        paths = [path for vol, path, _ in self.audio_parts(rec_id)
                 if self.available(vol) and path.is_file()]
        if any(path.suffix == ENCRYPTED_SUFFIX for path in paths):
            return self.keys is not None and self.keys.has_key(rec_id)
        return bool(paths)

    # -- transcoding (storage.transcode does the work, in a child process) --------------
    def transcode_job(self, rec_id: str, fmt: str) -> dict[str, Any] | None:
        """What the transcoding worker needs to turn a finished recording's captured PCM into
        `fmt` ("opus", "flac"): its parts, the output file (on the volume of its sidecar) and
        its key. None when there is nothing to do now: unknown, still being recorded, already
        transcoded, or some of its audio is on a stick that is not inserted."""
        meta = self.get(rec_id)
        if meta is None or meta.get("status") == "recording" or rec_id in self.in_progress():
            return None
        audio = meta.get("audio") or {}
        if audio.get("format", "wav") != "wav":
            return None
        rate, channels = audio_layout(meta)
        if fmt == "flac" and int(audio.get("bytes") or 0) <= 2 * channels * FLAC_BLOCK_SAMPLES:
            # One FLAC frame: nothing to save, and Chromium's FLAC demuxer cannot play a
            # single-frame file ("demuxer seek failed"): it stays in WAV.
            return None
        volume = str(meta.get("volume") or SD)
        parts = self.audio_parts(rec_id, meta)
        if not self.available(volume) or not all(
            self.available(vol) and path.is_file() for vol, path, _ in parts
        ):
            return None
        # A recording from before encryption was turned on gets a key now: its transcoded
        # audio and sidecar are sealed like any new recording's.
        key = self._key(rec_id)
        out = self._folder(rec_id, volume) / stored_file_name(rec_id, fmt, key is not None)
        return {
            "id": rec_id,
            "format": fmt,
            "rate": rate,
            "channels": channels,
            "parts": [{"path": str(path), "bytes": count} for _, path, count in parts],
            "out": str(out),
            "key": base64.b64encode(key).decode("ascii") if key is not None else None,
        }

    def replace_audio(self, job: dict[str, Any], audio_bytes: int) -> bool:
        """Once the worker has made `job`'s output durable: the sidecar, then the index, name
        the new file; only then is the captured audio deleted. False (and the output deleted)
        if the recording was erased or changed meanwhile."""
        rec_id, out = job["id"], Path(job["out"])
        with self._lock:  # erasure waits: it must not run between the check and the add
            meta = self.get(rec_id)
            if meta is None or (meta.get("audio") or {}).get("format", "wav") != "wav":
                out.unlink(missing_ok=True)
                return False
            old = [path for _, path, _ in self.audio_parts(rec_id, meta) if path != out]
            audio = {k: v for k, v in meta["audio"].items() if k != "encryption"}
            audio.update(file=out.name, format=job["format"], codec=job["format"],
                         bytes=audio_bytes)
            if out.suffix == ENCRYPTED_SUFFIX:
                audio["encryption"] = ENCRYPTION
            # "parts": None, not absent: the index merges an update into the old document.
            self.add({**meta, "audio": audio, "volume": self._volume_of(rec_id, out),
                      "parts": None})
        for path in old:
            try:
                path.unlink(missing_ok=True)
                fsync_dir(path.parent)
            except OSError as exc:  # tidied at the next start (recover)
                log.warning("recording %s: cannot delete its captured audio %s: %s",
                            rec_id, path.name, exc)
        return True

    def _volume_of(self, rec_id: str, path: Path) -> str:
        return next((vol for vol in self.roots if path.parent == self._folder(rec_id, vol)), SD)

    def _tidy(self, folder: Path, names: list[str]) -> None:
        """At start: what a transcoding cut short left in `folder`. A temporary file goes; of a
        recording that has both its captured and its transcoded audio, the one its metadata
        does not name goes (the crash came before, or after, the metadata changed)."""
        present = set(names)
        for name in names:
            if name.endswith(TMP_SUFFIX):
                (folder / name).unlink(missing_ok=True)
        for stem in {n.split(".", 1)[0] for n in names if n.endswith(_TRANSCODED_ENDINGS)}:
            meta = self.get(stem) or self.load_sidecar(stem)
            if meta is None or meta.get("status") == "recording":
                continue
            audio = meta.get("audio") or {}
            if audio.get("format", "wav") == "wav":
                doomed = [n for n in _transcoded_names(stem) if n in present]
            else:
                keep = Path(str(audio.get("file") or "")).name
                doomed = [n for n in _captured_names(stem) if n in present and n != keep]
            for gone in doomed:
                (folder / gone).unlink(missing_ok=True)
                log.info("recording %s: removed %s left by an interrupted transcoding",
                         stem, gone)

    def add(self, meta: dict[str, Any]) -> None:
        """Write the sidecar (durably) and then index the recording (in its day's shard).
        `size_bytes` (what retention counts) is set from the files on disk."""
        rec_id = meta["id"]
        meta = {**meta, "size_bytes": self.disk_bytes(rec_id, meta)}
        self.write_sidecar(meta)
        with self._lock:
            if meta.get("status") != "recording":
                self._writing.discard(rec_id)
            if not valid_id(rec_id):
                raise UnknownRecording(rec_id)
            self._index.put(meta)

    def set_fields(self, rec_id: str, **fields: Any) -> dict[str, Any]:
        """Change some of a recording's metadata (a restriction, a rectification): sidecar,
        then index, as `add`. A None value clears the field. Returns the new metadata."""
        with self._lock:  # not between a transcoding's check and its switch to the new file
            indexed = self.get(rec_id)
            if indexed is None:
                raise UnknownRecording(rec_id)
            # The sidecar is the source of truth; the index document may be a compact copy.
            meta = {**(self.load_sidecar(rec_id) or indexed), **fields}
            self.add(meta)
            return self.get(rec_id) or meta

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
                self._writing.discard(rec_id)
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
                self._index.remove(indexed)
        for rec_id in found:
            log.info("recording %s erased", rec_id)
        return found

    def recover(self, volume: str | None = None) -> list[str]:
        """At start: finish recordings a crash interrupted, drop index entries without audio.

        A sidecar still marked "recording" belongs to a call that was in progress when the
        process died: its WAV header is repaired from the file size, it is marked
        "interrupted" and indexed, so it shows in the UI and plays. Only sidecars that are not
        indexed, or indexed as "recording", are read (a complete recording is indexed only
        after its final sidecar was written). With `volume`: only that volume's recordings
        (a USB stick inserted while running, which may hold a recording a power cut
        interrupted while it was out); recordings being written now are never touched.
        """
        on_disk: set[str] = set()
        roots = [(name, root) for name, root in self.usable_roots()
                 if volume is None or name == volume]
        for _, root in roots:  # a stick that is not inserted is left alone
            for folder in root.glob("*/*"):
                if folder.is_dir():
                    names = os.listdir(folder)
                    on_disk.update(
                        name[:-5] for name in names
                        if name.endswith(".json") and is_recording_id(name[:-5])
                    )
                    if volume is None:  # at start only: later, a .tmp may be in use
                        self._tidy(folder, names)
        with self._lock:
            view = self._view
            to_read = sorted(i for i in on_disk - self._writing
                             if view.find(i) is None or i in view.open)
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
            rate, channels = audio_layout(meta)
            meta.update(
                status="interrupted",
                ended_at=datetime.fromtimestamp(audio.stat().st_mtime, UTC).isoformat(),
                duration_s=round(total / (2 * channels * rate), 3),
            )
            meta.setdefault("audio", {}).update(
                bytes=total, file=audio.name, format="wav", codec="pcm_s16le",
                sample_rate=rate, channels=channels,
            )
            if audio.suffix == ENCRYPTED_SUFFIX:
                meta["audio"]["encryption"] = ENCRYPTION
            self.add(meta)
            recovered.append(rec_id)
            log.warning(
                "recording %s was interrupted; recovered %.1f s", rec_id, meta["duration_s"]
            )
        if volume is not None:
            return recovered
        with self._lock:
            gone = [i for i in self._view.ids
                    if i not in on_disk and not self.sidecar_path(i).exists()]
            # A recording on a stick that is not inserted stays listed.
            gone = [i for i in gone if self.reachable(self.get(i) or {})]
            if gone:
                self._index.remove(gone)
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
            return self._view.search(key)[::-1]

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
            self._index.close()
