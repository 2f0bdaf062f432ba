"""WAV input: every encoding, channel count and rate to float32 mono 8 kHz; clear errors."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callrec.dsp.wavin import _ALAW, _MULAW, WavError, read_wav

Samples = npt.NDArray[np.float32]
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def sines(rate: int, seconds: float, freqs: tuple[float, ...], amp: float = 0.5
          ) -> npt.NDArray[np.float64]:
    """(frames, channels): one sine per channel."""
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([amp * np.sin(2 * np.pi * f * t) for f in freqs], axis=1)


def pcm_bytes(x: npt.NDArray[np.float64], bits: int) -> bytes:
    if bits == 8:
        return np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    scale = float(1 << (bits - 1))
    v = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
    if bits == 24:
        b = (v & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        return b.tobytes()
    return v.astype({16: "<i2", 32: "<i4"}[bits]).tobytes()


def write_with_wave(path: Path, x: npt.NDArray[np.float64], rate: int, bits: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(pcm_bytes(x, bits))
    return path


def riff(fmt_body: bytes, data: bytes, extra: bytes = b"", data_size: int | None = None
         ) -> bytes:
    """A RIFF/WAVE file from a fmt chunk body and data (our own writer, for what `wave`
    cannot write: float, G.711, WAVE_FORMAT_EXTENSIBLE, broken files)."""
    size = len(data) if data_size is None else data_size
    chunks = (b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + extra
              + b"data" + struct.pack("<I", size) + data)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt_body(code: int, channels: int, rate: int, bits: int, extensible_code: int = 0
             ) -> bytes:
    align = channels * bits // 8
    base = struct.pack("<HHIIHH", code, channels, rate, rate * align, align, bits)
    if code == 0xFFFE:
        return base + struct.pack("<HHIH", 22, bits, 0, extensible_code) + GUID_TAIL
    return base + (b"\x00\x00" if code != 1 else b"")


def encode_g711(x: npt.NDArray[np.float64], table: Samples) -> bytes:
    """Nearest code for each sample (brute force: test material only)."""
    return np.abs(x.reshape(-1, 1) - table[None, :]).argmin(axis=1).astype(np.uint8).tobytes()


def level_of(y: Samples, freq: float) -> float:
    """Amplitude of the `freq` component of 8 kHz samples (least squares, edges dropped)."""
    y = y[400:-400].astype(np.float64)
    t = (np.arange(y.size) + 400) / 8000
    basis = np.stack((np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)), axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(*coef))


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_through_the_stdlib_reader(tmp_path: Path, bits: int, channels: int) -> None:
    x = sines(8000, 1.0, (1000.0, 1500.0)[:channels])
    path = write_with_wave(tmp_path / "pcm.wav", x, 8000, bits)
    y, duration = read_wav(path)
    assert y.dtype == np.float32 and y.shape == (8000,) and duration == 1.0
    want = x.mean(axis=1)  # stereo is mixed down: both parties of a call are kept
    assert float(np.abs(y - want).max()) <= 2.0 ** (1 - bits) + 1e-6


@pytest.mark.parametrize(("code", "bits", "dtype"), [(3, 32, "<f4"), (3, 64, "<f8")])
def test_ieee_float(tmp_path: Path, code: int, bits: int, dtype: str) -> None:
    x = sines(8000, 0.5, (700.0, 900.0))
    path = tmp_path / "float.wav"
    path.write_bytes(riff(fmt_body(code, 2, 8000, bits), x.astype(dtype).tobytes()))
    y, duration = read_wav(path)
    assert duration == 0.5
    assert np.allclose(y, x.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize(("sub", "bits"), [(1, 16), (1, 24), (3, 32)])
def test_wave_format_extensible(tmp_path: Path, sub: int, bits: int) -> None:
    x = sines(8000, 0.5, (440.0,))
    data = x.astype("<f4").tobytes() if sub == 3 else pcm_bytes(x, bits)
    path = tmp_path / "ext.wav"
    path.write_bytes(riff(fmt_body(0xFFFE, 1, 8000, bits, sub), data))
    y, _ = read_wav(path)
    assert float(np.abs(y - x[:, 0]).max()) < 1e-4


@pytest.mark.parametrize(("code", "table"), [(6, _ALAW), (7, _MULAW)])
def test_g711_alaw_and_mulaw(tmp_path: Path, code: int, table: Samples) -> None:
    # G.711 reference points: the largest codes are ±32124 (µ-law) / ±32256 (A-law) of 32768.
    assert float(np.abs(table).max()) * 32768 == {6: 32256, 7: 32124}[code]
    assert np.unique(table).size == {6: 256, 7: 255}[code]  # µ-law has +0 and -0
    x = sines(8000, 0.5, (1004.0,), amp=0.3)  # 1004 Hz: the standard digital test tone
    path = tmp_path / "g711.wav"
    path.write_bytes(riff(fmt_body(code, 1, 8000, 8), encode_g711(x[:, 0], table)))
    y, _ = read_wav(path)
    assert level_of(y, 1004.0) == pytest.approx(0.3, rel=0.01)
    snr = 10 * np.log10(np.sum(x[:, 0] ** 2) / np.sum((y - x[:, 0]) ** 2))
    assert snr > 30  # G.711 quantisation: ~38 dB at this level


@pytest.mark.parametrize("rate", [6000, 11025, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("bits", [8, 16])
def test_any_rate_is_resampled_to_8_khz(tmp_path: Path, rate: int, bits: int) -> None:
    x = sines(rate, 2.0, (1000.0, 1000.0), amp=0.4)
    y, duration = read_wav(write_with_wave(tmp_path / "r.wav", x, rate, bits))
    assert duration == pytest.approx(2.0)
    assert y.size == 16000
    assert level_of(y, 1000.0) == pytest.approx(0.4, rel=0.01)


def test_odd_chunks_before_the_data_and_the_streaming_placeholder(tmp_path: Path) -> None:
    x = sines(8000, 0.25, (500.0,))
    data = pcm_bytes(x, 16)
    odd = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # padded to even
    path = tmp_path / "odd.wav"
    path.write_bytes(riff(fmt_body(1, 1, 8000, 16), data, extra=odd))
    assert read_wav(path)[0].size == 2000
    path.write_bytes(riff(fmt_body(3, 1, 8000, 32), x.astype("<f4").tobytes(),
                          data_size=0xFFFFFFFF))
    y, duration = read_wav(path)  # a stream never finalised: read to the end of the file
    assert y.size == 2000 and duration == 0.25


def test_empty_data_chunk_is_a_valid_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(riff(fmt_body(1, 1, 8000, 16), b""))
    y, duration = read_wav(path)
    assert y.size == 0 and duration == 0.0
    path.write_bytes(riff(fmt_body(1, 1, 8000, 16), b"") + b"LIST\x04\x00\x00\x00INFO")
    assert read_wav(path)[0].size == 0


def test_header_never_patched_by_a_crashed_recorder(tmp_path: Path) -> None:
    """Sizes left at 0 with the audio after them: read to the end of the file."""
    x = sines(8000, 0.5, (600.0,))
    content = bytearray(riff(fmt_body(1, 1, 8000, 16), pcm_bytes(x, 16), data_size=0))
    content[4:8] = b"\x00\x00\x00\x00"  # the RIFF size was not patched either
    path = tmp_path / "crashed.wav"
    path.write_bytes(bytes(content) + b"\x01")  # and a half frame at the end
    y, duration = read_wav(path)
    assert duration == 0.5 and float(np.abs(y - x[:, 0]).max()) < 1e-4


def expect_error(path: Path, match: str) -> None:
    with pytest.raises(WavError, match=match) as info:
        read_wav(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    good = riff(fmt_body(1, 1, 8000, 16), pcm_bytes(sines(8000, 0.1, (440.0,)), 16))
    expect_error(tmp_path / "missing.wav", "no such file")
    expect_error(tmp_path, "is a directory")
    (tmp_path / "file").write_bytes(b"")
    expect_error(tmp_path / "file" / "x.wav", r"cannot read \(Not a directory\)")
    cases: dict[str, tuple[bytes, str]] = {
        "empty.wav": (b"", "not a WAV file"),
        "text.wav": (b"hello, this is not audio at all", r"not a WAV file \(no RIFF/WAVE"),
        "rf64.wav": (b"RF64" + good[4:], "RF64"),
        "cut-header.wav": (good[:30], "truncated inside the fmt chunk"),
        "no-data.wav": (good[:44 - 8], "no data chunk"),
        "truncated.wav": (good[:-100], r"truncated: the data chunk announces 800 frames, "
                                       r"the file holds 750"),
        "adpcm.wav": (riff(fmt_body(2, 1, 8000, 4), b"\x00" * 100), "unsupported encoding"),
        "12bit.wav": (riff(fmt_body(1, 1, 8000, 12)[:12] + struct.pack("<HH", 2, 12),
                           b"\x00" * 100), "unsupported sample size: 12-bit PCM"),
        "align.wav": (riff(struct.pack("<HHIIHH", 1, 2, 8000, 32000, 2, 16), b"\x00" * 8),
                      "inconsistent block align"),
        "guid.wav": (riff(fmt_body(0xFFFE, 1, 8000, 16, 1)[:-14] + b"\x01" * 14, b"\x00" * 8),
                     "unknown sub-format"),
        "rate.wav": (riff(fmt_body(1, 1, 0, 16), b"\x00" * 8), "invalid sample rate"),
        "odd-size.wav": (riff(fmt_body(1, 1, 8000, 16), b"\x00" * 7),
                         "not a whole number of 2-byte frames"),
        "data-first.wav": (b"RIFF" + struct.pack("<I", 16) + b"WAVEdata\x00\x00\x00\x00",
                           "data chunk before any fmt chunk"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        expect_error(path, match)


def test_unreadable_file(tmp_path: Path) -> None:
    # Permission bits cannot make a file unreadable here: CI runs as root. A directory and a
    # file whose read fails with an I/O error (address 0 of /proc/self/mem) can.
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    expect_error(folder, "is a directory")
    expect_error(Path("/proc/self/mem"), "cannot read")
