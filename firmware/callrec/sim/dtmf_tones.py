"""DTMF tones as an office phone sends them when dialling (ITU-T Q.23 frequencies)."""

from __future__ import annotations

import array
import math

ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


def frequencies(digit: str) -> tuple[int, int]:
    """The (row, column) frequencies of a DTMF key."""
    for r, keys in enumerate(KEYS):
        c = keys.find(digit.upper())
        if c >= 0:
            return ROWS[r], COLS[c]
    raise ValueError(f"not a DTMF key: {digit!r}")


def dial(digits: str, rate: int = 8000, tone_ms: int = 80, gap_ms: int = 80,
         level_dbfs: float = -12.0) -> bytes:
    """16-bit PCM of `digits` dialled: each key's two tones, then a pause."""
    amplitude = 32767 * 10 ** (level_dbfs / 20) / 2  # two tones share the level
    out = array.array("h")
    for digit in digits:
        low, high = frequencies(digit)
        n = rate * tone_ms // 1000
        out.extend(
            int(amplitude * (math.sin(2 * math.pi * low * i / rate)
                             + math.sin(2 * math.pi * high * i / rate)))
            for i in range(n)
        )
        out.extend([0] * (rate * gap_ms // 1000))
    return out.tobytes()
