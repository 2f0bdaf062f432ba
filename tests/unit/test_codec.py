"""Storage codecs: bit-exact FLAC, compact Ogg/Opus with DTX (timing, fidelity, container),
atomic transcoding after hang-up."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from callrec.dsp.resample import resample  # noqa: E402
from callrec.storage import codec  # noqa: E402

RATE = 8000
ALSA = Path("/usr/share/sounds/alsa")
MIN_CORRELATION = 0.9  # compact vs. input on the speech samples (measured 0.975)


def speech_call(seconds_pause: float = 1.5) -> np.ndarray:
    """int16, 8 kHz: two real phrases (alsa-utils) or a voiced stand-in, with pauses of
    -60 dBm0-ish line noise between and around them."""
    rng = np.random.default_rng(7)
    phrases: list[np.ndarray] = []
    for name in ("Front_Center.wav", "Rear_Left.wav"):
        if (ALSA / name).exists():
            x, sr = sf.read(ALSA / name, dtype="float64", always_2d=True)
            phrases.append(resample(x.mean(axis=1), sr, RATE).astype(np.float64))
    if not phrases:  # harmonic "vowels" with a wandering pitch, in syllables
        t = np.arange(int(1.3 * RATE)) / RATE
        f0 = 120 + 30 * np.sin(2 * np.pi * 1.3 * t)
        ph = 2 * np.pi * np.cumsum(f0) / RATE
        v = np.zeros(t.size)
        for k in range(1, 25):
            v += np.sin(k * ph) / k
        v *= np.sin(2 * np.pi * 4 * t) > -0.3
        phrases = [v, v[::-1]]
    parts = []
    pause = np.zeros(int(seconds_pause * RATE))
    for p in phrases:
        parts += [pause, 0.08 * p / np.sqrt(np.mean(p * p))]
    parts.append(pause)
    x = np.concatenate(parts)
    x += 0.0007 * rng.standard_normal(x.size)
    return np.round(np.clip(x, -1, 0.99) * 32768).astype(np.int16)


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


def test_transcode_after_hangup_is_atomic(tmp_path: Path, call: np.ndarray,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    wav = tmp_path / "20261129T100000Z-abc.wav"
    codec.encode(call, wav, "wav")
    dest = wav.with_suffix(".opus")
    dest.write_bytes(b"old")

    # a crash before the rename: the old file stays whole
    def crash(*_a: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        codec.transcode_recording(wav, "compact", remove_wav=True)
    assert dest.read_bytes() == b"old"
    assert wav.exists()
    monkeypatch.undo()

    # a crash while writing: the same
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:100]))
        raise OSError("disk gone")

    monkeypatch.setattr(os, "write", short_write)
    with pytest.raises(OSError):
        codec.transcode_recording(wav, "compact")
    assert dest.read_bytes() == b"old"
    monkeypatch.undo()

    # and done: the new file, complete; the WAV removed only then
    assert codec.transcode_recording(wav, "compact", remove_wav=True) == dest
    assert not wav.exists()
    y, _ = codec.decode(dest)
    assert abs(y.size - call.size) <= 0.020 * RATE
    codec.encode(call, tmp_path / "b.wav", "wav")
    flac = codec.transcode_recording(tmp_path / "b.wav", "lossless")
    assert sf.read(flac, dtype="int16")[0].tolist() == call.tolist()
