"""Storage codecs: bit-exact FLAC, compact Ogg/Opus with DTX (timing, fidelity, container),
block-by-block encoding. Transcoding recordings: test_transcode.py."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callrec.storage import codec
from speechcall import speech_call

RATE = 8000
MIN_CORRELATION = 0.9  # compact vs. input on the speech samples (measured 0.975)


@pytest.fixture(scope="module")
def call() -> np.ndarray:
    return speech_call()


def test_hours_per_gb() -> None:
    # WAV at 8 kHz 16-bit: 16000 B/s -> 10^9 / 16000 / 3600 = 17.36 h
    assert codec.hours_per_gb(16000 * 3600, 3600) == pytest.approx(17.36, abs=0.01)
    with pytest.raises(ValueError):
        codec.hours_per_gb(0, 1)


def test_flac_round_trip_is_bit_exact(tmp_path: Path, call: np.ndarray) -> None:
    extreme = np.array([-32768, 32767, 0, -1, 1], dtype=np.int16)
    pcm = np.concatenate([call, extreme])
    out = tmp_path / "r.flac"
    size = codec.encode(pcm, out, "lossless")
    assert size == out.stat().st_size < pcm.size * 2
    assert out.read_bytes()[:4] == b"fLaC"
    back, rate = sf.read(out, dtype="int16")
    assert rate == RATE
    assert np.array_equal(back, pcm)
    # from a WAV path too, and through decode()
    wav = tmp_path / "r.wav"
    codec.encode(pcm.tobytes(), wav, "wav")
    codec.encode(wav, out, "lossless")
    y, _ = codec.decode(out)
    assert np.array_equal(np.round(y * 32768).astype(np.int16), pcm)


def test_compact_keeps_duration_and_speech(tmp_path: Path, call: np.ndarray) -> None:
    out = tmp_path / "r.opus"
    size = codec.encode(call, out, "compact")
    y, rate = codec.decode(out)
    assert rate == RATE
    assert abs(y.size - call.size) <= 0.020 * RATE  # same duration ± 20 ms
    x = call.astype(np.float64) / 32768
    mask = codec.speech_mask(call)
    n = min(x.size, y.size)
    speech = mask[:n] & (np.abs(x[:n]) > 0)
    r = np.corrcoef(x[:n][speech], y[:n][speech])[0, 1]
    assert r >= MIN_CORRELATION, r
    # pauses are stored as DTX frames: far smaller than plain Opus at the same setting
    plain = codec.encode_bytes(call, "compact", dtx=False)
    assert size < 0.9 * len(plain)
    packets, _, _ = codec.ogg_packets(out.read_bytes())
    assert sum(len(p) == 1 for p in packets[2:]) > 0.5 * (1 - mask.mean()) * call.size / 160
    # and decode to low-level comfort noise, not to speech
    pause = slice(int(0.3 * RATE), int(1.2 * RATE))
    assert np.sqrt(np.mean(y[pause] ** 2)) < 0.01


def test_compact_is_a_browser_playable_ogg_opus(tmp_path: Path, call: np.ndarray) -> None:
    """What Chromium's Ogg demuxer and libopus need: valid pages (magic, version, CRC, BOS/EOS,
    sequence), an OpusHead (v1, mono, pre-skip) then OpusTags, monotonic granules, valid TOCs."""
    out = tmp_path / "r.opus"
    codec.encode(call, out, "compact")
    data = out.read_bytes()
    pos, seq, pages, last_granule = 0, 0, [], -1
    while pos < len(data):
        assert data[pos : pos + 5] == b"OggS\x00"
        flags = data[pos + 5]
        granule, _, page_seq, crc = struct.unpack_from("<qIII", data, pos + 6)
        nseg = data[pos + 26]
        end = pos + 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        page = bytearray(data[pos:end])
        struct.pack_into("<I", page, 22, 0)
        assert codec.ogg_crc(bytes(page)) == crc
        assert page_seq == seq
        if granule != -1:
            assert granule >= last_granule
            last_granule = granule
        pages.append(flags)
        seq += 1
        pos = end
    assert pages[0] == 0x02 and pages[-1] & 0x04 and not any(f & 0x02 for f in pages[1:])
    packets, _, _ = codec.ogg_packets(data)
    head = packets[0]
    assert head[:8] == b"OpusHead" and head[8] == 1 and head[9] == 1
    assert struct.unpack_from("<I", head, 12)[0] == RATE
    assert packets[1][:8] == b"OpusTags"
    total = sum(codec.opus_samples_48k(p) for p in packets[2:])
    preskip = struct.unpack_from("<H", head, 10)[0]
    assert abs((last_granule - preskip) / 6 - call.size) <= 160
    assert total >= last_granule
    assert all(len(p) >= 1 for p in packets[2:])


def test_block_by_block_encoding_equals_one_block(call: np.ndarray) -> None:
    """The transcoder feeds the encoder in blocks that do not fall on 20 ms frames: the
    voice-activity decisions, so the DTX frames and the size, must not depend on it."""
    whole = codec.encode_bytes(call, "compact")
    enc = codec.StreamEncoder("compact")
    for start in range(0, call.size, 1237):
        enc.write(call[start : start + 1237])
    blocks = enc.finish()
    assert enc.samples == call.size
    one, _, _ = codec.ogg_packets(whole)
    many, _, _ = codec.ogg_packets(blocks)
    assert [len(p) == 1 for p in one[2:]] == [len(p) == 1 for p in many[2:]]
    assert abs(len(blocks) - len(whole)) <= 0.02 * len(whole)
    back, rate = codec.decode_file_bytes(blocks)
    assert rate == RATE and back.size == call.size
