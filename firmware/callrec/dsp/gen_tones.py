"""Call-progress tone generators for tests, benchmarks and the line simulator."""

from __future__ import annotations

import numpy as np

from callrec.dsp.signal import RATE, Samples, dbm0_to_peak
from callrec.dsp.tones import tone_plan


def tone_plan_signal(
    country: str,
    tone: str,
    duration_s: float,
    level_dbm0: float = -15,
    freq_error: float = 0.0,
    cadence_error: float = 0.0,
    *,
    phase: float = 0.0,
) -> Samples:
    """`duration_s` of `tone` (a key of `country`'s plan) starting with a burst at t = 0.

    `level_dbm0` is per frequency (as the standards give it). `freq_error` scales every
    frequency (0.02 = +2 %), `cadence_error` every on and off length (-0.1 = 10 % shorter).
    The oscillators run continuously and are gated by the cadence, as in an exchange.
    """
    spec = tone_plan(country).get(tone)
    if spec is None:
        raise ValueError(f"no {tone!r} tone in the {country!r} plan")
    n = round(duration_s * RATE)
    t = np.arange(n) / RATE
    amp = dbm0_to_peak(level_dbm0)
    out = np.zeros(n)
    for i, f in enumerate(spec.freqs):
        out += amp * np.cos(2 * np.pi * f * (1 + freq_error) * t + phase + 1.3 * i)
    if spec.on_s is not None and spec.off_s is not None:
        on = spec.on_s * (1 + cadence_error)
        period = on + spec.off_s * (1 + cadence_error)
        out[np.mod(t, period) >= on] = 0.0
    return out.astype(np.float32)


def sine(freq: float, duration_s: float, level_dbm0: float = -15, phase: float = 0.0) -> Samples:
    """A plain sine at `level_dbm0`."""
    t = np.arange(round(duration_s * RATE)) / RATE
    return (dbm0_to_peak(level_dbm0) * np.cos(2 * np.pi * freq * t + phase)).astype(np.float32)
