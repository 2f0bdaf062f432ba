"""Rational sample-rate conversion: a Kaiser-windowed sinc in polyphase form (numpy only).

Converting from `rate_in` to `rate_out` is an upsampling by L and a downsampling by M
(L/M = rate_out/rate_in in lowest terms) around one low-pass filter; the polyphase form
computes only the output samples, each from `taps` input samples weighted by one of L
sub-filters (phases). The filter is specified against the lower of the two Nyquist
frequencies f_n (4 kHz when the output is 8 kHz):

- passband flat to 0.85 f_n (3.4 kHz: the telephone band), ripple well under 0.01 dB;
- stopband from f_n, attenuation >= `ATTENUATION_DB` (Kaiser's formulas for beta and the
  length), so nothing above 4 kHz folds back into the 8 kHz output.

Output sample k is the input at time k / rate_out: ceil(n * L / M) samples for n in
(every output instant within the input's duration), so 10 s of 44.1 kHz give exactly 80000.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

ATTENUATION_DB = 70.0  # stopband target (>= 60 dB required above 4 kHz)
PASSBAND = 0.85  # passband edge as a fraction of the lower Nyquist frequency
_BLOCK = 1 << 11  # output rows per phase per block (the input block stays in cache)


def output_length(n: int, rate_in: int, rate_out: int) -> int:
    """Samples produced from `n` input samples: the output instants before the input ends."""
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    return -(-n * up // down)


@lru_cache(maxsize=16)
def _design(up: int, down: int) -> tuple[npt.NDArray[np.float32], int]:
    """The polyphase table (up phases x taps, each phase summing to 1) and its first tap.

    Row p weights the input samples floor(t) - half + 1 .. floor(t) + half around an output
    instant t whose fractional part is p / up (t in input samples).
    """
    nyq = 0.5 * min(1.0, up / down)  # lower Nyquist frequency, in cycles per input sample
    width = (1 - PASSBAND) * nyq  # transition band, same unit
    cutoff = nyq - width / 2
    a = ATTENUATION_DB
    beta = 0.1102 * (a - 8.7)  # Kaiser (1974)
    taps = math.ceil((a - 7.95) / (2.285 * 2 * math.pi * width)) + 1
    taps += taps % 2  # even: half the taps each side of the output instant
    half = taps // 2
    frac = np.arange(up)[:, None] / up
    tau = frac + (half - 1) - np.arange(taps)[None, :]  # output instant - input instant
    window = np.i0(beta * np.sqrt(np.clip(1 - (tau / half) ** 2, 0, None))) / np.i0(beta)
    kernel = 2 * cutoff * np.sinc(2 * cutoff * tau) * window
    kernel /= kernel.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
    return kernel.astype(np.float32), half - 1


def resample(x: npt.ArrayLike, rate_in: int, rate_out: int) -> npt.NDArray[np.float32]:
    """Resample a mono signal from `rate_in` to `rate_out` Hz (integers); float32 out."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive (got {rate_in} -> {rate_out})")
    data = np.asarray(x, dtype=np.float32).reshape(-1)
    if rate_in == rate_out:
        return data.copy()
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    n_out = output_length(data.size, rate_in, rate_out)
    out = np.zeros(n_out, dtype=np.float32)
    if n_out == 0:
        return out
    table, back = _design(up, down)
    taps = table.shape[1]
    pad = taps + down
    xp = np.concatenate((np.zeros(pad, np.float32), data, np.zeros(pad + taps, np.float32)))
    # Outputs k0, k0 + up, k0 + 2 up, ... use the same phase and start `down` samples apart.
    phases = [(k0, (k0 * down) % up, (k0 * down) // up - back + pad)
              for k0 in range(min(up, n_out))]
    rows_per_phase = -(-n_out // up)
    if down >= taps:
        # Rows `down` apart do not overlap: per phase, a strided view of the input is a matrix
        # and the phase's outputs one BLAS matrix-vector product. Blocks of time outer, phases
        # inner, so that a block of input stays in cache while every phase reads it.
        for b in range(0, rows_per_phase, _BLOCK):
            for k0, phase, first in phases:
                rows = min(_BLOCK, -(-(n_out - k0) // up) - b)
                if rows <= 0:
                    continue
                view = np.ndarray((rows, taps), np.float32, xp, (first + b * down) * 4,
                                  (down * 4, 4))
                out[k0 + b * up:k0 + (b + rows) * up:up] = view @ table[phase]
        return out
    for k0, phase, first in phases:  # overlapping rows: correlate at the input rate (FFT)
        count = -(-(n_out - k0) // up)
        full = _correlate(xp[first:first + (count - 1) * down + taps], table[phase])
        out[k0::up] = full[::down][:count]
    return out


def _correlate(x: npt.NDArray[np.float32], h: npt.NDArray[np.float32]
               ) -> npt.NDArray[np.float32]:
    """'valid' correlation y[i] = h . x[i:i+len(h)], by FFT overlap-save."""
    taps = h.size
    n = x.size - taps + 1
    size = 1 << max(12, (8 * taps - 1).bit_length())
    hop = size - taps + 1
    spectrum = np.conj(np.fft.rfft(h, size))
    nblocks = -(-n // hop)
    xp = np.concatenate((x, np.zeros((nblocks - 1) * hop + size - x.size, np.float32)))
    y = np.empty(nblocks * hop, np.float32)
    group = max(1, (1 << 22) // size)  # blocks transformed at once (bounded memory)
    for g0 in range(0, nblocks, group):
        g1 = min(nblocks, g0 + group)
        blocks = np.ndarray((g1 - g0, size), np.float32, xp, g0 * hop * 4, (hop * 4, 4))
        prod = np.fft.irfft(np.fft.rfft(blocks, axis=1) * spectrum, size, axis=1)
        y[g0 * hop:g1 * hop] = prod[:, :hop].reshape(-1)
    return y[:n]
