"""Streaming 1200 bit/s FSK receiver for on-hook caller ID: ITU-T V.23 (ETSI) and Bell 202.

Physical layer (what the demodulator must accept; figures as we read the standards, to be
re-checked against the texts before a certification run):
- ETSI EN 300 659-1 §6 / ITU-T V.23 channel 1: mark (binary 1) 1300 Hz, space (binary 0)
  2100 Hz, each ±16 Hz (±1.2 % / ±0.8 %), 1200 bit/s ±1 %; the terminal-equipment side
  (ETSI ES 200 778-1, formerly ETS 300 778-1) receives down to roughly -40 dBV, with twist.
- Telcordia GR-30-CORE (Bell 202): mark 1200 ±12 Hz, space 2200 ±22 Hz (±1 %), 1200 bit/s
  ±1 %, sent at -13.5 dBm; the CPE receives down to roughly -32 dBm, with twist.
- Both: asynchronous characters, 1 start bit (space), 8 data bits LSB first, 1 stop bit (mark),
  with 0-10 marking bits allowed between characters; the burst starts with a channel seizure
  (alternating 0101..., ~300 bits) and a mark period (~180 bits; ~80 on call waiting).
We test to twice those tolerances (±3 % tones, ±2 % bit rate), ±10 dB twist, 15 dB S/N and
-47 dBm0; the receiver floor is -48 dBm0 so that a quiet line costs nothing.

Design (in the spirit of spandsp's fsk.c, written anew with numpy):
- Non-coherent quadrature correlators: the signal is mixed with complex local oscillators at the
  mark and space frequencies and summed over a sliding window of `rate / |space - mark|`
  samples (10 for V.23, 8 for Bell 202). That length puts the other tone on the first null of
  the window's response, so a strong tone does not leak into the other detector. The soft
  decision is d = (Pm - Ps) / (Pm + Ps).
- Carrier detect per 5 ms sub-block: power above `min_level_dbm0` and most of that power in
  the two correlators (a tone, not noise or speech); up after 10 ms, down after 15 ms.
- Async UART with per-character resynchronisation on the start-bit edge (sub-sample edge by
  linear interpolation), each bit read as the mean soft decision around its centre: this
  tolerates bit-rate error without a clock loop, and any marking between characters.
- The channel seizure (read by the UART as 0x55 characters) is used to measure the real bit
  length and the skew that twist gives mark-to-space edges; both then correct the bit centres.
- Everything is vectorised per block; Python loops run per 5 ms sub-block and per character.
  Every output is bit-identical whatever the chunking of the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .signal import RATE, dbm0_to_peak

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]


@dataclass(frozen=True)
class FskSpec:
    """An FSK modulation: tone frequencies (Hz) and bit rate."""

    name: str
    mark_hz: float
    space_hz: float
    baud: float = 1200.0


V23 = FskSpec("etsi-v23", 1300.0, 2100.0)  # ITU-T V.23 ch. 1, ETSI EN 300 659-1
BELL202 = FskSpec("bell202", 1200.0, 2200.0)  # Telcordia GR-30-CORE
SPECS: dict[str, FskSpec] = {V23.name: V23, BELL202.name: BELL202}


@dataclass(frozen=True)
class FskByte:
    """One received asynchronous character."""

    value: int
    start_s: float  # leading edge of the start bit
    end_s: float  # end of the stop bit
    idle_bits: float  # marking bits since the previous character (or since carrier up)
    mark_quality: float  # mean soft decision over those marking bits (<= 40): 1.0 = clean mark
    framing_ok: bool  # stop bit was a mark


@dataclass(frozen=True)
class CarrierUp:
    """An FSK carrier appeared."""

    time_s: float


@dataclass(frozen=True)
class CarrierDown:
    """The FSK carrier went away."""

    time_s: float


FskEvent = FskByte | CarrierUp | CarrierDown

SUB = 40  # samples per carrier-detect decision: 5 ms at 8 kHz
MAX_PIECE = 4000  # samples processed per vectorised pass (bounds temporary memory)
_UP_SUBS = 2  # consecutive good sub-blocks to raise the carrier (10 ms)
_DOWN_SUBS = 3  # consecutive bad sub-blocks to drop it (15 ms)
_TONE_FRACTION = 0.7  # share of the power that must sit in the two correlators
_KEEP_S = 3.0  # history kept for the UART and tone measurement (longest message ~2.2 s)
_ROT_LAG = 4  # samples between phasors when measuring a tone's frequency


class FskDemodulator:
    """Streaming FSK demodulator and UART: `feed(samples)` -> list of FskEvent, then `flush()`.

    The decoder may skip quiet audio through `advance_silent(n)` while `idle` is true: that is
    what keeps an idle line cheap.
    """

    def __init__(
        self, spec: FskSpec = V23, rate: int = RATE, min_level_dbm0: float = -48.0
    ) -> None:
        self.spec = spec
        self.rate = rate
        self._spb = rate / spec.baud
        self._win = max(4, round(rate / abs(spec.space_hz - spec.mark_hz)))
        # A window-sum output reflects samples [i - win + 1, i]: its centre lags by this much.
        self._delay = (self._win - 1) / 2
        self._min_power = dbm0_to_peak(min_level_dbm0) ** 2 / 2  # mean square of that sine
        self._period = _lo_period(rate, (spec.mark_hz, spec.space_hz))
        # Local oscillators, one whole period plus a piece, so that a piece is a plain slice.
        t = np.arange(self._period + MAX_PIECE)
        freqs = np.array([[spec.mark_hz], [spec.space_hz]])
        self._lo: ComplexArray = np.exp(-2j * np.pi * freqs * (t % self._period) / rate)
        self._n = 0  # absolute index of the next sample to process
        self._pending = np.zeros(0, dtype=np.float64)  # input not yet a whole sub-block
        self._hist_prod: ComplexArray = np.zeros((2, self._win - 1), dtype=np.complex128)
        self._hist_sq: FloatArray = np.zeros(self._win - 1)
        cap = int(_KEEP_S * rate) + 2 * MAX_PIECE
        self._cap = cap
        self._keep = int(_KEEP_S * rate)
        # The traces are kept in single precision: 3 s of them per demodulator is 0.8 MB
        # instead of 1.5, and their uses (bit decisions, tone angles) need nowhere near
        # double precision.
        self._d = np.zeros(cap, dtype=np.float32)
        self._zm = np.zeros(cap, dtype=np.complex64)
        self._zs = np.zeros(cap, dtype=np.complex64)
        self._purity = np.zeros(cap, dtype=np.float32)  # mark power / all power, per sample
        self._base = 0  # absolute index of trace element 0
        self._len = 0
        # Carrier detect and UART state.
        self._on = False
        self._good = 0
        self._bad = 0
        self._seg_start = 0
        self._scan = 0
        self._last_end = 0.0
        self._skew = 0.0  # samples to add to a start edge, correcting for twist (_learn_skew)
        self._runs = [0.0, 0, 0.0, 0]  # seizure: total and count of mark runs, of space runs
        self._bit = self._spb  # bit length in samples, as measured on the seizure
        self._offsets = _bit_centres(self._bit)  # bit centres

    # ----------------------------------------------------------------- public API
    @property
    def idle(self) -> bool:
        """No carrier and nothing building up: quiet audio may be skipped."""
        return not self._on and self._good == 0

    @property
    def position(self) -> int:
        """Number of samples consumed so far (processed or skipped)."""
        return self._n + len(self._pending)

    def feed(self, samples: npt.ArrayLike) -> list[FskEvent]:
        """Demodulate a chunk of samples of any size."""
        x = np.asarray(samples, dtype=np.float64).ravel()
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        whole = len(x) - len(x) % SUB
        self._pending = self._pending[:0]
        events: list[FskEvent] = []
        for a in range(0, whole, MAX_PIECE):
            events += self.process(x[a : min(whole, a + MAX_PIECE)])
        self._pending = x[whole:].copy()
        return events

    def flush(self) -> list[FskEvent]:
        """End of input: pad with silence so that the last character and carrier-down come out."""
        pad = (-len(self._pending)) % SUB + (_DOWN_SUBS + 1) * SUB
        return self.feed(np.zeros(pad))

    def advance_silent(self, n: int) -> None:
        """Account for `n` samples of quiet line without demodulating them (only when `idle`)."""
        assert self.idle and not self._pending.size and n % SUB == 0
        self._n += n
        self._reset_filters()
        self._base = self._n
        self._len = 0
        self._bad = 0

    def process(self, x: npt.ArrayLike) -> list[FskEvent]:
        """Demodulate whole sub-blocks (len(x) a multiple of SUB, at most MAX_PIECE)."""
        xs = np.asarray(x, dtype=np.float64)
        nb = len(xs)
        assert nb % SUB == 0 and nb <= MAX_PIECE and not self._pending.size
        if nb == 0:
            return []
        win = self._win
        off = self._n % self._period
        prod = self._lo[:, off : off + nb] * xs  # (2, nb): mixed to baseband at mark and space
        # Sliding sums over `win` samples. Summing each window afresh, always in the same order
        # (rather than differencing a running sum), makes every output bit-identical whatever
        # the chunking.
        ext = np.concatenate((self._hist_prod, prod), axis=1)
        z = ext[:, :nb].copy()
        for k in range(1, win):
            z += ext[:, k : k + nb]
        self._hist_prod = ext[:, -(win - 1) :]
        sq = xs * xs
        ext_e = np.concatenate((self._hist_sq, sq))
        energy = ext_e[:nb].copy()
        for k in range(1, win):
            energy += ext_e[k : k + nb]
        self._hist_sq = ext_e[-(win - 1) :]
        pw = z.real**2 + z.imag**2
        pm, ps = pw[0], pw[1]
        tot = pm + ps
        d = (pm - ps) / (tot + 1e-30)
        self._append_trace(d, z[0], z[1], pm / (energy * (win / 2) + 1e-30))
        # Carrier detection, per sub-block: level and share of the power in the correlators
        # (a pure tone gives |z|^2 = (A win / 2)^2 and energy = A^2 win / 2).
        power = sq.reshape(-1, SUB).mean(axis=1)
        tone = tot.reshape(-1, SUB).sum(axis=1) / (energy.reshape(-1, SUB).sum(axis=1) * win / 2
                                                   + 1e-30)
        good = (power >= self._min_power) & (tone >= _TONE_FRACTION)
        events: list[FskEvent] = []
        start = self._n
        self._n += nb
        for j, ok in enumerate(good.tolist()):
            s_j = start + j * SUB
            if ok:
                self._good += 1
                self._bad = 0
            else:
                self._bad += 1
                self._good = 0
            if not self._on and self._good >= _UP_SUBS:
                up = s_j - (_UP_SUBS - 1) * SUB
                self._on = True
                self._seg_start = up
                self._scan = up + 1
                self._last_end = float(up)
                self._skew = 0.0
                self._bit = self._spb
                self._offsets = _bit_centres(self._bit)
                self._runs = [0.0, 0, 0.0, 0]
                events.append(CarrierUp(up / self.rate))
            elif self._on and self._bad >= _DOWN_SUBS:
                down = s_j - (_DOWN_SUBS - 1) * SUB
                # Characters may end inside the first bad sub-block (the carrier stops there).
                events += self._uart(down + SUB, final=True)
                self._on = False
                self._scan = s_j + SUB
                events.append(CarrierDown(down / self.rate))
        if self._on:
            events += self._uart(self._n - self._bad * SUB, final=False)
        return events

    def measure_tones(self, start_s: float, end_s: float) -> tuple[float, float]:
        """Mark and space frequencies (Hz) measured over [start_s, end_s]; NaN where unseen.

        The phase of a correlator output turns at the offset between the tone and the local
        oscillator, so the angle of z[n] * conj(z[n - k]) gives that offset.
        """
        a = max(round(start_s * self.rate + self._delay), self._base + _ROT_LAG)
        b = min(round(end_s * self.rate + self._delay), self._base + self._len)
        if b - a < 8:
            return math.nan, math.nan
        lo, hi = a - self._base, b - self._base
        d = self._d[lo - _ROT_LAG : hi]
        out: list[float] = []
        tones = ((self._zm, 1.0, self.spec.mark_hz), (self._zs, -1.0, self.spec.space_hz))
        for z, sign, f0 in tones:
            zz = z[lo - _ROT_LAG : hi]
            strong = sign * d > 0.7
            both = strong[_ROT_LAG:] & strong[:-_ROT_LAG]
            if np.count_nonzero(both) < 8:
                out.append(math.nan)
                continue
            rot = np.sum((zz[_ROT_LAG:] * np.conj(zz[:-_ROT_LAG]))[both])
            out.append(f0 + float(np.angle(rot)) * self.rate / (2 * np.pi * _ROT_LAG))
        return out[0], out[1]

    # ----------------------------------------------------------------- internals
    def _reset_filters(self) -> None:
        self._hist_prod = np.zeros((2, self._win - 1), dtype=np.complex128)
        self._hist_sq = np.zeros(self._win - 1)

    def _append_trace(
        self, d: FloatArray, zm: ComplexArray, zs: ComplexArray, purity: FloatArray
    ) -> None:
        """Append to the traces (stored as float32/complex64), dropping what is too old."""
        nb = len(d)
        if self._len + nb > self._cap:
            drop = self._len - self._keep
            for arr in (self._d, self._zm, self._zs, self._purity):
                arr[: self._keep] = arr[drop : self._len]
            self._base += drop
            self._len = self._keep
        lo, hi = self._len, self._len + nb
        self._d[lo:hi] = d
        self._zm[lo:hi] = zm
        self._zs[lo:hi] = zs
        self._purity[lo:hi] = purity
        self._len = hi

    def _uart(self, limit: int, final: bool) -> list[FskEvent]:
        """Find and read characters whose samples lie before `limit` (absolute index).

        Per character this is a few dozen list look-ups: plain Python beats numpy calls here.
        """
        events: list[FskEvent] = []
        base = self._base
        limit = min(limit, base + self._len)
        lo = max(self._scan, self._seg_start + 1, base + 1) - 1  # absolute index of dl[0]
        if limit - lo < 2:
            return events
        darr = self._d[lo - base : limit - base]
        dl: list[float] = darr.tolist()
        while True:
            spb = self._bit
            a = max(self._scan, self._seg_start + 1, base + 1)
            if limit - a < 1:
                break
            i = _find_fall(dl, darr, a - lo) + lo  # d[i - 1] > 0 >= d[i]
            if i < lo:
                self._scan = limit
                break
            edge = _crossing(dl, i, lo)
            centres = [edge + self._skew + c for c in self._offsets]
            if int(centres[-1]) + 2 >= limit:
                # The character is not all here yet (or was cut off by the end of the carrier).
                self._scan = limit if final else i
                break
            if _bit_value(dl, centres[0], lo) >= -0.1:
                self._scan = i + 1  # a glitch, not a start bit
                continue
            # A noise glitch just before the real start edge would skew the timing: use the
            # last mark-to-space crossing before the start bit's centre.
            for j in range(int(centres[0]), i, -1):
                if dl[j - 1 - lo] > 0 >= dl[j - lo]:
                    edge = _crossing(dl, j, lo)
                    centres = [edge + self._skew + c for c in self._offsets]
                    break
            if int(centres[-1]) + 2 >= limit:
                self._scan = limit if final else i
                break
            v = [_bit_value(dl, c, lo) for c in centres]
            value = sum(1 << k for k in range(8) if v[k + 1] > 0)
            framing_ok = v[9] > 0 and v[0] < 0
            if value == 0x55 and framing_ok:
                self._learn_skew(int(edge) - base, int(centres[-1]) - base)
            idle = max(0.0, (edge - self._last_end) / spb)
            q_lo = max(self._last_end, edge - 40 * spb, float(base))
            q_hi = edge - spb / 2
            if q_hi - q_lo >= 1:
                mark_quality = float(np.mean(self._purity[int(q_lo) - base : int(q_hi) - base]))
            else:
                mark_quality = 0.0
            t0 = (edge - self._delay) / self.rate
            events.append(
                FskByte(value, t0, t0 + 10 * spb / self.rate, idle, mark_quality, framing_ok)
            )
            self._last_end = edge + 10 * spb
            self._scan = int(edge + 9.5 * spb)
        return events

    def _learn_skew(self, lo: int, hi: int) -> None:
        """Learn from a 0x55 character the bit length and how late mark-to-space edges come.

        With twist the soft decision crosses zero early on the louder tone's side (6 dB moves
        a mark-to-space edge by ~1.7 samples, a quarter bit), which would skew every bit
        centre read off the start-bit edge. A 0x55 character (the channel seizure) alternates
        0101010101, so its space runs exceed its mark runs by four times that skew.
        """
        if self._runs[1] + self._runs[3] >= 400:  # a whole seizure is plenty
            return
        d = self._d[lo:hi]
        sign = d > 0
        idx = np.flatnonzero(sign[:-1] != sign[1:]) + 1
        if idx.size < 3:
            return
        a, b = d[idx - 1], d[idx]
        times = idx - 1 + a / (a - b)
        runs = np.diff(times)
        marks = sign[idx[:-1]]  # the run after each crossing is a mark run when d > 0 there
        ok = (runs > 0.4 * self._spb) & (runs < 1.6 * self._spb)
        m, s = runs[ok & marks], runs[ok & ~marks]
        self._runs = [self._runs[0] + float(m.sum()), self._runs[1] + m.size,
                      self._runs[2] + float(s.sum()), self._runs[3] + s.size]
        if self._runs[1] >= 4 and self._runs[3] >= 4:
            mark, space = self._runs[0] / self._runs[1], self._runs[2] / self._runs[3]
            self._skew = min(max((space - mark) / 4, -self._spb / 3), self._spb / 3)
            # The bit rate too: standards allow ±1 %; beyond ±4 % keep the nominal value.
            bit = (space + mark) / 2
            self._bit = bit if abs(bit / self._spb - 1) <= 0.04 else self._spb
            self._offsets = _bit_centres(self._bit)


def _lo_period(rate: int, freqs: tuple[float, ...]) -> int:
    """Length of a table holding a whole number of cycles of every tone."""
    period = 1
    for f in freqs:
        if float(f).is_integer():
            p = rate // math.gcd(rate, int(f))
        else:
            p = rate
        period = period * p // math.gcd(period, p)
    return period


def _bit_centres(bit: float) -> list[float]:
    """Centres of the start bit, 8 data bits and stop bit, in samples from the start edge."""
    return [(k + 0.5) * bit for k in range(10)]


def _find_fall(dl: list[float], darr: npt.NDArray[np.floating[Any]], r0: int) -> int:
    """First r >= r0 with dl[r - 1] > 0 >= dl[r], or -1: a short Python look, then numpy."""
    n = len(dl)
    stop = min(n, r0 + 24)
    for r in range(r0, stop):
        if dl[r - 1] > 0 >= dl[r]:
            return r
    if stop >= n:
        return -1
    seg = darr[stop - 1 : n]
    hits = np.flatnonzero((seg[:-1] > 0) & (seg[1:] <= 0))
    return stop + int(hits[0]) if hits.size else -1


def _crossing(dl: list[float], i: int, lo: int) -> float:
    """Absolute sub-sample position of the fall between d[i - 1] > 0 and d[i] <= 0."""
    a, b = dl[i - 1 - lo], dl[i - lo]
    return (i - 1) + a / (a - b) if a != b else float(i)


def _bit_value(dl: list[float], centre: float, lo: int) -> float:
    """Mean soft decision over the three samples around a bit centre (absolute position)."""
    k = round(centre) - lo
    return (dl[k - 1] + dl[k] + dl[k + 1]) / 3.0
