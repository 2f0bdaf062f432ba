"""Streaming DTMF detector meeting ITU-T Q.24 at 8 kHz.

Analysis: 102-sample blocks (12.75 ms, the block of spandsp/Asterisk/multimon-ng), one
starting every 34 samples. One matrix product (`goertzel.BinBank`) evaluates, per block:
  * A, B: the 8 DTMF frequencies under a Hann window over samples [0, 68) and [34, 102).
    For a steady tone the phase of B·A* is 2π·Δf·34/8000: it *measures* the tone's
    frequency error Δf (±2 Hz at 15 dB S/N). That is what makes Q.24's tolerance reachable:
    ±1.5 % (accept) and ±3.5 % (reject) are 10.5 and 24.4 Hz at 697 Hz, deep inside the
    ~80 Hz main lobe of any 102-sample bin, so comparing bin magnitudes cannot tell them
    apart (the reference C detectors accept a row tone at +3.5 %). The 34-sample shift wraps
    at 8000/34 = 235 Hz, the first null of the 68-sample Hann window, so no far-off tone
    aliases into the tolerance with any appreciable level. |A| ≈ |B| says the tone is
    steady across the block (a gliding harmonic, or a block only partly covered, fails).
  * R: the 8 frequencies with no window over the whole block. Its nulls are 78 Hz apart,
    about the row spacing, so it picks the best row and column sharply and measures how
    much of each group's power is elsewhere.
  * H: the 3rd harmonic of each row and the 2nd of each column (Hann over the block). They
    sit ≥ 450 Hz from every DTMF tone, where a fundamental cannot leak into them; the 2nd
    harmonics of the rows would lie 58-93 Hz from the columns, unmeasurable in 12.75 ms.
A block is a *hit* for a key when its best row and best column (limits: `DtmfThresholds`):
  - are each ≥ −42 dBm0 (Q.24's range reaches −36 dBm0 per tone: 6 dB margin; −45 fails);
  - have a twist within +9 dB normal / −5 dB reverse (Q.24: accept 8 / 4 dB; 1 dB margin);
  - are both within ±(1.5 % + 7 Hz) of nominal: Q.24's must-accept 1.5 % plus 3.7 times
    the frequency estimate's noise (1.9 Hz r.m.s. at 15 dB S/N, the same for every tone).
    That is 2.5 % at 697 Hz, 1.9 % at 1633 Hz; must-reject 3.5 % is ≥ 6.9 Hz further out;
  - are steady: |A|/|B| within ±2 dB (at 15 dB S/N, 99.9 % of a digit's blocks stay
    within ±1.4 dB; a block whose first or last quarter is silent is further off);
  - dominate their group: the other three bins of R ≤ −6 dB together (a tone 1.5 % off
    leaks −9.5 dB into them; a second tone of similar level in the group fails);
  - carry ≥ 85 % of the block's energy, weighted by the same windows as A and B so that
    the beat of the two tones does not bias it (a digit at 15 dB S/N keeps ≥ 90 %; speech
    and most music spread their power over many harmonics: talk-off);
  - have harmonics H ≥ 15 dB below them. Q.23 keeps a DTMF sender's distortion 20 dB
    down; an instrument holding two notes on a DTMF pair has far stronger harmonics.
Timing, in blocks 4.25 ms apart: a key starts after 5 consecutive hits. Five blocks span
238 samples, so a tone must last ≥ ~24 ms even though blocks ~80 % covered may pass: a 20 ms
tone never makes it (Q.24: reject < 20 ms), while a 40 ms tone always holds 6 whole blocks
(detect ≥ 40 ms, one block to spare for noise). A key ends after 8 consecutive misses
(34 ms): a 10 ms drop-out spoils at most 6 blocks and is bridged, a 40 ms pause spoils at
least 10, so the next press is a new key.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from callrec.dsp.gen_dtmf import COLS, KEYS, ROWS
from callrec.dsp.goertzel import BinBank, Segment, window_weights
from callrec.dsp.signal import RATE, Samples, dbm0_to_peak

BLOCK = 102  # samples per analysis block (12.75 ms at 8 kHz)
HOP = 34  # a block starts every 34 samples (4.25 ms)
SUB_LEN = 68  # Hann sub-windows A = [0, 68) and B = [34, 102)
SUB_SHIFT = BLOCK - SUB_LEN  # 34
HITS_TO_START = 5
MISSES_TO_END = 8
MAX_BLOCKS = 48  # blocks per matrix product (see DtmfDetector._analyse)

TONES = ROWS + COLS
HARMONICS = tuple(3 * f for f in ROWS) + tuple(2 * f for f in COLS)
_KEYS = "".join(KEYS)  # key index = row · 4 + column
Codes = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DtmfEvent:
    """One key press: `digit` is one of 0-9 * # A B C D; times in seconds from the first
    sample fed, within about ±5 ms of the tone's (blocks start every 4.25 ms)."""

    digit: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class DtmfThresholds:
    """Acceptance limits of a hit block; the defaults are argued in the module docstring."""

    min_level_dbm0: float = -42.0
    normal_twist_db: float = 9.0
    reverse_twist_db: float = 5.0
    freq_tolerance: float = 0.015
    freq_margin_hz: float = 7.0
    steadiness_db: float = 2.0
    group_rejection_db: float = 6.0
    min_tone_energy_fraction: float = 0.85
    harmonic_rejection_db: float = 15.0


def _power_ratio(db: float) -> float:
    return float(10 ** (db / 10))


# Per block, `classify` lays out 48 values: the powers of the bank's bins A (8), B (8),
# R (8), H (8), then per tone the phase test's two sides |Im(B·A*)|/tan(limit) (8) and
# max(Re(B·A*), tiny) (8). Gathering the best row and column of each group of 8 (offsets
# 0/4) gives the (n, 12) array "picked":
# A_r A_c B_r B_c R_r R_c H_r H_c I_r I_c Re_r Re_c.
_PICK = np.array([0, 1] * 6)
_PICK_BASE = np.arange(0, 48, 4)
_N_VALUES = 48
# Linear sums done as matrix products (one call each). R powers (8) → power of the row
# group, of the column group, of both; picked (12) → picked and Σ |A|² + |B|² of the pair.
_GROUP_SUM = np.concatenate(
    (np.repeat(np.eye(2, dtype=np.float32), 4, axis=0), np.ones((8, 1), dtype=np.float32)),
    axis=1,
)
_WITH_PAIR_SUM = np.concatenate(
    (np.eye(12, dtype=np.float32), np.array([[1]] * 4 + [[0]] * 8, dtype=np.float32)), axis=1
)
_KEY_WEIGHTS = np.array([4, 1])  # (best row, best column) → key index
_TINY = np.float32(1e-30)  # log(0) guard for digital silence


def _inequalities(
    th: DtmfThresholds, gain_ab: float, gain_h: float, energy_gain: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Every ratio test of a hit block as one matrix inequality F @ W ≤ bound.

    F is the log of the 16 features per block: the 12 picked values (see `_PICK`; r/c =
    best row/column), Σ(|A|² + |B|²) of the pair, the power of the row group and of the
    column group in R, and the block's window-weighted energy. Ratios are
    differences of logs, so each test is one column of W.
    """
    ln = np.log
    rows: list[tuple[dict[int, float], float]] = []
    # Level: |A|·|B| of a steady sine of peak p is (p·gain/2)².
    floor = 2 * ln(dbm0_to_peak(th.min_level_dbm0) * gain_ab / 2)
    for t in (0, 1):
        rows.append(({t: -0.5, 2 + t: -0.5}, -floor))
    # Steady: |A|²/|B|² within ±steadiness.
    for t in (0, 1):
        rows.append(({t: 1, 2 + t: -1}, ln(_power_ratio(th.steadiness_db))))
        rows.append(({t: -1, 2 + t: 1}, ln(_power_ratio(th.steadiness_db))))
    # Group: the group's power ≤ (1 + g)·its best tone's, i.e. the rest ≤ g·best.
    for t in (0, 1):
        rows.append(({13 + t: 1, 4 + t: -1}, ln(1 + _power_ratio(-th.group_rejection_db))))
    # Twist: column/row power ≤ normal twist, row/column ≤ reverse twist.
    rows.append(({1: 0.5, 3: 0.5, 0: -0.5, 2: -0.5}, ln(_power_ratio(th.normal_twist_db))))
    rows.append(({0: 0.5, 2: 0.5, 1: -0.5, 3: -0.5}, ln(_power_ratio(th.reverse_twist_db))))
    # Harmonics: (|H|/gain_h)² ≤ h·(|A||B|)/gain_ab² (amplitudes normalised per window).
    h = ln(_power_ratio(-th.harmonic_rejection_db)) + 2 * ln(gain_h / gain_ab)
    for t in (0, 1):
        rows.append(({6 + t: 1, t: -0.5, 2 + t: -0.5}, h))
    # Frequency: |Im(B·A*)|/tan(limit) ≤ Re(B·A*) (see DtmfDetector.__init__).
    for t in (0, 1):
        rows.append(({8 + t: 1, 10 + t: -1}, 0.0))
    # Energy share: a sine of power P gives |A|² + |B|² = P·gain_ab² and a window-weighted
    # energy P·energy_gain, so P_r + P_c ≥ fraction·P_block reads as below.
    share = th.min_tone_energy_fraction * gain_ab**2 / energy_gain
    rows.append(({15: 1, 12: -1}, -ln(share)))
    w = np.zeros((16, len(rows)), dtype=np.float32)
    for j, (coeffs, _) in enumerate(rows):
        for i, v in coeffs.items():
            w[i, j] = v
    return w, np.array([b for _, b in rows], dtype=np.float32)


class DtmfDetector:
    """Streaming DTMF detector: `feed(samples)` returns the key presses that ended, `flush()`
    at the end of the input returns one still pressed. Samples: float32 mono 8 kHz, full
    scale ±1 (see `dsp/__init__.py`), in chunks of any size."""

    def __init__(self, thresholds: DtmfThresholds | None = None, batch_s: float = 0.2) -> None:
        """batch_s: analyse once this much audio is pending. Each analysis costs ~25 numpy
        calls whatever its length, so 200 ms (two of the daemon's 100 ms chunks) runs ~1.5×
        faster than every chunk; key presses are reported up to `batch_s` later (they are
        reported when they end anyway). 0 analyses every feed."""
        th = thresholds or DtmfThresholds()
        self.thresholds = th
        self._bank = BinBank(
            BLOCK,
            (
                Segment(TONES, 0, SUB_LEN, "hann"),
                Segment(TONES, SUB_SHIFT, SUB_LEN, "hann"),
                Segment(TONES, 0, BLOCK, "rect"),
                Segment(HARMONICS, 0, BLOCK, "hann"),
                Segment((0.0,), 0, SUB_LEN, "hann"),
                Segment((0.0,), SUB_SHIFT, SUB_LEN, "hann"),
            ),
        )
        gain_ab, gain_h = float(self._bank.gain[0]), float(self._bank.gain[3])
        # The block energy is weighted like A + B together (beats of the two tones cancel),
        # less each window's weighted mean: a DC offset from the line interface is not
        # signal (Σw·x² − (Σw·x)²/Σw per window, with Σw·x the windows' 0 Hz bins).
        weights = np.zeros(BLOCK)
        weights[:SUB_LEN] += window_weights("hann", SUB_LEN)
        weights[SUB_SHIFT:] += window_weights("hann", SUB_LEN)
        self._energy_weights = weights.astype(np.float32)
        self._dc_weights = np.full(2, 1 / gain_ab, dtype=np.float32)
        self._ineq, self._bound = _inequalities(th, gain_ab, gain_h, float(weights.sum()))
        p_min = dbm0_to_peak(th.min_level_dbm0) ** 2 / 2
        # Silence shortcut: two tones at the minimum level weigh 2·p_min·Σw; half of that
        # allows for blocks partly covered.
        self._energy_min = p_min * float(weights.sum())
        # Early exit before the full tests (speech, noise): the 8 bins of R hold less than
        # 40 % of the block's power. A digit puts ≥ 55 % there, even at the edge of the
        # frequency tolerance where R scallops by up to 2.4 dB, at 15 dB S/N and 9 dB twist.
        # |R|² of a sine of power P is P·BLOCK²/2.
        self._share_floor = np.float32(0.4 * BLOCK**2 / 2 / float(weights.sum()))
        # Frequency: |Δf| ≤ tol·f + margin ⇔ |arg(B·A*)| ≤ 2π·(tol·f + margin)·SHIFT/RATE,
        # tested without atan2 as |im| ≤ tan(limit)·re (which also requires re > 0, as every
        # limit is < π/2).
        tolerance_hz = th.freq_tolerance * np.asarray(TONES) + th.freq_margin_hz
        limits = 2 * np.pi * tolerance_hz * SUB_SHIFT / RATE
        if limits.max() >= np.pi / 2:
            raise ValueError("freq_tolerance too wide for the 34-sample phase shift")
        self._inv_tan = (1 / np.tan(limits)).astype(np.float32)
        self._offsets = np.zeros((0, len(_PICK)), dtype=np.int64)
        self._batch = max(round(batch_s * RATE), BLOCK)
        self._pending: list[Samples] = []
        self._pending_n = 0
        self._blocks_done = 0  # blocks analysed since the clock origin
        self._origin = 0  # sample index of block 0 (moves on flush)
        self._samples_seen = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._digit = -1  # key index being reported, -1 = none
        self._start = 0  # its first hit block
        self._last = 0  # its last hit block
        self._misses = 0
        self._cand = -1  # candidate key, not yet HITS_TO_START hits in a row
        self._cand_n = 0
        self._cand_start = 0

    # -- analysis ---------------------------------------------------------------------------

    def _flat_offsets(self, n: int) -> npt.NDArray[np.int64]:
        """Where block i's groups start in the raveled (n, 48) values: 48·i + (0, 4, ..., 44)."""
        if len(self._offsets) < n:
            base = _N_VALUES * np.arange(max(n, 64), dtype=np.int64)
            self._offsets = base[:, None] + _PICK_BASE
        return self._offsets[:n]

    def classify(self, blocks: Samples) -> Codes:
        """Key index (row·4 + column) of each block of shape (n, 102) that is a hit, else −1."""
        return self._classify(blocks, blocks * blocks)

    def _classify(self, blocks: Samples, squares: Samples) -> Codes:
        """`classify` given the squared samples of the blocks (from `feed`: squared once per
        chunk rather than once per overlapping block).

        With ~25 blocks per call the cost is the Python round trip of each numpy call, not
        the arithmetic. So the best row and column are gathered as one (n, 12) array, sums
        are matrix products, and all the ratio tests (level, steadiness, group, twist,
        harmonics, frequency, energy share), being linear in log-powers, are one product
        with `_inequalities`."""
        n = len(blocks)
        energy = squares @ self._energy_weights
        if energy.max() < self._energy_min:
            return np.full(n, -1, dtype=np.int64)
        z = self._bank.flat(blocks)  # (n, 34) complex: A, B, R, H, then 0 Hz of A and B
        energy = np.maximum(energy - np.square(np.abs(z[:, 32:])) @ self._dc_weights, 0)
        values = np.empty((n, _N_VALUES), dtype=np.float32)  # layout: see _PICK
        power = np.square(np.abs(z[:, :32]), out=values[:, :32])
        groups = power[:, 16:24] @ _GROUP_SUM  # (n, 3): row group, column group, all of R
        if not (groups[:, 2] >= energy * self._share_floor).any():
            return np.full(n, -1, dtype=np.int64)  # speech, noise: no pair dominates
        best = power[:, 16:24].reshape(n, 2, 4).argmax(axis=2)  # best row, column in R
        cross = z[:, 8:16] * z[:, :8].conj()  # B·A* per tone
        np.multiply(np.abs(cross.imag), self._inv_tan, out=values[:, 32:40])
        np.maximum(cross.real, _TINY, out=values[:, 40:48])
        picked = values.ravel()[best.take(_PICK, axis=1) + self._flat_offsets(n)]
        features = np.concatenate(
            (picked @ _WITH_PAIR_SUM, groups[:, :2], energy[:, None]), axis=1
        )
        ok = (np.log(features + _TINY) @ self._ineq <= self._bound).all(axis=1)
        codes: Codes = best @ _KEY_WEIGHTS
        codes[~ok] = -1
        return codes

    # -- streaming --------------------------------------------------------------------------

    def feed(self, samples: npt.ArrayLike) -> list[DtmfEvent]:
        """Take more samples; return the key presses that ended within the samples analysed
        so far (analysis runs once `batch_s` of audio is pending)."""
        x = np.array(samples, dtype=np.float32).reshape(-1)  # a copy: the caller may reuse
        self._samples_seen += len(x)
        self._pending.append(x)
        self._pending_n += len(x)
        return self._analyse() if self._pending_n >= self._batch else []

    def flush(self) -> list[DtmfEvent]:
        """End of input: analyse what is pending, report a key still pressed. The detector
        then starts afresh (its clock keeps running)."""
        events = self._analyse()
        if self._digit >= 0:
            events.append(self._event())
        self._reset_state()
        self._pending, self._pending_n = [], 0
        self._origin = self._samples_seen
        self._blocks_done = 0
        return events

    def _analyse(self) -> list[DtmfEvent]:
        """Classify every whole block of the pending samples and track keys over them."""
        if self._pending_n < BLOCK:
            return []
        x = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        n = (len(x) - BLOCK) // HOP + 1
        rest = x[n * HOP :]
        self._pending, self._pending_n = [rest], len(rest)
        events: list[DtmfEvent] = []
        squares = x * x
        # Overlapping blocks as strided views, no copy: block i is x[i·HOP : i·HOP + BLOCK].
        # At most MAX_BLOCKS per product: a bigger one makes OpenBLAS start its thread pool,
        # which on a loaded 2-core machine is 100× slower, not faster. Equal shares: the cost
        # of a call hardly depends on its size.
        size = -(-n // -(-n // MAX_BLOCKS))
        for first in range(0, n, size):
            shape = (min(size, n - first), BLOCK)
            strides, offset = (HOP * x.itemsize, x.itemsize), first * HOP * x.itemsize
            blocks = np.ndarray(shape, np.float32, x, offset, strides)
            sq = np.ndarray(shape, np.float32, squares, offset, strides)
            events += self._track(self._classify(blocks, sq))
        return events

    @property
    def settled_s(self) -> float:
        """Stream time before which every key press has been reported: a key reported later
        starts at or after it (it lags the input by up to `batch_s` plus a key's length)."""
        t0 = self._origin / RATE
        if self._digit >= 0:
            return t0 + self._start * HOP / RATE
        if self._cand >= 0:
            return t0 + self._cand_start * HOP / RATE
        return t0 + self._blocks_done * HOP / RATE

    def _event(self) -> DtmfEvent:
        t0 = self._origin / RATE
        return DtmfEvent(
            _KEYS[self._digit],
            t0 + self._start * HOP / RATE,
            t0 + (self._last * HOP + BLOCK) / RATE,
        )

    def _track(self, codes: Codes) -> list[DtmfEvent]:
        """Apply the start (HITS_TO_START) and end (MISSES_TO_END) rules to block codes,
        one run of equal codes at a time (a Python step per block would cost more than the
        whole analysis)."""
        b0 = self._blocks_done
        n = len(codes)
        self._blocks_done += n
        if self._cand < 0:
            if self._digit < 0:
                if codes.max() < 0:
                    return []  # idle and nothing heard: the common case
            elif (codes == self._digit).all():
                self._last, self._misses = b0 + n - 1, 0  # a key held through the chunk
                return []
        events: list[DtmfEvent] = []
        bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), n]
        for i0, i1 in pairwise(bounds):
            code, length = int(codes[i0]), i1 - i0
            if code >= 0 and code == self._digit:
                self._misses, self._last, self._cand = 0, b0 + i1 - 1, -1
                continue
            if code < 0:
                self._cand = -1
            elif code == self._cand:
                self._cand_n += length
            else:
                self._cand, self._cand_n, self._cand_start = code, length, b0 + i0
            confirmed = self._cand >= 0 and self._cand_n >= HITS_TO_START
            if self._digit >= 0:
                self._misses += length
                if self._misses >= MISSES_TO_END or confirmed:
                    events.append(self._event())
                    self._digit = -1
            if confirmed:
                self._digit, self._start, self._last = self._cand, self._cand_start, b0 + i1 - 1
                self._misses, self._cand = 0, -1
        return events
