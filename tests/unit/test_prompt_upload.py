"""Uploads decoded in the confined child process: every accepted format, and refusals."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callrec import prompt_upload
from callrec.prompt_audio import LINE_RATE, PromptAudioError
from callrec.prompt_upload import convert

FORMATS = [("WAV", "PCM_16", "WAV"), ("FLAC", "PCM_24", "FLAC"), ("OGG", "VORBIS", "Ogg"),
           ("OGG", "OPUS", "Ogg"), ("MP3", "MPEG_LAYER_III", "MP3")]


def voice(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(150 + 30 * np.sin(2 * np.pi * 0.7 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(5 * np.pi * t))
    return 0.25 * x / np.max(np.abs(x))


def encoded(fmt: str, subtype: str, seconds: float = 3.0, rate: int = 48000,
            channels: int = 2) -> bytes:
    x = voice(seconds, rate)
    data = np.stack([x] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "subtype", "kind"), FORMATS)
def test_each_format_becomes_8k_mono_16bit(tmp_path: Path, fmt: str, subtype: str,
                                           kind: str) -> None:
    result = convert(encoded(fmt, subtype), tmp_path)
    with wave.open(str(result.wav), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, LINE_RATE)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
    assert result.source_format == kind
    assert result.seconds == pytest.approx(3.0, abs=0.15)
    # Lossy codecs change the waveform a little; the voice must still be there.
    ref = voice(3.0, LINE_RATE)
    best = max(np.corrcoef(ref[: len(pcm) - lag], pcm[lag:])[0, 1] if lag >= 0 else 0
               for lag in range(0, 800, 1))
    assert best > 0.9, best
    assert [p.name for p in tmp_path.iterdir()] == [result.wav.name]  # the upload is gone


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not audio at all, just text\n" * 100, "not_audio"),
        (b"", "not_audio"),
        (encoded("AIFF", "PCM_16"), "unsupported"),
        (encoded("WAV", "PCM_16", seconds=1.0), "too_short"),
        (encoded("WAV", "PCM_16")[:30], "not_audio"),  # a header cut short
    ],
)
def test_refusals(tmp_path: Path, data: bytes, code: str) -> None:
    with pytest.raises(PromptAudioError) as caught:
        convert(data, tmp_path)
    assert caught.value.code == code
    assert list(tmp_path.iterdir()) == []


def test_too_big_is_refused_without_starting_a_decoder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompt_upload, "WORKER", ["/nonexistent"])
    with pytest.raises(PromptAudioError) as caught:
        convert(bytes(prompt_upload.MAX_UPLOAD_BYTES + 1), tmp_path)
    assert caught.value.code == "too_big"


def test_a_hanging_or_dying_decoder_is_a_refusal(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(prompt_upload, "WORKER",
                        [sys.executable, "-c", "import time; time.sleep(30)"])
    with pytest.raises(PromptAudioError) as caught:
        convert(encoded("WAV", "PCM_16"), tmp_path, timeout_s=1.0)
    assert caught.value.code == "damaged"
    monkeypatch.setattr(prompt_upload, "WORKER",
                        [sys.executable, "-c", "import os; os.abort()"])
    with pytest.raises(PromptAudioError) as caught:
        convert(encoded("WAV", "PCM_16"), tmp_path)
    assert caught.value.code == "damaged"
    assert list(tmp_path.iterdir()) == []


def test_the_decoder_runs_under_resource_limits(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that tries to allocate without end is stopped by its address-space limit."""
    import sys

    code = ("from callrec.prompt_worker import limit_resources; limit_resources(); "
            "x = bytearray(2 * 1024 ** 3)")
    monkeypatch.setattr(prompt_upload, "WORKER", [sys.executable, "-c", code])
    with pytest.raises(PromptAudioError) as caught:
        convert(encoded("WAV", "PCM_16"), tmp_path)
    assert caught.value.code == "damaged"
