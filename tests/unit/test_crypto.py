"""Encrypted recording container: round trip, tampering, crash recovery, ranges, blobs."""

from __future__ import annotations

import os
import struct
import wave
from io import BytesIO
from pathlib import Path

import pytest

from callrec.storage import crypto
from callrec.storage.crypto import (
    DEFAULT_CHUNK_BYTES,
    HEADER_SIZE,
    RECORD_OVERHEAD,
    CorruptContainer,
    EncryptedReader,
    EncryptedWav,
    EncryptedWriter,
    Truncated,
    WrongKey,
    decrypt_blob,
    encrypt_blob,
    new_data_key,
    recover,
)

REC = "20261129T100000Z-0123abcd"
OTHER = "20261129T100500Z-89abcdef"
CHUNK = DEFAULT_CHUNK_BYTES
REC_SIZE = CHUNK + RECORD_OVERHEAD


def pcm(n_bytes: int, seed: int = 1) -> bytes:
    """Deterministic, non-repeating 'audio' so every 64-byte window is distinctive."""
    out = bytearray()
    x = seed
    while len(out) < n_bytes:
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out += x.to_bytes(8, "little")
    return bytes(out[:n_bytes])


def write(path: Path, key: bytes, data: bytes, rec_id: str = REC, step: int = 1600,
          sync_every: int = 10, close: bool = True, **kw: int) -> EncryptedWriter:
    """Write like the recorder: 800-sample writes, sync() every second."""
    w = EncryptedWriter(path, key, rec_id, **kw)
    for n, i in enumerate(range(0, len(data), step), 1):
        w.write(data[i : i + step])
        if n % sync_every == 0:
            w.sync()
    if close:
        w.close()
    else:
        w.abort()
    return w


def read(path: Path, key: bytes, rec_id: str = REC) -> bytes:
    with EncryptedReader(path, key, rec_id) as r:
        return r.read_all()


def records(path: Path) -> list[tuple[int, int]]:
    """(position, length) of every chunk record, parsed by hand."""
    raw = path.read_bytes()
    out, pos = [], HEADER_SIZE
    while pos < len(raw):
        length = struct.unpack_from("<I", raw, pos)[0] & ((1 << 28) - 1)
        out.append((pos, RECORD_OVERHEAD + length))
        pos += RECORD_OVERHEAD + length
    return out


@pytest.fixture
def key() -> bytes:
    return new_data_key()


# -- round trip ------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bytes", [0, 1, 1599, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 777])
def test_round_trip(tmp_path: Path, key: bytes, n_bytes: int) -> None:
    data = pcm(n_bytes)
    w = write(tmp_path / "a.enc", key, data)
    assert w.data_bytes == n_bytes and w.closed
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        assert r.complete and not r.recovered
        assert r.plaintext_size() == n_bytes
        chunks = list(r)
        assert b"".join(chunks) == data
        assert all(len(c) <= CHUNK for c in chunks)


def test_file_is_private_and_not_overwritten(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(100))
    assert (tmp_path / "a.enc").stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        EncryptedWriter(tmp_path / "a.enc", key, REC)


def test_sync_seals_partial_chunks(tmp_path: Path, key: bytes) -> None:
    """sync() every 0.5 s: chunks of half a second, all readable."""
    data = pcm(4 * CHUNK)
    write(tmp_path / "a.enc", key, data, sync_every=5)
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        assert r.chunk_count == 8 + 1  # + the empty final chunk
        assert r.read_all() == data


def test_context_manager_and_small_chunks(tmp_path: Path, key: bytes) -> None:
    data = pcm(1000)
    with EncryptedWriter(tmp_path / "a.enc", key, REC, chunk_size=64) as w:
        w.write(data)
    assert read(tmp_path / "a.enc", key) == data
    with pytest.raises(ValueError):
        w.write(b"x")


def test_bad_key_type(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        EncryptedWriter(tmp_path / "a.enc", b"short", REC)


def test_ciphertext_has_no_plaintext(tmp_path: Path, key: bytes) -> None:
    data = bytes(10 * CHUNK)  # silence: the easiest thing to spot
    write(tmp_path / "a.enc", key, data)
    raw = (tmp_path / "a.enc").read_bytes()
    assert bytes(64) not in raw
    assert key not in raw


# -- wrong key, wrong recording, tampering ---------------------------------------------------
def test_wrong_key_or_wrong_id(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(3 * CHUNK))
    with pytest.raises(WrongKey):
        read(tmp_path / "a.enc", new_data_key())
    with pytest.raises(WrongKey):
        read(tmp_path / "a.enc", key, OTHER)


def test_every_flipped_byte_is_detected(tmp_path: Path, key: bytes) -> None:
    data = pcm(2 * CHUNK + 300)
    write(tmp_path / "a.enc", key, data, chunk_size=256)  # many records, quicker to sweep
    raw = (tmp_path / "a.enc").read_bytes()
    step = 7
    for pos in [*range(0, len(raw), step), len(raw) - 1]:
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        (tmp_path / "b.enc").write_bytes(bad)
        with pytest.raises(crypto.CryptoError):
            read(tmp_path / "b.enc", key)


def test_flip_in_middle_chunk_detected_by_range_read(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(5 * CHUNK))
    pos, _ = records(tmp_path / "a.enc")[2]
    with open(tmp_path / "a.enc", "r+b") as f:
        f.seek(pos + 100)
        b = f.read(1)
        f.seek(pos + 100)
        f.write(bytes([b[0] ^ 0x80]))
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:  # final chunk is fine
        assert r.read_range(0, CHUNK) == pcm(5 * CHUNK)[:CHUNK]
        with pytest.raises(CorruptContainer):
            r.read_range(2 * CHUNK + 10, 2 * CHUNK + 20)


def test_reordered_chunks_detected(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(4 * CHUNK))
    raw = (tmp_path / "a.enc").read_bytes()
    recs = records(tmp_path / "a.enc")
    (p1, n1), (p2, n2) = recs[1], recs[2]
    swapped = raw[:p1] + raw[p2 : p2 + n2] + raw[p1 : p1 + n1] + raw[p2 + n2 :]
    assert len(swapped) == len(raw)
    (tmp_path / "b.enc").write_bytes(swapped)
    with pytest.raises(CorruptContainer):
        read(tmp_path / "b.enc", key)


def test_dropped_middle_chunk_detected(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(4 * CHUNK))
    raw = (tmp_path / "a.enc").read_bytes()
    p, n = records(tmp_path / "a.enc")[1]
    (tmp_path / "b.enc").write_bytes(raw[:p] + raw[p + n :])
    with pytest.raises(CorruptContainer):  # the final chunk's offset no longer matches
        read(tmp_path / "b.enc", key)


@pytest.mark.parametrize("same_key", [True, False])
def test_chunks_swapped_between_recordings_detected(tmp_path: Path, same_key: bool) -> None:
    key_a = new_data_key()
    key_b = key_a if same_key else new_data_key()
    write(tmp_path / "a.enc", key_a, pcm(3 * CHUNK, seed=1), REC)
    write(tmp_path / "b.enc", key_b, pcm(3 * CHUNK, seed=2), OTHER)
    a, b = (tmp_path / "a.enc").read_bytes(), (tmp_path / "b.enc").read_bytes()
    pa, na = records(tmp_path / "a.enc")[1]
    pb, nb = records(tmp_path / "b.enc")[1]
    assert (pa, na) == (pb, nb)
    (tmp_path / "c.enc").write_bytes(a[:pa] + b[pb : pb + nb] + a[pa + na :])
    with pytest.raises(CorruptContainer):
        read(tmp_path / "c.enc", key_a, REC)
    # b's header on a's chunks: wrong key check
    (tmp_path / "d.enc").write_bytes(b[:HEADER_SIZE] + a[HEADER_SIZE:])
    with pytest.raises((WrongKey, CorruptContainer)):
        read(tmp_path / "d.enc", key_a, REC)


def test_truncation_detected(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(3 * CHUNK))
    raw = (tmp_path / "a.enc").read_bytes()
    ends = [p + n for p, n in records(tmp_path / "a.enc")]
    for cut in [*ends[:-1], ends[-1] - 1, ends[0] - 5, HEADER_SIZE, 10]:
        (tmp_path / "b.enc").write_bytes(raw[:cut])
        with pytest.raises(Truncated):
            read(tmp_path / "b.enc", key)


def test_final_flag_cannot_be_forged(tmp_path: Path, key: bytes) -> None:
    """Cutting after a whole chunk and setting its FINAL bit does not pass."""
    write(tmp_path / "a.enc", key, pcm(3 * CHUNK))
    raw = bytearray((tmp_path / "a.enc").read_bytes())
    p, n = records(tmp_path / "a.enc")[1]
    raw[p + 3] |= 0x80
    (tmp_path / "b.enc").write_bytes(bytes(raw[: p + n]))
    with pytest.raises(CorruptContainer):
        read(tmp_path / "b.enc", key)


def test_trailing_garbage_detected(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(CHUNK))
    with open(tmp_path / "a.enc", "ab") as f:
        f.write(b"junk")
    with pytest.raises(CorruptContainer):
        read(tmp_path / "a.enc", key)


# -- crash recovery --------------------------------------------------------------------------
def crash_copy(src: Path, dst: Path, size: int) -> None:
    dst.write_bytes(src.read_bytes()[:size])


def test_recover_torn_last_chunk_loses_at_most_one_second(tmp_path: Path, key: bytes) -> None:
    """The recorder syncs every second; a crash at any byte keeps everything synced before."""
    data = pcm(10 * CHUNK)
    write(tmp_path / "full.enc", key, data, close=False)  # interrupted: no final chunk
    size = (tmp_path / "full.enc").stat().st_size
    ends = [p + n for p, n in records(tmp_path / "full.enc")]
    cuts = sorted({HEADER_SIZE, *ends, *(e - 1 for e in ends), *(e + 3 for e in ends[:-1]),
                   *range(HEADER_SIZE, size, 4999)})
    for cut in cuts:
        crash_copy(tmp_path / "full.enc", tmp_path / "c.enc", cut)
        kept = recover(tmp_path / "c.enc", key, REC)
        durable = sum(1 for e in ends if e <= cut) * CHUNK  # whole records on disk
        assert kept == durable
        # what was lost is at most one chunk, i.e. one second of audio
        assert (cut - HEADER_SIZE) - kept // CHUNK * REC_SIZE < REC_SIZE
        with EncryptedReader(tmp_path / "c.enc", key, REC) as r:
            assert r.complete and r.recovered
            assert r.read_all() == data[:kept]
        assert recover(tmp_path / "c.enc", key, REC) == kept  # idempotent


def test_recover_with_half_second_syncs(tmp_path: Path, key: bytes) -> None:
    data = pcm(6 * CHUNK)
    write(tmp_path / "full.enc", key, data, sync_every=5, close=False)
    raw = (tmp_path / "full.enc").read_bytes()
    cut = len(raw) - 100  # the last half-second chunk is torn
    crash_copy(tmp_path / "full.enc", tmp_path / "c.enc", cut)
    kept = recover(tmp_path / "c.enc", key, REC)
    assert kept == len(data) - CHUNK // 2
    assert read(tmp_path / "c.enc", key) == data[:kept]


def test_recover_zero_filled_tail(tmp_path: Path, key: bytes) -> None:
    """Some filesystems show zeros where unsynced data was: dropped like a torn chunk."""
    data = pcm(3 * CHUNK)
    write(tmp_path / "a.enc", key, data, close=False)
    p, n = records(tmp_path / "a.enc")[-1]
    raw = (tmp_path / "a.enc").read_bytes()
    (tmp_path / "a.enc").write_bytes(raw[:p] + bytes(n))
    assert recover(tmp_path / "a.enc", key, REC) == 2 * CHUNK
    assert read(tmp_path / "a.enc", key) == data[: 2 * CHUNK]


def test_recover_complete_file_is_noop(tmp_path: Path, key: bytes) -> None:
    data = pcm(2 * CHUNK + 5)
    write(tmp_path / "a.enc", key, data)
    before = (tmp_path / "a.enc").read_bytes()
    assert recover(tmp_path / "a.enc", key, REC) == len(data)
    assert (tmp_path / "a.enc").read_bytes() == before
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        assert not r.recovered


def test_recover_drops_garbage_after_final(tmp_path: Path, key: bytes) -> None:
    data = pcm(CHUNK)
    write(tmp_path / "a.enc", key, data)
    with open(tmp_path / "a.enc", "ab") as f:
        f.write(b"junk")
    assert recover(tmp_path / "a.enc", key, REC) == len(data)
    assert read(tmp_path / "a.enc", key) == data


@pytest.mark.parametrize("content", [b"", b"CREC", bytes(HEADER_SIZE)])
def test_recover_torn_header(tmp_path: Path, key: bytes, content: bytes) -> None:
    (tmp_path / "a.enc").write_bytes(content)
    assert recover(tmp_path / "a.enc", key, REC) == 0
    assert read(tmp_path / "a.enc", key) == b""


def test_recover_refuses_wrong_key(tmp_path: Path, key: bytes) -> None:
    write(tmp_path / "a.enc", key, pcm(3 * CHUNK), close=False)
    before = (tmp_path / "a.enc").read_bytes()
    with pytest.raises(WrongKey):
        recover(tmp_path / "a.enc", new_data_key(), REC)
    assert (tmp_path / "a.enc").read_bytes() == before


def test_recover_refuses_to_drop_damaged_middle(tmp_path: Path, key: bytes) -> None:
    """Damage far from the end is not a crash: the file is left alone."""
    write(tmp_path / "a.enc", key, pcm(20 * CHUNK))
    p, _ = records(tmp_path / "a.enc")[3]
    raw = bytearray((tmp_path / "a.enc").read_bytes())
    raw[p + 50] ^= 1
    (tmp_path / "a.enc").write_bytes(bytes(raw))
    with pytest.raises(CorruptContainer):
        recover(tmp_path / "a.enc", key, REC)
    assert (tmp_path / "a.enc").read_bytes() == bytes(raw)


def test_recover_refuses_foreign_file(tmp_path: Path, key: bytes) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(CorruptContainer):
        recover(tmp_path / "a.wav", key, REC)


def test_unfinished_file_readable_without_final(tmp_path: Path, key: bytes) -> None:
    """A recording in progress (or not yet recovered) can be read up to its last sync."""
    data = pcm(3 * CHUNK)
    w = EncryptedWriter(tmp_path / "a.enc", key, REC)
    w.write(data)
    w.sync()
    with EncryptedReader(tmp_path / "a.enc", key, REC, require_final=False) as r:
        assert not r.complete
        assert r.read_all() == data
        assert r.read_range(CHUNK - 2, CHUNK + 2) == data[CHUNK - 2 : CHUNK + 2]
    w.close()
    assert read(tmp_path / "a.enc", key) == data


# -- ranges ----------------------------------------------------------------------------------
def test_read_range_matches_slices(tmp_path: Path, key: bytes) -> None:
    data = pcm(7 * CHUNK + 123)
    write(tmp_path / "a.enc", key, data, sync_every=7)  # chunks of 0.7 s and 0.3 s: uneven
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        size = r.plaintext_size()
        assert size == len(data)
        bounds = [c.offset for c in r._chunks]
        points = sorted({0, 1, size - 1, size, size + 10,
                         *(b + d for b in bounds for d in (-1, 0, 1) if b + d >= 0)})
        for a in points:
            for b in points:
                assert r.read_range(a, b) == data[a:b], (a, b)
        assert r.read_range(0, size) == data
        with pytest.raises(ValueError):
            r.read_range(-1, 5)


def test_read_range_decrypts_only_needed_chunks(tmp_path: Path, key: bytes,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a.enc", key, pcm(50 * CHUNK))
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        seen: list[int] = []
        real = r._decrypt

        def spy(chunk: crypto._Chunk) -> bytes:
            seen.append(chunk.index)
            return real(chunk)

        monkeypatch.setattr(r, "_decrypt", spy)
        r.read_range(20 * CHUNK - 10, 21 * CHUNK + 10)
        assert seen == [19, 20, 21]


def test_encrypted_wav_serves_a_playable_wav(tmp_path: Path, key: bytes) -> None:
    data = pcm(3 * CHUNK + 1)  # odd: the half sample is left out
    write(tmp_path / "a.enc", key, data)
    with EncryptedReader(tmp_path / "a.enc", key, REC) as r:
        wav = EncryptedWav(r, 8000)
        whole = wav.read_range(0, wav.size())
        assert len(whole) == wav.size() == 44 + 3 * CHUNK
        with wave.open(BytesIO(whole)) as wf:
            assert wf.getframerate() == 8000 and wf.getsampwidth() == 2
            assert wf.readframes(wf.getnframes()) == data[: 3 * CHUNK]
        for a, b in [(0, 10), (40, 50), (44, 44 + CHUNK), (30, 44 + 2 * CHUNK + 7)]:
            assert wav.read_range(a, b) == whole[a:b]


# -- blobs -----------------------------------------------------------------------------------
def test_blob_round_trip_and_tamper(key: bytes) -> None:
    meta = b'{"id": "x", "caller_number": "+33612345678"}'
    blob = encrypt_blob(key, meta, REC.encode())
    assert b"3361234" not in blob
    assert decrypt_blob(key, blob, REC.encode()) == meta
    assert encrypt_blob(key, meta, REC.encode()) != blob  # random nonce
    with pytest.raises(CorruptContainer):
        decrypt_blob(key, blob, OTHER.encode())
    with pytest.raises(CorruptContainer):
        decrypt_blob(new_data_key(), blob, REC.encode())
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 4
        with pytest.raises(CorruptContainer):
            decrypt_blob(key, bytes(bad), REC.encode())
    with pytest.raises(CorruptContainer):
        decrypt_blob(key, blob[:20], REC.encode())


def test_blob_and_stream_subkeys_differ(tmp_path: Path, key: bytes) -> None:
    blob_key = crypto._subkey(key, b"callrec blob v1")
    assert blob_key != crypto._subkey(key, b"callrec audio stream v1")
    assert key not in (blob_key,)


def test_fsync_is_used(tmp_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "fsync", fsync)
    w = EncryptedWriter(tmp_path / "a.enc", key, REC)
    n0 = len(calls)
    assert n0 >= 2  # header data and directory entry
    w.write(pcm(100))
    w.sync()
    assert calls[n0:] == ["fdatasync"]
    w.close()
    assert calls[-1] == "fsync"
