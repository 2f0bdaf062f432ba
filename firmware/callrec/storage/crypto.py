"""Encryption at rest: a streaming, crash-tolerant AES-256-GCM container for one recording.

Each recording has its own 32-byte key (see `keystore.KeyStore`). Its audio is written as a
small header followed by independently authenticated chunks of about one second of PCM, so a
power cut loses at most the chunk being written and everything before it stays readable, and
any byte range of the audio can be served by decrypting only the chunks it touches.

On-disk format (all integers little-endian unless noted)::

    header, 40 bytes
      0  8  magic b"CRECAUD\\x00"
      8  1  version (1)
      9  1  flags (0, reserved)
     10  2  reserved (0)
     12  4  chunk_size: largest plaintext of one chunk, bytes
     16  8  nonce_prefix: random
     24 16  key_check: HKDF(key, info="callrec key check v1" | nonce_prefix | rec_id)
    then chunk records, one after the other
      0  4  word: bits 0-27 plaintext length, bit 31 FINAL, bit 30 RECOVERED
      4  n  AES-256-GCM ciphertext of the plaintext, then the 16-byte tag

Chunk i is encrypted under the stream subkey HKDF(key, info="callrec audio stream v1") with
nonce = nonce_prefix | uint32_be(i) (bit 31 of the counter is set only for the terminator
`recover` appends) and associated data = header | uint32 i | word | uint64 plaintext offset |
rec_id. So a chunk cannot be moved (index and offset), cut short or lengthened (word),
moved to another recording (rec_id, key, nonce prefix) or have its FINAL flag added or removed;
the header is authenticated by every chunk. A file whose last chunk is not FINAL was cut off:
the reader refuses it (`Truncated`) until `recover` has been run on it.

The key check lets a wrong key (or a file of another recording) be told apart from a damaged
file, so `recover` never truncates a recording because it was handed the wrong key. It also
makes the container key-committing.

Sidecar metadata (phone numbers, names) is sealed with `encrypt_blob` under the same per-
recording key, with its own subkey: destroying the key erases the audio and its metadata.
"""

from __future__ import annotations

import bisect
import hmac
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from callrec.storage.aead import AESGCM, InvalidTag, hkdf_sha256
from callrec.storage.atomic_json import fsync_dir
from callrec.storage.wavstream import HEADER_BYTES as WAV_HEADER_BYTES
from callrec.storage.wavstream import wav_header

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "HEADER_SIZE",
    "KEY_BYTES",
    "TAG_BYTES",
    "CorruptContainer",
    "CryptoError",
    "EncryptedReader",
    "EncryptedWav",
    "EncryptedWriter",
    "Sealer",
    "Truncated",
    "WrongKey",
    "decrypt_blob",
    "encrypt_blob",
    "new_data_key",
    "recover",
]

KEY_BYTES = 32
TAG_BYTES = 16
DEFAULT_CHUNK_BYTES = 16000  # one second of 8 kHz 16-bit mono
MAX_CHUNK_BYTES = 1 << 24

MAGIC = b"CRECAUD\x00"
VERSION = 1
_HEADER = struct.Struct("<8sBBHI8s16s")
HEADER_SIZE = _HEADER.size  # 40
_WORD = struct.Struct("<I")
WORD_SIZE = _WORD.size
_LEN_MASK = (1 << 28) - 1
FLAG_FINAL = 1 << 31
FLAG_RECOVERED = 1 << 30
_MAX_CHUNKS = 1 << 30  # the counter's bit 31 is reserved for the recovery terminator
_TERMINATOR_COUNTER = 1 << 31
RECORD_OVERHEAD = WORD_SIZE + TAG_BYTES

BLOB_MAGIC = b"CRB1"
_BLOB_NONCE = 12


class CryptoError(ValueError):
    """An encrypted file or blob cannot be read."""


class WrongKey(CryptoError):
    """The key (or the recording id) is not the one this file was written with."""


class CorruptContainer(CryptoError):
    """The file is damaged or was tampered with: a chunk does not authenticate."""


class Truncated(CorruptContainer):
    """The file ends before its final chunk: cut by a crash (run `recover`) or truncated."""


def new_data_key() -> bytes:
    """A fresh random 256-bit key (normally obtained from `KeyStore.new_key`)."""
    return secrets.token_bytes(KEY_BYTES)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise TypeError(f"key must be {KEY_BYTES} bytes")


def _subkey(key: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return hkdf_sha256(key, info, length)


def _key_check(key: bytes, nonce_prefix: bytes, rec_id: str) -> bytes:
    return _subkey(key, b"callrec key check v1\x00" + nonce_prefix + rec_id.encode(), 16)


def _stream_cipher(key: bytes) -> AESGCM:
    return AESGCM(_subkey(key, b"callrec audio stream v1"))


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + counter.to_bytes(4, "big")


def _aad(header: bytes, index: int, word: int, offset: int, rec_id_b: bytes) -> bytes:
    return header + struct.pack("<IIQ", index, word, offset) + rec_id_b


# -- writer ----------------------------------------------------------------------------------
class EncryptedWriter:
    """Append-only encrypted audio writer, a drop-in for `StreamingWavWriter`'s write side.

    `write(pcm)` buffers up to `chunk_size` bytes and seals full chunks; `sync()` also seals
    the partial chunk and fdatasyncs, so a power cut loses at most what was written since the
    last `sync()`; `close()` writes the FINAL chunk and fsyncs. The file is created with
    O_EXCL and mode 0600; the header is durable (file and directory fsynced) on return.
    """

    def __init__(
        self, path: Path, key: bytes, rec_id: str, *, chunk_size: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        _check_key(key)
        if not 0 < chunk_size <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_size must be in 1..{MAX_CHUNK_BYTES}")
        self.path = Path(path)
        self.rec_id = rec_id
        self.chunk_size = chunk_size
        self.data_bytes = 0  # plaintext bytes accepted by write()
        self.chunks = 0
        self._sealed = 0  # plaintext bytes already sealed into chunks
        self._buf = bytearray()
        self._rec_id_b = rec_id.encode()
        self._aead = _stream_cipher(bytes(key))
        prefix = secrets.token_bytes(8)
        self._prefix = prefix
        self._header = _HEADER.pack(
            MAGIC, VERSION, 0, 0, chunk_size, prefix, _key_check(bytes(key), prefix, rec_id)
        )
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._write(self._header)
            os.fdatasync(self._fd)
            fsync_dir(self.path.parent)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _seal(self, plain: bytes, final: bool) -> None:
        if self.chunks >= _MAX_CHUNKS:
            raise OverflowError("too many chunks in one recording")
        word = len(plain) | (FLAG_FINAL if final else 0)
        aad = _aad(self._header, self.chunks, word, self._sealed, self._rec_id_b)
        sealed = self._aead.encrypt(_nonce(self._prefix, self.chunks), plain, aad)
        self._write(_WORD.pack(word) + sealed)
        self.chunks += 1
        self._sealed += len(plain)

    def write(self, pcm: bytes) -> None:
        if self._fd < 0:
            raise ValueError("write to a closed EncryptedWriter")
        self._buf += pcm
        self.data_bytes += len(pcm)
        size = self.chunk_size
        if len(self._buf) >= size:
            full = len(self._buf) - len(self._buf) % size
            view = memoryview(self._buf)
            for start in range(0, full, size):
                self._seal(bytes(view[start : start + size]), final=False)
            view.release()
            del self._buf[:full]

    def sync(self) -> None:
        """Seal the buffered partial chunk (if any) and make everything written durable."""
        if self._fd < 0:
            return
        if self._buf:
            self._seal(bytes(self._buf), final=False)
            self._buf.clear()
        os.fdatasync(self._fd)

    def close(self) -> None:
        """Seal the rest as the FINAL chunk (possibly empty) and fsync. Idempotent."""
        if self._fd < 0:
            return
        try:
            self._seal(bytes(self._buf), final=True)
            self._buf.clear()
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    def abort(self) -> None:
        """Close without a FINAL chunk (the file then reads as interrupted)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __enter__(self) -> EncryptedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.sync()
            self.abort()


# -- reader ----------------------------------------------------------------------------------
class _Chunk:
    __slots__ = ("final", "index", "length", "offset", "pos", "recovered", "word")

    def __init__(self, index: int, pos: int, word: int, offset: int) -> None:
        self.index, self.pos, self.word, self.offset = index, pos, word, offset
        self.length = word & _LEN_MASK
        self.final = bool(word & FLAG_FINAL)
        self.recovered = bool(word & FLAG_RECOVERED)

    @property
    def end(self) -> int:
        """File position just after this record."""
        return self.pos + RECORD_OVERHEAD + self.length


def _parse_header(head: bytes, key: bytes, rec_id: str, name: str) -> tuple[int, bytes]:
    if len(head) < HEADER_SIZE:
        raise Truncated(f"{name}: shorter than the header ({len(head)} bytes)")
    magic, version, _flags, _res, chunk_size, prefix, check = _HEADER.unpack(head[:HEADER_SIZE])
    if magic != MAGIC:
        raise CorruptContainer(f"{name}: not an encrypted callrec recording")
    if version != VERSION:
        raise CorruptContainer(f"{name}: unsupported container version {version}")
    if not 0 < chunk_size <= MAX_CHUNK_BYTES:
        raise CorruptContainer(f"{name}: bad chunk size {chunk_size}")
    if not hmac.compare_digest(check, _key_check(key, prefix, rec_id)):
        raise WrongKey(f"{name}: not encrypted with this key for recording {rec_id}")
    return chunk_size, prefix


class EncryptedReader:
    """Reads and authenticates an `EncryptedWriter` file.

    Opening checks the header and key and indexes the chunk records (4-byte reads, no
    decryption), then authenticates the FINAL chunk, which proves the total size: a file cut
    short raises `Truncated` unless `require_final=False` (for a recording still being
    written, or to look at an interrupted one before `recover`).

    Iterating yields the plaintext chunks in order, each authenticated. `read_range(start,
    end)` returns plaintext[start:end] (end exclusive, like a slice) decrypting only the chunks
    it overlaps. Every method raises `CorruptContainer` on a chunk that does not authenticate.
    """

    def __init__(
        self, path: Path, key: bytes, rec_id: str, *, require_final: bool = True
    ) -> None:
        _check_key(key)
        self.path = Path(path)
        self.rec_id = rec_id
        self._rec_id_b = rec_id.encode()
        self._f = open(self.path, "rb")  # closed by close()
        try:
            self._header = self._f.read(HEADER_SIZE)
            self.chunk_size, self._prefix = _parse_header(
                self._header, bytes(key), rec_id, self.path.name
            )
            self._aead = _stream_cipher(bytes(key))
            self._chunks = self._index(require_final)
            self._offsets = [c.offset for c in self._chunks]
            self._cache: tuple[int, bytes] | None = None
            last = self._chunks[-1] if self._chunks else None
            self.complete = bool(last and last.final)
            self.recovered = bool(last and last.recovered)
            if self.complete and last is not None:
                try:
                    self._decrypt(last)  # authenticates the total size and the FINAL flag
                except CorruptContainer:
                    if require_final:
                        raise
                    self.complete = self.recovered = False
        except BaseException:
            self._f.close()
            raise

    def _index(self, require_final: bool) -> list[_Chunk]:
        fd = self._f.fileno()
        size = os.fstat(fd).st_size
        chunks: list[_Chunk] = []
        pos, offset = HEADER_SIZE, 0
        name = self.path.name
        while True:
            if pos == size:
                if require_final:
                    raise Truncated(f"{name}: no final chunk after {len(chunks)} chunks")
                return chunks
            raw = os.pread(fd, WORD_SIZE, pos)
            if len(raw) < WORD_SIZE:
                if require_final:
                    raise Truncated(f"{name}: torn chunk header at byte {pos}")
                return chunks
            word = _WORD.unpack(raw)[0]
            chunk = _Chunk(len(chunks), pos, word, offset)
            if chunk.length > self.chunk_size or word & ~(_LEN_MASK | FLAG_FINAL | FLAG_RECOVERED):
                if require_final:
                    raise CorruptContainer(f"{name}: bad chunk header at byte {pos}")
                return chunks
            if chunk.end > size:
                if require_final:
                    raise Truncated(f"{name}: chunk {chunk.index} cut at byte {size}")
                return chunks
            chunks.append(chunk)
            if chunk.final:
                if chunk.end != size and require_final:
                    raise CorruptContainer(f"{name}: {size - chunk.end} bytes after final chunk")
                return chunks
            pos, offset = chunk.end, offset + chunk.length

    def _decrypt(self, chunk: _Chunk) -> bytes:
        if self._cache is not None and self._cache[0] == chunk.index:
            return self._cache[1]
        sealed = os.pread(self._f.fileno(), chunk.length + TAG_BYTES, chunk.pos + WORD_SIZE)
        counter = chunk.index | (_TERMINATOR_COUNTER if chunk.recovered else 0)
        aad = _aad(self._header, chunk.index, chunk.word, chunk.offset, self._rec_id_b)
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, counter), sealed, aad)
        except InvalidTag:
            raise CorruptContainer(
                f"{self.path.name}: chunk {chunk.index} (byte {chunk.pos}) does not authenticate"
            ) from None
        self._cache = (chunk.index, plain)
        return plain

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    def plaintext_size(self) -> int:
        """Bytes of audio in the file (authenticated when `complete`)."""
        if not self._chunks:
            return 0
        last = self._chunks[-1]
        return last.offset + last.length

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            yield self._decrypt(chunk)

    def read_all(self) -> bytes:
        return b"".join(self)

    def read_range(self, start: int, end: int) -> bytes:
        """plaintext[start:end] (end exclusive, clamped to the size), decrypting only the
        chunks it overlaps. An HTTP "bytes=a-b" range is read_range(a, b + 1)."""
        if start < 0 or end < 0:
            raise ValueError("negative range")
        end = min(end, self.plaintext_size())
        if start >= end:
            return b""
        i = bisect.bisect_right(self._offsets, start) - 1
        parts = []
        while i < len(self._chunks) and self._chunks[i].offset < end:
            chunk = self._chunks[i]
            plain = self._decrypt(chunk)
            parts.append(plain[max(0, start - chunk.offset) : end - chunk.offset])
            i += 1
        return b"".join(parts)

    def close(self) -> None:
        self._cache = None
        self._f.close()

    def __enter__(self) -> EncryptedReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EncryptedWav:
    """A WAV file made of a 44-byte header computed from the size plus the decrypted audio,
    for HTTP Range playback: `size()` and `read_range(start, end)` (end exclusive) over the
    virtual .wav. A trailing partial sample frame is left out."""

    def __init__(
        self, reader: EncryptedReader, rate: int, channels: int = 1, sample_width: int = 2
    ) -> None:
        self.reader = reader
        frame = channels * sample_width
        self.data_bytes = reader.plaintext_size() - reader.plaintext_size() % frame
        self.header = wav_header(self.data_bytes, rate, channels, sample_width)

    def size(self) -> int:
        return WAV_HEADER_BYTES + self.data_bytes

    def read_range(self, start: int, end: int) -> bytes:
        if start < 0 or end < 0:
            raise ValueError("negative range")
        end = min(end, self.size())
        if start >= end:
            return b""
        head = self.header[start:end] if start < WAV_HEADER_BYTES else b""
        a = max(start, WAV_HEADER_BYTES) - WAV_HEADER_BYTES
        b = end - WAV_HEADER_BYTES
        return head + (self.reader.read_range(a, b) if b > a else b"")


# -- recovery --------------------------------------------------------------------------------
def recover(path: Path, key: bytes, rec_id: str, *, max_loss_chunks: int = 4) -> int:
    """Make an interrupted recording readable again; returns the audio bytes kept.

    Keeps every chunk up to the first one that is torn or does not authenticate, truncates
    the file there and appends an empty FINAL chunk flagged RECOVERED, then fsyncs. A file
    that is already complete is left alone. A file shorter than its header (a crash while it
    was being created: no audio was ever written) is rewritten as an empty recording.

    Refuses, raising `WrongKey`, when the key does not match (nothing is touched), and raising
    `CorruptContainer`, when more than `max_loss_chunks` chunks' worth of data would be
    dropped: a crash only tears the last second or so, so that is damage, not a crash, and the
    data is left for someone to look at.
    """
    _check_key(key)
    path = Path(path)
    key = bytes(key)
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        rest = f.read(1)
    # The header is made durable before any chunk is written, so a short or all-zero header
    # means a crash during creation, before any audio.
    if len(head) < HEADER_SIZE or (not rest and not any(head)):
        if any(head) and not MAGIC.startswith(head[: len(MAGIC)]):
            raise CorruptContainer(f"{path.name}: not an encrypted callrec recording")
        _rewrite_empty(path, key, rec_id)
        return 0
    chunk_size, _ = _parse_header(head, key, rec_id, path.name)
    with EncryptedReader(path, key, rec_id, require_final=False) as reader:
        good = HEADER_SIZE
        kept = 0
        last_final = False
        try:
            for chunk in reader._chunks:
                reader._decrypt(chunk)
                good, kept, last_final = chunk.end, chunk.offset + chunk.length, chunk.final
        except CorruptContainer:
            pass
        index = sum(1 for c in reader._chunks if c.end <= good)
        size = os.fstat(reader._f.fileno()).st_size
        header, prefix = reader._header, reader._prefix
    if last_final and good == size:
        return kept
    lost = size - good
    if lost > max_loss_chunks * (chunk_size + RECORD_OVERHEAD):
        raise CorruptContainer(
            f"{path.name}: {lost} bytes after byte {good} do not authenticate: damaged, "
            "not just cut by a crash; left untouched"
        )
    if last_final:  # bytes after a valid final chunk: only drop them
        with open(path, "r+b") as f:
            f.truncate(good)
            os.fsync(f.fileno())
        return kept
    word = FLAG_FINAL | FLAG_RECOVERED
    aad = _aad(header, index, word, kept, rec_id.encode())
    sealed = _stream_cipher(key).encrypt(_nonce(prefix, index | _TERMINATOR_COUNTER), b"", aad)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, good)
        os.pwrite(fd, _WORD.pack(word) + sealed, good)
        os.fsync(fd)
    finally:
        os.close(fd)
    return kept


def _rewrite_empty(path: Path, key: bytes, rec_id: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    EncryptedWriter(tmp, key, rec_id).close()
    os.replace(tmp, path)
    fsync_dir(path.parent)


# -- small blobs (sidecar metadata) ----------------------------------------------------------
def encrypt_blob(key: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Seal `data` (e.g. a sidecar's JSON) under `key`: b"CRB1" | 12-byte random nonce |
    AES-256-GCM ciphertext and tag. `aad` (e.g. the recording id) must be given again to
    `decrypt_blob`; a blob copied to another recording then fails to open."""
    _check_key(key)
    nonce = secrets.token_bytes(_BLOB_NONCE)
    cipher = AESGCM(_subkey(bytes(key), b"callrec blob v1"))
    return BLOB_MAGIC + nonce + cipher.encrypt(nonce, data, BLOB_MAGIC + aad)


def decrypt_blob(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Open an `encrypt_blob` blob; raises `CorruptContainer` if it does not authenticate."""
    _check_key(key)
    if len(blob) < len(BLOB_MAGIC) + _BLOB_NONCE + TAG_BYTES or blob[:4] != BLOB_MAGIC:
        raise CorruptContainer("not an encrypted callrec blob")
    nonce = blob[4 : 4 + _BLOB_NONCE]
    cipher = AESGCM(_subkey(bytes(key), b"callrec blob v1"))
    try:
        return cipher.decrypt(nonce, blob[4 + _BLOB_NONCE :], BLOB_MAGIC + aad)
    except InvalidTag:
        raise CorruptContainer("blob does not authenticate (wrong key, aad, or damaged)") from None


class Sealer:
    """Seals whole small files (index shards, manifest) under one key. The associated data is
    the file's logical name, so a sealed shard cannot be swapped for another month's."""

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._key = bytes(key)

    @staticmethod
    def is_sealed(raw: bytes) -> bool:
        return raw[: len(BLOB_MAGIC)] == BLOB_MAGIC

    def seal(self, data: bytes, name: str) -> bytes:
        return encrypt_blob(self._key, data, name.encode())

    def open(self, blob: bytes, name: str) -> bytes:
        return decrypt_blob(self._key, blob, name.encode())
