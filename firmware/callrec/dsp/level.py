"""Streaming level meter: RMS in dBm0, peak in dBFS, and a speech/silence flag with hangover.

Blocks of `block_s` (20 ms) are measured; every `period_s` (1 s) of input `feed` returns a
`LevelReading` (RMS and peak over the period). A block is "active" when its level reaches
`speech_dbm0`; `speech` stays true for `hangover_s` after the last active block, so the
pauses between words do not cut a talk spurt (the usual VAD hangover, as in ITU-T G.729
Annex B or ETSI GSM 06.32, which hold for a few frames; here a time, 300 ms by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callrec.dsp.signal import RATE, Samples, rms_to_dbm0


@dataclass(frozen=True)
class LevelReading:
    """Level over [start_s, end_s): RMS in dBm0 (-inf for digital silence), peak in dBFS."""

    start_s: float
    end_s: float
    rms_dbm0: float
    peak_dbfs: float


def _dbfs(peak: float) -> float:
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


class LevelMeter:
    """Streaming level meter; `feed(samples)` returns the readings of the periods completed."""

    def __init__(self, period_s: float = 1.0, block_s: float = 0.02,
                 speech_dbm0: float = -40.0, hangover_s: float = 0.3) -> None:
        self.block = max(1, round(block_s * RATE))
        self.period_blocks = max(1, round(period_s * RATE / self.block))
        # A block is active when its energy reaches that of a sine at `speech_dbm0`.
        self._active_energy = np.float32(
            self.block * (10 ** ((speech_dbm0 - rms_to_dbm0(1.0)) / 20)) ** 2)
        self._hangover_blocks = math.ceil(hangover_s * RATE / self.block)
        self._reset()

    def _reset(self) -> None:
        self._buf: Samples = np.zeros(0, dtype=np.float32)
        self._blocks = 0  # complete blocks measured
        self._period_first = 0  # first block of the period in progress
        self._energy = 0.0  # sum of squares in the period in progress
        self._peak = 0.0
        self._last_active = -(10**9)  # index of the last active block
        self._last_energy = 0.0

    @property
    def speech(self) -> bool:
        """Speech (or any signal above the threshold) within the hangover time."""
        return self._blocks - 1 - self._last_active < self._hangover_blocks

    @property
    def rms_dbm0(self) -> float:
        """Level of the last complete block."""
        return rms_to_dbm0(math.sqrt(self._last_energy / self.block))

    @property
    def peak_dbfs(self) -> float:
        """Peak of the period in progress, in dBFS (-inf when it is all silence)."""
        return _dbfs(self._peak)

    def feed(self, samples: npt.ArrayLike) -> list[LevelReading]:
        """Measure a chunk of 8 kHz samples; return the readings of the periods it completed."""
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        x = np.concatenate((self._buf, chunk)) if self._buf.size else chunk
        nb = x.size // self.block
        used = nb * self.block
        self._buf = x[used:].copy()
        if nb == 0:
            return []
        xb = x[:used]
        blocks = xb.reshape(nb, self.block)
        energies = np.einsum("ij,ij->i", blocks, blocks)
        active = energies >= self._active_energy
        back = int(active[::-1].argmax())  # blocks after the last active one
        if active[nb - 1 - back]:
            self._last_active = self._blocks + nb - 1 - back
        self._last_energy = float(energies[-1])
        end_block = self._blocks + nb
        out: list[LevelReading] = []
        if end_block - self._period_first < self.period_blocks:  # no period ends here
            self._energy += float(np.dot(xb, xb))
            peak = float(np.abs(xb).max())
            if peak > self._peak:
                self._peak = peak
            self._blocks = end_block
            return out
        start = 0
        while self._period_first + self.period_blocks <= end_block:
            stop = self._period_first + self.period_blocks - self._blocks  # local block
            out.append(self._close(energies[start:stop], xb[start * self.block:
                                                             stop * self.block]))
            start = stop
        self._energy += float(energies[start:].sum())
        if start < nb:
            self._peak = max(self._peak, float(np.abs(xb[start * self.block:]).max()))
        self._blocks = end_block
        return out

    def _close(self, energies: npt.NDArray[np.float32], xs: Samples) -> LevelReading:
        """Finish the period in progress with these blocks."""
        first = self._period_first
        n = self.period_blocks * self.block
        energy = self._energy + float(energies.sum())
        peak = max(self._peak, float(np.abs(xs).max(initial=0.0)))
        self._period_first, self._energy, self._peak = first + self.period_blocks, 0.0, 0.0
        return LevelReading(first * self.block / RATE, (first * self.block + n) / RATE,
                            rms_to_dbm0(math.sqrt(energy / n)), _dbfs(peak))

    def flush(self) -> list[LevelReading]:
        """End of input: the reading of the partial period (with any partial block)."""
        out: list[LevelReading] = []
        tail = self._buf
        first = self._period_first * self.block
        n = self._blocks * self.block + tail.size - first
        if n:
            energy = self._energy + float(np.dot(tail, tail))
            peak = max(self._peak, float(np.abs(tail).max(initial=0.0)))
            out.append(LevelReading(first / RATE, (first + n) / RATE,
                                    rms_to_dbm0(math.sqrt(energy / n)), _dbfs(peak)))
        self._reset()
        return out
