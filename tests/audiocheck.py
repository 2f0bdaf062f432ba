"""Comparing audio by correlation: did what was played arrive, and where?"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, f"{path}: not mono 16-bit"
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        return data, w.getframerate()


def best_match(reference: np.ndarray, signal: np.ndarray) -> tuple[float, int]:
    """(correlation, offset): where `reference` sits best in `signal`, and how well.

    The correlation is Pearson's r between the reference and the aligned stretch of the
    signal: 1.0 for a bit-exact copy, whatever the level.
    """
    if len(signal) < len(reference):
        signal = np.concatenate([signal, np.zeros(len(reference) - len(signal))])
    n = len(signal) + len(reference)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = xc[: len(signal) - len(reference) + 1]
    offset = int(np.argmax(lags))
    segment = signal[offset : offset + len(reference)]
    ref = reference - reference.mean()
    seg = segment - segment.mean()
    denom = np.sqrt((ref * ref).sum() * (seg * seg).sum())
    return (float((ref * seg).sum() / denom) if denom else 0.0), offset
