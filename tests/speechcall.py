"""A short telephone call for the storage codec tests: real speech with pauses of line noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callrec.dsp.resample import resample

RATE = 8000
ALSA = Path("/usr/share/sounds/alsa")


def speech_call(seconds_pause: float = 1.5) -> np.ndarray:
    """int16, 8 kHz: two real phrases (alsa-utils) or a voiced stand-in, with pauses of
    -60 dBm0-ish line noise between and around them."""
    rng = np.random.default_rng(7)
    phrases: list[np.ndarray] = []
    for name in ("Front_Center.wav", "Rear_Left.wav"):
        if (ALSA / name).exists():
            x, sr = _soundfile().read(ALSA / name, dtype="float64", always_2d=True)
            phrases.append(resample(x.mean(axis=1), sr, RATE).astype(np.float64))
    if not phrases:  # harmonic "vowels" with a wandering pitch, in syllables
        t = np.arange(int(1.3 * RATE)) / RATE
        f0 = 120 + 30 * np.sin(2 * np.pi * 1.3 * t)
        ph = 2 * np.pi * np.cumsum(f0) / RATE
        v = np.zeros(t.size)
        for k in range(1, 25):
            v += np.sin(k * ph) / k
        v *= np.sin(2 * np.pi * 4 * t) > -0.3
        phrases = [v, v[::-1]]
    parts = []
    pause = np.zeros(int(seconds_pause * RATE))
    for p in phrases:
        parts += [pause, 0.08 * p / np.sqrt(np.mean(p * p))]
    parts.append(pause)
    x = np.concatenate(parts)
    x += 0.0007 * rng.standard_normal(x.size)
    return np.round(np.clip(x, -1, 0.99) * 32768).astype(np.int16)


def _soundfile():  # type: ignore[no-untyped-def]
    import soundfile

    return soundfile
