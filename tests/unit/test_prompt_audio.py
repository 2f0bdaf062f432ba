"""Turning an upload into a line-ready prompt: mono, 8 kHz, trimmed, one loudness; refusals."""

from __future__ import annotations

import numpy as np
import pytest

from callrec.prompt_audio import (
    LINE_RATE,
    PEAK_LIMIT_DBFS,
    TARGET_RMS_DBFS,
    PromptAudioError,
    check_input,
    clipped_fraction,
    condition,
    dbfs,
    trim_silence,
)


def voice(seconds: float, rate: int, level: float = 0.3, seed: int = 1) -> np.ndarray:
    """Speech-like audio: harmonics of a gliding 150 Hz voice, in syllables of ~0.2 s."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 2.5 * t + np.random.default_rng(seed).uniform())
    x = x * syllables
    return level * x / np.max(np.abs(x))


def pcm_array(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def rms_dbfs(x: np.ndarray) -> float:
    return dbfs(float(np.sqrt(np.mean(x**2))))


def test_stereo_44k_becomes_mono_8k_at_the_loudness_target() -> None:
    left = voice(5, 44100, 0.05)
    out = condition(np.stack([left, 0.5 * left], axis=1), 44100)
    x = pcm_array(out.pcm)
    assert out.seconds == pytest.approx(len(x) / LINE_RATE)
    assert out.seconds == pytest.approx(5, abs=0.1)
    # Quiet input is raised to the RMS target, peaks stay under the limit.
    assert rms_dbfs(x) == pytest.approx(TARGET_RMS_DBFS, abs=0.3) or \
        dbfs(float(np.max(np.abs(x)))) == pytest.approx(PEAK_LIMIT_DBFS, abs=0.1)
    assert dbfs(float(np.max(np.abs(x)))) <= PEAK_LIMIT_DBFS + 0.01
    assert out.rms_dbfs == pytest.approx(rms_dbfs(x), abs=0.01)
    assert out.gain_db > 0
    # It is the same audio: the 8 kHz reference correlates with the result.
    ref = voice(5, 8000, 1.0)
    n = min(len(ref), len(x))
    r = np.corrcoef(ref[:n], x[:n])[0, 1]
    assert r > 0.95, r


def test_peaky_audio_is_limited_by_its_peaks_not_its_rms() -> None:
    x = voice(3, 8000, 0.2)
    x[4000:4010] = 0.9  # a click far above the speech
    out = condition(x, 8000)
    y = pcm_array(out.pcm)
    assert dbfs(float(np.max(np.abs(y)))) == pytest.approx(PEAK_LIMIT_DBFS, abs=0.05)
    assert out.rms_dbfs < TARGET_RMS_DBFS


def test_silence_around_the_words_is_trimmed() -> None:
    rate = 16000
    speech = voice(3, rate)
    padded = np.concatenate([np.zeros(2 * rate), speech, np.zeros(rate * 3)])
    padded += np.random.default_rng(2).normal(0, 1e-4, padded.size)  # a quiet room's hiss
    out = condition(padded, rate)
    assert out.seconds == pytest.approx(3.0, abs=0.15)
    trimmed = trim_silence(np.concatenate([np.zeros(800), voice(2, 8000), np.zeros(800)]), 8000)
    assert len(trimmed) / 8000 == pytest.approx(2.0 + 0.1, abs=0.05)  # 50 ms margins kept


@pytest.mark.parametrize(
    ("samples", "rate", "code"),
    [
        (np.zeros(8000 * 5), 8000, "silent"),
        (np.random.default_rng(3).normal(0, 1e-4, 8000 * 5), 8000, "silent"),
        (voice(1.2, 8000), 8000, "too_short"),
        (np.concatenate([np.zeros(8000 * 10), voice(1.0, 8000)]), 8000, "too_short"),
        (voice(61, 8000), 8000, "too_long"),
        (voice(3, 7000), 7000, "bad_rate"),
        (voice(3, 44099), 44099, "bad_rate"),
        (np.clip(voice(4, 8000, 3.0), -1, 1), 8000, "clipped"),
        (np.full(8000 * 3, np.nan), 8000, "not_audio"),
    ],
)
def test_refusals_name_their_reason(samples: np.ndarray, rate: int, code: str) -> None:
    with pytest.raises(PromptAudioError) as caught:
        condition(samples, rate)
    assert caught.value.code == code


def test_a_few_flat_tops_are_not_clipping() -> None:
    x = voice(4, 8000, 0.9)
    x[1000:1002] = 1.0  # two samples at full scale: a lucky peak, not a flattened wave
    assert clipped_fraction(x) == 0
    condition(x, 8000)  # accepted


def test_too_long_and_too_big_are_refused_before_decoding() -> None:
    with pytest.raises(PromptAudioError) as caught:
        check_input(48000, 48000 * 3600, 1)  # an hour announced by the header
    assert caught.value.code == "too_long"
    with pytest.raises(PromptAudioError) as caught:
        check_input(192000, 192000 * 100, 8)
    assert caught.value.code == "too_much_data"
    check_input(48000, 48000 * 100, 2)  # 100 s: may still trim down to 60
