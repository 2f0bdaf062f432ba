"""DTMF test signals (ITU-T Q.23 frequencies) as float32 samples at dBm0 levels.

Used by the tests and by the line simulator. Levels follow `signal.py`: a tone at L dBm0 has
peak `dbm0_to_peak(L)`. Twist is the column (high-group) level minus the row (low-group)
level in dB: positive = "normal" twist (high group louder), negative = "reverse".
"""

from __future__ import annotations

import numpy as np

from callrec.dsp.signal import RATE, Samples, dbm0_to_peak

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYS)


def frequencies(digit: str) -> tuple[float, float]:
    """The (row, column) frequencies in Hz of a DTMF key ('0'-'9', '*', '#', 'A'-'D')."""
    for r, keys in enumerate(KEYS):
        c = keys.find(digit.upper())
        if c >= 0 and len(digit) == 1:
            return ROWS[r], COLS[c]
    raise ValueError(f"not a DTMF key: {digit!r}")


def dtmf_tone(
    digit: str,
    duration_s: float,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    freq_offset: tuple[float, float] = (0.0, 0.0),
    rate: int = RATE,
    phases: tuple[float, float] = (0.0, 0.0),
) -> Samples:
    """One key's two tones for `duration_s` seconds.

    level_dbm0: level of each tone at zero twist; `twist_db` is split evenly (row at
    level − twist/2, column at level + twist/2), so the pair's mean level stays put.
    freq_offset: relative frequency errors (row, column), e.g. (0.015, -0.035) = +1.5 %/−3.5 %.
    phases: start phases in radians (row, column).
    """
    low, high = frequencies(digit)
    n = round(duration_s * rate)
    t = np.arange(n, dtype=np.float64) / rate
    a_low = dbm0_to_peak(level_dbm0 - twist_db / 2)
    a_high = dbm0_to_peak(level_dbm0 + twist_db / 2)
    out = a_low * np.sin(2 * np.pi * low * (1 + freq_offset[0]) * t + phases[0])
    out += a_high * np.sin(2 * np.pi * high * (1 + freq_offset[1]) * t + phases[1])
    return out.astype(np.float32)


def single_tone(
    freq_hz: float, duration_s: float, level_dbm0: float = -10.0, rate: int = RATE
) -> Samples:
    """A lone sine (e.g. one DTMF group's tone without its partner)."""
    t = np.arange(round(duration_s * rate), dtype=np.float64) / rate
    return (dbm0_to_peak(level_dbm0) * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def silence(duration_s: float, rate: int = RATE) -> Samples:
    """Digital silence."""
    return np.zeros(round(duration_s * rate), dtype=np.float32)


def dial(
    digits: str,
    tone_s: float = 0.08,
    gap_s: float = 0.08,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    rate: int = RATE,
) -> Samples:
    """`digits` dialled: each key's tones for `tone_s`, then `gap_s` of silence after each."""
    gap = silence(gap_s, rate)
    parts: list[Samples] = []
    for digit in digits:
        parts.append(dtmf_tone(digit, tone_s, level_dbm0, twist_db, rate=rate))
        parts.append(gap)
    return np.concatenate(parts) if parts else silence(0.0, rate)
