"""The building blocks of the DTMF detector: the Goertzel bank and the test-signal generator."""

from __future__ import annotations

import numpy as np
import pytest

from callrec.dsp.gen_dtmf import DIGITS, dial, dtmf_tone, frequencies, single_tone
from callrec.dsp.goertzel import BinBank, Segment, goertzel, window_weights
from callrec.dsp.signal import RATE, rms_to_dbm0


def test_bin_bank_equals_the_goertzel_recursion() -> None:
    rng = np.random.default_rng(0)
    blocks = rng.standard_normal((5, 102)).astype(np.float32)
    freqs = (697.0, 1209.0, 1633.0, 2954.0)
    bank = BinBank(102, (Segment(freqs, 0, 102, "rect"), Segment(freqs, 34, 68, "hann")))
    got = bank.flat(blocks)
    np.testing.assert_allclose(got[:, :4], goertzel(blocks, freqs), rtol=1e-4, atol=1e-4)
    # A windowed segment is the recursion run on the windowed samples, rotated to the
    # block's sample 0.
    w = window_weights("hann", 68)
    shifted = goertzel(blocks[:, 34:] * w, freqs) * np.exp(
        -2j * np.pi * np.asarray(freqs) * 34 / RATE)
    np.testing.assert_allclose(got[:, 4:], shifted, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bank.gain, [102.0, 34.0])


def test_phase_difference_measures_the_frequency_error() -> None:
    """What the detector's frequency test rests on: arg(B·A*) = 2π·Δf·34/8000."""
    bank = BinBank(102, (Segment((1000.0,), 0, 68, "hann"), Segment((1000.0,), 34, 68, "hann")))
    for err in (-30.0, -10.0, 0.0, 12.0, 40.0):
        t = np.arange(102) / RATE
        x = np.sin(2 * np.pi * (1000 + err) * t + 0.4).astype(np.float32)[None, :]
        a, b = bank.flat(x)[0]
        assert np.angle(b * np.conj(a)) * RATE / (2 * np.pi * 34) == pytest.approx(err, abs=0.5)


def test_segments_must_fit_the_block() -> None:
    with pytest.raises(ValueError):
        BinBank(102, (Segment((1000.0,), 50, 68),))
    with pytest.raises(ValueError):
        window_weights("kaiser", 10)


@pytest.mark.parametrize("level", [-3.0, -10.0, -36.0])
def test_tone_levels_are_dbm0_per_tone(level: float) -> None:
    x = single_tone(1000.0, 1.0, level)
    assert rms_to_dbm0(float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))) == pytest.approx(
        level, abs=0.01)
    pair = dtmf_tone("5", 1.0, level)  # two tones: +3 dB in total
    assert rms_to_dbm0(float(np.sqrt(np.mean(pair.astype(np.float64) ** 2)))) == pytest.approx(
        level + 3.01, abs=0.05)


def test_twist_and_frequency_offsets() -> None:
    x = dtmf_tone("1", 1.0, -10.0, twist_db=6.0, freq_offset=(0.02, -0.01)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    low = spectrum[freqs < 1000].argmax()
    high = spectrum[freqs > 1000].argmax() + np.count_nonzero(freqs <= 1000)
    assert freqs[low] == pytest.approx(697 * 1.02, abs=1.5)
    assert freqs[high] == pytest.approx(1209 * 0.99, abs=1.5)
    assert 20 * np.log10(spectrum[high] / spectrum[low]) == pytest.approx(6.0, abs=0.2)


def test_keys_and_dialling() -> None:
    assert frequencies("1") == (697.0, 1209.0)
    assert frequencies("d") == (941.0, 1633.0)
    assert {frequencies(k) for k in DIGITS} == {(r, c) for r in (697.0, 770.0, 852.0, 941.0)
                                                for c in (1209.0, 1336.0, 1477.0, 1633.0)}
    for bad in ("E", "", "12", " "):
        with pytest.raises(ValueError):
            frequencies(bad)
    x = dial("0123", tone_s=0.05, gap_s=0.05)
    assert x.dtype == np.float32 and len(x) == 4 * 800
    assert not x[400:800].any()
    assert len(dial("")) == 0
    assert len(dial("1", rate=48000)) == 2 * round(0.08 * 48000)
