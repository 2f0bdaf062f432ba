"""Polyphase resampler: passband flatness, stopband rejection, timing, lengths, speed."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest

from callrec.dsp.resample import output_length, resample

DOWN = [44100, 48000, 32000, 22050, 16000, 11025]
ALL = [*DOWN, 6000]


def tone(rate: int, freq: float, seconds: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return np.cos(2 * np.pi * freq * t + 0.3).astype(np.float32)


def amplitude_db(y: npt.NDArray[np.float32], freq: float, rate: int = 8000) -> float:
    """Amplitude of the `freq` component (least squares), away from the edges."""
    y = y[200:-200].astype(np.float64)
    t = (np.arange(y.size) + 200) / rate
    basis = np.stack((np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)), axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(20 * np.log10(np.hypot(*coef)))


def rms_db(y: npt.NDArray[np.float32]) -> float:
    y = y[200:-200].astype(np.float64)
    return float(10 * np.log10(2 * np.mean(y * y) + 1e-30))  # re a full-scale sine


@pytest.mark.parametrize("rate", ALL)
def test_passband_is_flat_to_3400_hz(rate: int) -> None:
    top = 3400.0 if rate > 8000 else 0.85 * rate / 2
    for freq in np.linspace(100, top, 25):
        assert abs(amplitude_db(resample(tone(rate, freq), rate, 8000), freq)) <= 0.5


@pytest.mark.parametrize("rate", DOWN)
def test_stopband_above_4_khz_is_at_least_60_db_down(rate: int) -> None:
    worst = max(rms_db(resample(tone(rate, freq, 0.25), rate, 8000))
                for freq in np.arange(4000.0, rate / 2, 97.0))
    assert worst <= -60.0


def test_upsampling_adds_no_images() -> None:
    for freq in (300.0, 1000.0, 2500.0):
        y = resample(tone(6000, freq), 6000, 8000)
        assert amplitude_db(y, freq) == pytest.approx(0.0, abs=0.05)
        t = np.arange(y.size) / 8000
        residue = y - np.cos(2 * np.pi * freq * t + 0.3)
        assert rms_db(residue.astype(np.float32)) <= -60.0


@pytest.mark.parametrize("rate", ALL)
def test_no_delay_output_sample_k_is_the_input_at_k_over_8000(rate: int) -> None:
    y = resample(tone(rate, 700.0), rate, 8000)
    t = np.arange(y.size) / 8000
    err = (y - np.cos(2 * np.pi * 700.0 * t + 0.3))[300:-300]
    assert float(np.abs(err).max()) < 2e-3


@pytest.mark.parametrize("rate", [*ALL, 8000, 7999, 44056])
@pytest.mark.parametrize("n", [0, 1, 2, 441, 1000, 44100, 123457])
def test_sample_count_is_exact(rate: int, n: int) -> None:
    x = np.zeros(n, np.float32)
    want = -(-n * 8000 // rate)  # output instants k/8000 < n/rate
    assert output_length(n, rate, 8000) == want
    assert resample(x, rate, 8000).size == want
    assert resample(x, rate, 8000).dtype == np.float32


def test_ten_seconds_at_44100_give_exactly_80000_samples() -> None:
    assert resample(np.zeros(441000, np.float32), 44100, 8000).size == 80000


def test_identity_and_errors() -> None:
    x = np.arange(10, dtype=np.float32)
    y = resample(x, 8000, 8000)
    assert np.array_equal(x, y) and y is not x
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 8000)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_ten_minutes_of_audio_in_a_few_seconds(rate: int) -> None:
    """Timed on one minute (best of 3: the machine may be busy), scaled to ten."""
    x = np.random.default_rng(0).standard_normal(rate * 60).astype(np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        y = resample(x, rate, 8000)
        best = min(best, time.perf_counter() - start)
    assert y.size == 8000 * 60
    assert best * 10 < 3.0
