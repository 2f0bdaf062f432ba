"""Multi-frequency Goertzel over blocks, vectorised.

The Goertzel algorithm is the cheap scalar way to compute a handful of DFT bins of a block:
one second-order recursion per frequency. With numpy the same bins are cheaper as one matrix
product: `blocks (n_blocks × L) @ basis (L × 2K)` evaluates every bin of every block in a
single BLAS call, where a recursion costs one interpreter round trip per sample. `BinBank` is
that product; `goertzel` is the textbook recursion (vectorised over blocks and frequencies,
looping over samples), kept as the reference the tests compare `BinBank` against and for
callers that want the classic algorithm.

A bank holds several *segments*: a set of frequencies evaluated over one sample range of the
block with one window, e.g. two overlapping Hann windows whose phase difference measures a
tone's frequency, plus the unwindowed block for sharp bins. All segments share one product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callrec.dsp.signal import RATE

FloatArray = npt.NDArray[np.float32]
ComplexArray = npt.NDArray[np.complex64]


@dataclass(frozen=True)
class Segment:
    """DFT bins at `freqs` (Hz) over samples [start, start + length) of each block.

    window: "hann" (periodic Hann: sidelobes ≤ −31 dB falling 18 dB/octave, for phase and
    level estimates) or "rect" (no window: the narrowest main lobe, nulls every
    rate/length Hz).
    """

    freqs: tuple[float, ...]
    start: int
    length: int
    window: str = "rect"


def window_weights(kind: str, length: int) -> npt.NDArray[np.float64]:
    """The weights of a window (float64)."""
    if kind == "rect":
        return np.ones(length)
    if kind == "hann":
        # Periodic Hann: coherent gain exactly length/2.
        return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
    raise ValueError(f"unknown window {kind!r}")


class BinBank:
    """DFT bins of fixed-length blocks for each `Segment`, in one matrix product.

    `flat(blocks)` returns complex64 of shape (n_blocks, total bins): the segments' bins one
    after the other, in the order given. The phase reference is sample 0 of the *block* for
    every segment, so for a steady tone at f_true the phase difference between the same bin
    of two segments starting `d` samples apart is 2π·(f_true − f_bin)·d/rate.
    `gain[s]` is segment s's coherent gain (sum of its weights): a sine of peak A exactly on
    a bin gives |X| ≈ A·gain/2.
    """

    def __init__(self, block_len: int, segments: Sequence[Segment], rate: int = RATE) -> None:
        self.block_len = block_len
        self.segments = tuple(segments)
        n = np.arange(block_len)
        columns: list[npt.NDArray[np.float64]] = []
        gains = []
        for seg in self.segments:
            if seg.start < 0 or seg.start + seg.length > block_len:
                raise ValueError(f"segment {seg} outside a {block_len}-sample block")
            w = np.zeros(block_len)
            w[seg.start : seg.start + seg.length] = window_weights(seg.window, seg.length)
            arg = 2 * np.pi * np.outer(n, seg.freqs) / rate
            # cos and −sin interleaved per bin, so that the float32 product viewed as
            # complex64 *is* the bins: real BLAS, no copy.
            pair = np.empty((block_len, 2 * len(seg.freqs)))
            pair[:, 0::2] = w[:, None] * np.cos(arg)
            pair[:, 1::2] = -w[:, None] * np.sin(arg)
            columns.append(pair)
            gains.append(float(w.sum()))
        self.basis: FloatArray = np.concatenate(columns, axis=1).astype(np.float32)
        self.gain = np.asarray(gains)

    def flat(self, blocks: FloatArray) -> ComplexArray:
        """Complex bins of every block, shape (n_blocks, total bins)."""
        x = np.asarray(blocks, dtype=np.float32)  # a float32 product views as complex64
        out: ComplexArray = (x @ self.basis).view(np.complex64)
        return out


def goertzel(
    blocks: npt.ArrayLike, freqs: Sequence[float], rate: int = RATE
) -> npt.NDArray[np.complex128]:
    """Classic Goertzel recursion: the complex DFT value at each of `freqs` for each block.

    blocks: shape (n_blocks, L) (or (L,) for one block). Returns (n_blocks, K) complex with
    the convention of `BinBank` for an unwindowed segment covering the block:
    X = Σ x[n]·e^(−jωn). The recursion s[n] = x[n] + 2cos(ω)·s[n−1] − s[n−2] runs over the
    L samples, vectorised over blocks and frequencies.
    """
    x = np.atleast_2d(np.asarray(blocks, dtype=np.float64))
    w = 2 * np.pi * np.asarray(freqs, dtype=np.float64) / rate
    coeff = 2 * np.cos(w)
    s1 = np.zeros((x.shape[0], len(w)))
    s2 = np.zeros_like(s1)
    for n in range(x.shape[1]):
        s0 = x[:, n : n + 1] + coeff * s1 - s2
        s2, s1 = s1, s0
    # y = s[L−1] − e^(−jω)·s[L−2] equals e^(jω(L−1))·X: rotate back to the block's sample 0.
    y = s1 - np.exp(-1j * w) * s2
    return np.asarray(y * np.exp(-1j * w * (x.shape[1] - 1)), dtype=np.complex128)
