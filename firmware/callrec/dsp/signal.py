"""Sample format and level conversions shared by the DSP modules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 8000
Samples = npt.NDArray[np.float32]

# G.711: a full-scale sine is +3.14 dBm0 (ITU-T G.711 / G.168), so 0 dBm0 is 3.14 dB below it.
FULL_SCALE_DBM0 = 3.14


def dbm0_to_peak(dbm0: float) -> float:
    """Peak amplitude (full scale = 1.0) of a sine at `dbm0`."""
    return float(10 ** ((dbm0 - FULL_SCALE_DBM0) / 20))


def rms_to_dbm0(rms: float) -> float:
    """Level in dBm0 of a signal with this RMS (full scale = 1.0); -inf for silence."""
    if rms <= 0:
        return float("-inf")
    # A sine's RMS is its peak / sqrt(2).
    return float(20 * np.log10(rms * np.sqrt(2)) + FULL_SCALE_DBM0)


def from_pcm16(pcm: bytes) -> Samples:
    """16-bit little-endian PCM bytes to float32 samples."""
    return (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def to_pcm16(samples: npt.ArrayLike) -> bytes:
    """float samples (clipped to ±1) to 16-bit little-endian PCM bytes."""
    data = np.clip(np.asarray(samples, dtype=np.float64) * 32768.0, -32768, 32767)
    return np.round(data).astype("<i2").tobytes()
