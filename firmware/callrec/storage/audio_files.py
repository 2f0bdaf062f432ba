"""A recording's audio as the recorder writes it and the web UI reads it: the writer protocol,
and WAV sources over plain files, encrypted containers and recordings split in parts (a USB
stick that failed mid-call). Split from recordings.py, which keeps files and the index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from callrec.storage.crypto import CryptoError, EncryptedReader, EncryptedWav
from callrec.storage.keystore import KeyStore
from callrec.storage.wavstream import HEADER_BYTES as WAV_HEADER_BYTES
from callrec.storage.wavstream import wav_header

ENCRYPTED_SUFFIX = ".cra"


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


class PcmPart:
    """The PCM of one audio file (encrypted or plain), by byte range; `limit` caps its size."""

    def __init__(self, path: Path, rec_id: str, keys: KeyStore | None, limit: int | None) -> None:
        self._reader: EncryptedReader | None = None
        self._f = None
        if path.suffix == ENCRYPTED_SUFFIX:
            key = keys.key_for(rec_id) if keys is not None else None
            if key is None:
                raise FileNotFoundError(f"recording {rec_id}: no key to decrypt its audio")
            try:
                self._reader = EncryptedReader(path, key, rec_id, require_final=False)
            except CryptoError as exc:
                raise FileNotFoundError(f"recording {rec_id}: {exc}") from None
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
    """A recording made of several audio parts as one WAV AudioSource."""

    content_type = "audio/wav"

    def __init__(self, parts: list[PcmPart], rate: int) -> None:
        self._parts = parts
        self._total = sum(p.size for p in parts)
        self._header = wav_header(self._total, rate)

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
