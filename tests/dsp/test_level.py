"""Level meter: RMS in dBm0, peak in dBFS, periodic readings, speech flag with hangover."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callrec.dsp.gen_tones import sine
from callrec.dsp.level import LevelMeter, LevelReading
from callrec.dsp.signal import RATE


def readings(meter: LevelMeter, x: npt.NDArray[np.float32], chunk: int) -> list[LevelReading]:
    out: list[LevelReading] = []
    for i in range(0, x.size, chunk):
        out += meter.feed(x[i:i + chunk])
    return out + meter.flush()


@pytest.mark.parametrize("level", [0.0, -13.0, -30.0, -50.0])
def test_sine_level_in_dbm0_and_peak_in_dbfs(level: float) -> None:
    out = readings(LevelMeter(), sine(1004.0, 3.0, level), 800)
    assert [(r.start_s, r.end_s) for r in out] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    for r in out:
        assert r.rms_dbm0 == pytest.approx(level, abs=0.01)
        assert r.peak_dbfs == pytest.approx(level - 3.14, abs=0.02)  # G.711: +3.14 dBm0 = FS


def test_silence_is_minus_infinity() -> None:
    out = readings(LevelMeter(), np.zeros(RATE, np.float32), 800)
    assert out == [LevelReading(0.0, 1.0, float("-inf"), float("-inf"))]


def test_period_and_partial_last_reading() -> None:
    x = np.concatenate((sine(500.0, 1.0, -10), sine(500.0, 0.7, -30)))
    out = readings(LevelMeter(period_s=0.5), x, 333)
    assert [(r.start_s, r.end_s) for r in out] == [
        (0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, pytest.approx(1.7))]
    assert [round(r.rms_dbm0) for r in out] == [-10, -10, -30, -30]


@pytest.mark.parametrize("chunk", [1, 7, 160, 800, 1234, 40000])
def test_readings_do_not_depend_on_chunk_size(chunk: int) -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(3 * RATE + 123) * 0.1).astype(np.float32)
    want = readings(LevelMeter(), x, 800)
    got = readings(LevelMeter(), x, chunk)
    assert [(r.start_s, r.end_s) for r in got] == [(r.start_s, r.end_s) for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.rms_dbm0 == pytest.approx(w.rms_dbm0, abs=1e-4)
        assert g.peak_dbfs == w.peak_dbfs


def test_speech_flag_with_hangover_and_block_level() -> None:
    meter = LevelMeter(hangover_s=0.3, speech_dbm0=-40)
    assert not meter.speech
    meter.feed(sine(300.0, 0.2, -20))
    assert meter.speech and meter.rms_dbm0 == pytest.approx(-20, abs=0.05)
    meter.feed(np.zeros(round(0.28 * RATE), np.float32))
    assert meter.speech  # within the hangover
    meter.feed(np.zeros(round(0.04 * RATE), np.float32))
    assert not meter.speech and meter.rms_dbm0 == float("-inf")
    meter.feed(sine(300.0, 0.2, -45))  # below the threshold
    assert not meter.speech


def test_peak_dbfs_of_the_period_in_progress() -> None:
    meter = LevelMeter()
    x = np.zeros(4000, np.float32)
    x[1234] = -0.5
    assert meter.feed(x) == []
    assert meter.peak_dbfs == pytest.approx(-6.02, abs=0.01)
