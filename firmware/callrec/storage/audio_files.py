"""A recording's audio as the recorder writes it and the web UI reads it: the writer protocol,
and sources over plain files, encrypted containers and recordings split in parts (a USB stick
that failed mid-call). Split from recordings.py, which keeps files and the index.

Capture writes WAV PCM (<id>.cra: encrypted PCM; <id>.wav without encryption); after hang-up
the transcoder may replace it by a compact or lossless file (<id>.opus.cra, <id>.flac.cra, or
.opus/.flac), served as it is stored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from callrec.storage.crypto import CryptoError, EncryptedReader, EncryptedWav
from callrec.storage.keystore import KeyStore
from callrec.storage.wavstream import HEADER_BYTES as WAV_HEADER_BYTES
from callrec.storage.wavstream import wav_header

ENCRYPTED_SUFFIX = ".cra"
TMP_SUFFIX = ".tmp"  # a transcoded file being written (removed if the worker was killed)
# A recording's stored audio format (its metadata's audio.format) and how it is served.
MIME: dict[str, str] = {"wav": "audio/wav", "opus": "audio/ogg; codecs=opus",
                        "flac": "audio/flac"}
EXTENSION: dict[str, str] = {"wav": ".wav", "opus": ".opus", "flac": ".flac"}


def container_id(rec_id: str, fmt: str = "wav") -> str:
    """What an encrypted audio file is bound to (its chunks' associated data and key check):
    the recording id, plus the format for a transcoded file, so that a capture file and its
    transcoded copy can never be taken for one another."""
    return rec_id if fmt == "wav" else f"{rec_id}.{fmt}"


def stored_file_name(rec_id: str, fmt: str, encrypted: bool) -> str:
    """The file name of a transcoded recording: <id>.opus.cra, <id>.flac (no encryption)…"""
    return f"{rec_id}{EXTENSION[fmt]}{ENCRYPTED_SUFFIX if encrypted else ''}"


class AudioWriter(Protocol):
    """What the recorder writes through: StreamingWavWriter or crypto.EncryptedWriter."""

    path: Path
    data_bytes: int

    def write(self, pcm: bytes) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class AudioSource(Protocol):
    """A recording's playable audio file, read by byte range (HTTP Range)."""

    content_type: str

    def size(self) -> int: ...
    def read_range(self, start: int, end: int) -> bytes: ...
    def close(self) -> None: ...


class PlainFile:
    """An unencrypted audio file as an AudioSource."""

    def __init__(self, path: Path, content_type: str = MIME["wav"]) -> None:
        self.content_type = content_type
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

    def __init__(self, reader: EncryptedReader, rate: int, channels: int = 1) -> None:
        self._reader = reader
        self._wav = EncryptedWav(reader, rate, channels)

    def size(self) -> int:
        return self._wav.size()

    def read_range(self, start: int, end: int) -> bytes:
        return self._wav.read_range(start, end)

    def close(self) -> None:
        self._reader.close()


class DecryptedFile:
    """An encrypted transcoded recording (Ogg/Opus, FLAC) as an AudioSource: its plaintext."""

    def __init__(self, reader: EncryptedReader, content_type: str) -> None:
        self._reader = reader
        self.content_type = content_type

    def size(self) -> int:
        return self._reader.plaintext_size()

    def read_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size())
        return self._reader.read_range(start, end) if start < end else b""

    def close(self) -> None:
        self._reader.close()


def open_container(path: Path, rec_id: str, key: bytes | None, fmt: str = "wav") -> EncryptedReader:
    """An encrypted audio file opened for reading; FileNotFoundError if its key is gone or
    it cannot be read."""
    if key is None:
        raise FileNotFoundError(f"recording {rec_id}: no key to decrypt its audio")
    try:
        return EncryptedReader(path, key, container_id(rec_id, fmt), require_final=False)
    except CryptoError as exc:
        raise FileNotFoundError(f"recording {rec_id}: {exc}") from None


class PcmPart:
    """The PCM of one audio file (encrypted or plain), by byte range; `limit` caps its size."""

    def __init__(self, path: Path, rec_id: str, key: bytes | None, limit: int | None) -> None:
        self._reader: EncryptedReader | None = None
        self._f = None
        if path.suffix == ENCRYPTED_SUFFIX:
            self._reader = open_container(path, rec_id, key)
            size = self._reader.plaintext_size()
        else:
            self._f = open(path, "rb")  # closed by close()
            size = max(0, os.fstat(self._f.fileno()).st_size - WAV_HEADER_BYTES)
        self.size = size if limit is None else min(size, limit)

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if end <= start:
            return b""
        if self._reader is not None:
            return self._reader.read_range(start, end)
        assert self._f is not None
        return os.pread(self._f.fileno(), end - start, WAV_HEADER_BYTES + start)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._f is not None:
            self._f.close()


class JoinedWav:
    """A recording made of several audio parts as one WAV AudioSource (`channels` > 1: of
    interleaved frames; a trailing partial frame is left out)."""

    content_type = "audio/wav"

    def __init__(self, parts: list[PcmPart], rate: int, channels: int = 1) -> None:
        self._parts = parts
        total = sum(p.size for p in parts)
        self._total = total - total % (2 * channels)
        self._header = wav_header(self._total, rate, channels)

    def size(self) -> int:
        return len(self._header) + self._total

    def read_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size())
        out = [self._header[start:end]] if start < len(self._header) else []
        pos = len(self._header)
        for part in self._parts:
            lo, hi = max(start, pos), min(end, pos + part.size)
            if lo < hi:
                out.append(part.read(lo - pos, hi - pos))
            pos += part.size
        return b"".join(out)

    def close(self) -> None:
        for part in self._parts:
            part.close()


def open_audio_file(
    path: Path, rec_id: str, keys: KeyStore | None, rate: int, fmt: str = "wav",
    channels: int = 1,
) -> AudioSource:
    """The audio file of `rec_id` as an AudioSource (a WAV for captured PCM, else the stored
    Ogg/Opus or FLAC, which say their channels themselves); FileNotFoundError if it cannot be
    read (missing, or encrypted and its key is gone)."""
    content_type = MIME.get(fmt, MIME["wav"])
    if path.suffix != ENCRYPTED_SUFFIX:
        return PlainFile(path, content_type)
    reader = open_container(path, rec_id, keys.key_for(rec_id) if keys is not None else None, fmt)
    if fmt == "wav":
        return DecryptedWav(reader, rate, channels)
    return DecryptedFile(reader, content_type)
