"""Call-progress tone detection: dial, busy, ringback and congestion tones of a country plan.

Pipeline (all streaming, `feed(samples) -> list[ToneEvent]` then `flush()`):

1. Frequency analysis on 25 ms rectangular windows (200 samples) every 12.5 ms: one real
   matrix product gives the DFT of every window at each plan frequency (a Goertzel bank,
   vectorised). 200 samples put the DFT nulls every 40 Hz, so the 440 and 480 Hz components
   of the US ringback tone do not leak into each other.
2. A signal (a set of frequencies: one tone or a dual tone) is present in a window when
   - each component is at least `MIN_LEVEL_DBM0` (tones must be detected down to about
     -30 dBm0; ITU-T E.180 puts network tones at -10..-25 dBm0 per frequency);
   - the components hold at least `MIN_CONCENTRATION` of the window's energy (speech, music
     and noise spread theirs), their 2nd and 3rd harmonics are `MAX_HARMONICS_DB` below them
     (a network tone generator is a clean sine; an instrument's note is not), and for dual
     tones neither component is more than `MAX_TWIST_DB` below the other;
   - each component's frequency, measured from the phase advance of its DFT between
     consecutive windows (averaged over two hops), is within `FREQ_TOL` of nominal: ±2 %
     is accepted, ±2.75 % is the decision boundary and ±3.5 % is reliably rejected (which
     also keeps the 425 Hz and 440 Hz plans apart).
3. Bursts: runs of windows with the same signal, drop-outs up to 2 windows bridged, bursts
   shorter than 0.1 s ignored. Burst edges are placed where the signal's amplitude crosses
   half its steady value (amplitude is linear in the overlap of window and tone), so
   burst lengths do not depend on the level.
4. Cadence (`cadence.py`): bursts classified per signal into the plan's tones. The gap
   between two bursts must be quiet (every window `GAP_QUIET_DB` below the tone): an
   exchange's tone is switched off, while a melody or a voice that comes back to the tone
   frequency fills the gaps.

Country plans are data (`TONE_PLANS`); sources are cited per plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callrec.dsp.cadence import Cadence, CadenceTracker, ToneEvent
from callrec.dsp.signal import RATE, Samples, dbm0_to_peak

__all__ = ["TONE_PLANS", "ToneDetector", "ToneEvent", "ToneSpec", "tone_plan"]

WINDOW = 200  # samples per analysis window (25 ms): DFT nulls every 40 Hz
HOP = 100  # samples between windows (12.5 ms)
MIN_LEVEL_DBM0 = -36.0  # per frequency; detection is specified down to -30 dBm0
MIN_CONCENTRATION = 0.7  # share of the window energy in the signal's frequencies
MAX_TWIST_DB = 6.0  # dual tones: level difference between the two frequencies
MAX_HARMONICS_DB = -15.0  # 2nd + 3rd harmonics relative to the tone (musical notes: > -12)
FREQ_TOL = 0.0275  # relative frequency error boundary (accept ±2 %, reject ±3.5 %)
BRIDGE_WINDOWS = 2  # drop-outs of up to 25 ms inside a burst are ignored
MIN_BURST_S = 0.1  # shorter bursts are not tones (speech, clicks)
GAP_QUIET_DB = 6.0  # a gap between bursts must be this much below the tone
_LAG = 3  # windows of look-ahead needed to time a burst's start


@dataclass(frozen=True)
class ToneSpec:
    """One tone of a country plan.

    `freqs`: frequencies in Hz (one, or two for a dual tone). `on_s`/`off_s`: cadence, None
    for a continuous tone. `cycles`: bursts needed before the tone is recognised (cadenced),
    `min_s`: duration needed (continuous). `level_dbm0`: typical level per frequency, for
    generators (detection works from -36 dBm0 up, whatever the plan says). `tone`: the name
    reported, when a variant of a tone has its own plan entry (default: the entry's key).
    """

    freqs: tuple[float, ...]
    on_s: float | None = None
    off_s: float | None = None
    cycles: int = 1
    min_s: float = 1.0
    level_dbm0: float = -15.0
    tone: str | None = None

    def cadence(self, key: str) -> Cadence:
        return Cadence(self.tone or key, self.on_s, self.off_s, self.cycles, self.min_s)


# Cycles needed: busy 3 bursts (decided 2.5 s after it starts), congestion 4 (1.75 s),
# ringback 2 (a burst, a gap and a burst: 6.5-8 s). Dial tone: continuous for `min_s`, which
# must exceed the longest acceptable ringback burst on the same frequency (fr: 1.5 s + 15 %).
TONE_PLANS: dict[str, dict[str, ToneSpec]] = {
    # France (ITU-T E.180 Supplement 2, national values; the project's telephony notes):
    # 440 Hz for every tone; levels are typical values, not from a French specification.
    "fr": {
        "dial": ToneSpec((440.0,), min_s=2.0, level_dbm0=-10.0),
        "busy": ToneSpec((440.0,), 0.5, 0.5, cycles=3, level_dbm0=-10.0),
        "ringback": ToneSpec((440.0,), 1.5, 3.5, cycles=2, level_dbm0=-10.0),
        "congestion": ToneSpec((440.0,), 0.25, 0.25, cycles=4, level_dbm0=-10.0),
    },
    # The European harmonised tones (CEPT recommendation, analysed in ETSI TR 101 041-2; the
    # most common national values of ITU-T E.180 Supplement 2): 425 Hz; dial continuous,
    # ringing 1 s on / 4 s off, busy 0.5/0.5, congestion 0.25/0.25. Germany (0.48/0.48 and
    # 0.24/0.24) is within tolerance; countries with 0.2/0.2 congestion (Italy, the GSM tones
    # of 3GPP TS 22.001) or other ringing cadences need their own plan.
    "eu": {
        "dial": ToneSpec((425.0,), min_s=1.5, level_dbm0=-10.0),
        "busy": ToneSpec((425.0,), 0.5, 0.5, cycles=3, level_dbm0=-10.0),
        "ringback": ToneSpec((425.0,), 1.0, 4.0, cycles=2, level_dbm0=-10.0),
        "congestion": ToneSpec((425.0,), 0.25, 0.25, cycles=4, level_dbm0=-10.0),
    },
    # North America, the precise tone plan (ANSI T1.401, Telcordia GR-506): levels per
    # frequency. Reorder (congestion): 0.25/0.25 s from local offices, 0.2/0.3 s from toll.
    "us": {
        "dial": ToneSpec((350.0, 440.0), min_s=1.0, level_dbm0=-13.0),
        "busy": ToneSpec((480.0, 620.0), 0.5, 0.5, cycles=3, level_dbm0=-24.0),
        "ringback": ToneSpec((440.0, 480.0), 2.0, 4.0, cycles=2, level_dbm0=-19.0),
        "congestion": ToneSpec((480.0, 620.0), 0.25, 0.25, cycles=4, level_dbm0=-24.0),
        "congestion-toll": ToneSpec((480.0, 620.0), 0.2, 0.3, cycles=4, level_dbm0=-24.0,
                                    tone="congestion"),
    },
}


def tone_plan(country: str) -> dict[str, ToneSpec]:
    """The tone plan of `country` (case-insensitive); ValueError for an unknown country."""
    plan = TONE_PLANS.get(country.lower())
    if plan is None:
        raise ValueError(f"no call-progress tone plan for country {country!r} "
                         f"(known: {', '.join(sorted(TONE_PLANS))})")
    return plan


_Windows = tuple[int, npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.float32]]


class _Analyser:
    """Per-window presence of each signal (a set of frequencies), fully vectorised."""

    def __init__(self, signals: list[tuple[float, ...]]) -> None:
        freqs = sorted({f for sig in signals for f in sig})
        k, s = len(freqs), len(signals)
        self.k = k
        # DFT bins: the plan frequencies, then their 2nd and 3rd harmonics.
        bins = np.concatenate([np.asarray(freqs) * h for h in (1, 2, 3)])
        n = np.arange(WINDOW)
        w = 2 * np.pi * bins / RATE
        basis = np.empty((WINDOW, 2 * bins.size))
        basis[:, 0::2] = np.cos(np.outer(n, w))
        basis[:, 1::2] = -np.sin(np.outer(n, w))
        self.basis = basis.astype(np.float32)  # R = windows @ basis, viewed as complex DFT
        member = np.zeros((k, s))
        first = np.zeros((k, s))
        last = np.zeros((k, s))
        for j, sig in enumerate(signals):
            for f in sig:
                member[freqs.index(f), j] = 1.0
            first[freqs.index(sig[0]), j] = 1.0
            last[freqs.index(sig[-1]), j] = 1.0
        self.signals = s
        self.member = member.astype(bool)  # frequency -> signals using it
        self.simple = bool((member == np.eye(k, s)).all())  # one frequency per signal
        # (R*R) @ tests gives, per signal and window, with the thresholds folded in:
        #   P = |DFT|^2 of its frequencies * 2/WINDOW / MIN_CONCENTRATION, to compare with the
        #       window's energy (a sine of peak A at f: |DFT|^2 = (A*WINDOW/2)^2, energy
        #       A^2*WINDOW/2, so |DFT|^2 * 2/WINDOW is its share of the energy);
        #   H = the same for their 2nd and 3rd harmonics / MAX_HARMONICS;  P >= H;
        #   A, B = that of the first and of the last frequency / twist;  min(A, B) >= P;
        # and every frequency reaches MIN_LEVEL_DBM0: min(A, B) >= LOW.
        scale = 2.0 / WINDOW / MIN_CONCENTRATION
        harmonics = 10 ** (MAX_HARMONICS_DB / 10)
        twist = 10 ** (-MAX_TWIST_DB / 10)
        zero = np.zeros((2 * k, s))
        cols: list[npt.NDArray[np.float64]] = [
            np.vstack((member, zero)) * scale,
            np.vstack((np.zeros((k, s)), member, member)) * (scale / harmonics)]
        if not self.simple:
            cols += [np.vstack((first, zero)) * (scale / twist),
                     np.vstack((last, zero)) * (scale / twist)]
        self.tests = np.repeat(np.concatenate(cols, axis=1), 2, axis=0).astype(np.float32)
        self.low = np.float32((dbm0_to_peak(MIN_LEVEL_DBM0) * WINDOW / 2) ** 2 * scale
                              / (1 if self.simple else twist))
        # Expected phase advance over one hop, removed before the frequency check.
        w = w[:k]
        self.derot = np.exp(-1j * w * HOP).astype(np.complex64)
        self.cos_tol = np.cos(w * HOP * FREQ_TOL).astype(np.float32)

    def candidates(self, rr: npt.NDArray[np.float32], energy: npt.NDArray[np.float32]
                   ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Signal power per window (scaled), and the level/share/harmonics/twist tests."""
        s = self.signals
        t = rr @ self.tests
        power = t[:, :s]
        ok = power >= np.maximum(t[:, s:2 * s], energy[:, None])
        if self.simple:
            return power, ok & (power >= self.low)
        low = np.minimum(t[:, 2 * s:3 * s], t[:, 3 * s:])
        return power, ok & (low >= np.maximum(power, self.low))

    def frequency_ok(self, r: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Per window (from the third row of `r`) and signal: every component on frequency."""
        z = r.view(np.complex64)[:, :self.k]
        d = z[1:] * z[:-1].conj()
        d = (d[1:] + d[:-1]) * self.derot  # phase advance over a hop, minus the nominal one
        comp_ok = d.real >= self.cos_tol * np.abs(d)
        if self.simple:
            return comp_ok
        return ~(~comp_ok @ self.member)  # no frequency of the signal off


class ToneDetector:
    """Streaming call-progress tone detector for one country plan.

    `feed(samples)` returns the tones that ended in that chunk, `flush()` the ones still in
    progress at the end of the input (then the detector starts afresh). `current` is the tone
    recognised and still in progress (end = latest evidence): the live daemon uses a busy or
    congestion tone there as a hang-up fallback when the line gives no loop-current signal.

    `plan` replaces the country's plan (`country` is then only a label). Input is analysed
    once at least `batch_s` of it has arrived (0: every chunk): numpy's per-call cost
    dominates on 100 ms chunks, and a tone decision takes seconds anyway. Results do not
    depend on the chunk size or on `batch_s`.
    """

    def __init__(self, country: str = "fr", plan: Mapping[str, ToneSpec] | None = None,
                 *, batch_s: float = 0.2) -> None:
        self.country = country
        # Input is analysed in batches of at least `batch_s` (the per-call cost of numpy
        # dominates on 100 ms chunks); tone decisions take seconds, so the delay is harmless.
        self._batch = int(batch_s * RATE)
        self.plan = dict(plan) if plan is not None else tone_plan(country)
        groups: dict[tuple[float, ...], list[Cadence]] = {}
        for name, spec in self.plan.items():
            groups.setdefault(tuple(sorted(spec.freqs)), []).append(spec.cadence(name))
        self._signals = list(groups)
        self._an = _Analyser(self._signals)
        self._trackers = [CadenceTracker(groups[s]) for s in self._signals]
        self._min_run = int(np.ceil(MIN_BURST_S * RATE / HOP))
        longest_gap = max((t.max_gap_s for t in self._trackers), default=0.0)
        self._history = int(np.ceil(longest_gap * RATE / HOP)) + 4 * _LAG + 8
        self._reset()

    def _reset(self) -> None:
        # The tail holds the samples from window `_next_j - 2` on (two past windows feed the
        # frequency check); negative windows start as silence.
        self._tail: Samples = np.zeros(2 * HOP, dtype=np.float32)
        self._pending: list[Samples] = []  # input waiting for a full batch
        self._pending_n = 0
        self._next_j = 0  # first window not yet analysed
        self._samples = 0
        # Recent windows, per analysed batch: (first window index, signal power, signal
        # present, window energy); as far back as the longest gap between two bursts.
        self._recent: list[_Windows] = []
        self._last_off: dict[int, tuple[float, float]] = {}  # signal: (end, tone energy)
        self._proc_j = 0  # first window not yet run through the burst state machine
        self._sig = 0  # signal of the burst in progress (1-based), 0 = none
        self._run_j = 0  # first window of that burst
        self._reported = False  # burst start given to the cadence tracker
        self._gap = 0  # windows missing at the end of the burst in progress
        self._on_t = 0.0  # start of the burst in progress
        self._settled = True  # no burst edge pending: `_sig` holds until the signal changes
        self._now = 0.0  # time up to which the trackers know the signal
        self._deadline = float("inf")  # earliest time a tracker needs a tick

    @property
    def current(self) -> ToneEvent | None:
        """The recognised tone in progress, or None."""
        found = [e for e in (t.progress(self._now) for t in self._trackers) if e is not None]
        return max(found, key=lambda e: e.start_s) if found else None

    def feed(self, samples: npt.ArrayLike) -> list[ToneEvent]:
        """Analyse a chunk of 8 kHz samples; return the tones that ended."""
        chunk = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples += chunk.size
        self._pending_n += chunk.size
        if self._pending_n < self._batch:
            self._pending.append(chunk.copy())  # the caller may reuse its buffer
            return []
        x = np.concatenate((self._tail, *self._pending, chunk))
        self._pending.clear()
        self._pending_n = 0
        m = (x.size - WINDOW) // HOP + 1  # windows in x; the first two are already analysed
        if m <= 2:
            self._tail = x
            return []
        nw = m - 2
        # Overlapping windows as a view, copied once so that the product runs in BLAS.
        win = np.ndarray((m, WINDOW), np.float32, x, 0, (HOP * 4, 4)).copy()
        self._tail = x[nw * HOP:]
        an = self._an
        r = win @ an.basis
        energy = np.einsum("ij,ij->i", win[2:], win[2:])
        power, ok = an.candidates((r * r)[2:], energy)
        first = self._next_j
        self._next_j = nxt = first + nw
        sig = self._sig
        fast = self._settled and self._proc_j == first
        if not (fast and sig == 0 and not ok.any()):  # more than speech, noise or silence
            ok &= an.frequency_ok(r)
            fast = fast and bool(ok[:, sig - 1].all() if sig else not ok.any())
        recent = self._recent
        recent.append((first, power, ok, energy))
        while len(recent) > 1 and recent[1][0] <= nxt - self._history:
            del recent[0]
        if not fast:
            return self._process(nxt - _LAG)
        self._proc_j = nxt  # nothing changed
        self._now = now = (nxt * HOP - HOP + WINDOW / 2) / RATE
        return self._tick() if now >= self._deadline else []

    def flush(self) -> list[ToneEvent]:
        """End of input: report the tones in progress and start afresh."""
        total = self._samples
        pad = WINDOW + (_LAG + BRIDGE_WINDOWS + 4) * HOP + self._batch
        out = self.feed(np.zeros(pad, dtype=np.float32))
        out += self._process(self._next_j)
        end = total / RATE
        for tracker in self._trackers:
            out += tracker.finish(end)
        self._reset()
        out.sort(key=lambda e: e.start_s)
        return [_clamp(e, end) for e in out]

    # -- bursts -------------------------------------------------------------------------

    def _tick(self) -> list[ToneEvent]:
        """Let the trackers see time pass, up to the earliest undecided instant."""
        now = _centre(self._proc_j - 1)
        if self._sig and not self._reported:
            now = min(now, self._on_t)
        elif self._sig and self._gap:  # the burst may have ended at its last window
            now = min(now, _centre(self._proc_j - 1 - self._gap))
        self._now = now
        out: list[ToneEvent] = []
        if now >= self._deadline:
            for tracker in self._trackers:
                out += tracker.tick(now)
            self._deadline = min(t.deadline for t in self._trackers)
        return out

    def _edge(self, sig: int, t: float, on: bool, quiet: bool = True) -> list[ToneEvent]:
        tracker = self._trackers[sig - 1]
        out = tracker.on(t, quiet) if on else tracker.off(t)
        self._deadline = min(t.deadline for t in self._trackers)
        return out

    def _process(self, upto: int) -> list[ToneEvent]:
        """Run the burst state machine over windows `_proc_j` .. `upto - 1`."""
        if upto <= self._proc_j:
            return self._tick()
        # Only the recent chunks reaching back to the windows that edge timing may need.
        recent = self._recent
        i = len(recent) - 1
        while i > 0 and recent[i][0] > self._proc_j - 2 * _LAG - BRIDGE_WINDOWS - 2:
            i -= 1
        recent = recent[i:]
        j0 = recent[0][0]
        power = np.concatenate([w[1] for w in recent])
        ok = np.concatenate([w[2] for w in recent])
        amp = np.sqrt(power)
        nwin = amp.shape[0]
        codes = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, 0)
        code_list: list[int] = codes.tolist()
        out: list[ToneEvent] = []
        for j in range(max(self._proc_j, j0), upto):
            code = code_list[j - j0] if j - j0 < nwin else 0
            if code == self._sig and (code == 0 or (self._reported and self._gap == 0)):
                continue  # nothing changes
            if self._sig == 0:
                if code:
                    self._start(code, j, amp, j0)
                continue
            if code == self._sig:
                self._gap = 0
            else:
                self._gap += 1
            if self._gap > BRIDGE_WINDOWS or (code and code != self._sig):
                last = j - self._gap  # last window of the burst
                if self._reported:
                    t_off, steady = _falling_edge(amp[:, self._sig - 1], last - j0, j0)
                    t_off = max(t_off, self._on_t)
                    # Energy of the tone in a window (`power` is scaled, see `_Analyser`).
                    self._last_off[self._sig] = (t_off, steady * steady * MIN_CONCENTRATION)
                    out += self._edge(self._sig, t_off, on=False)
                self._sig = self._gap = 0
                if code:  # another signal starts right away
                    self._start(code, j, amp, j0)
                continue
            if not self._reported and j - self._run_j + 1 >= self._min_run:
                self._reported = True
                out += self._edge(self._sig, self._on_t, on=True, quiet=self._quiet_gap())
        self._proc_j = max(self._proc_j, upto)
        self._settled = self._gap == 0 and (self._sig == 0 or self._reported)
        # The look-ahead windows need no processing when nothing changes in them.
        rest = codes[self._proc_j - j0:]
        if (self._settled and rest.size == self._next_j - self._proc_j
                and (rest == self._sig).all()):
            self._proc_j = self._next_j
        return out + self._tick()

    def _quiet_gap(self) -> bool:
        """Were the windows between the previous burst of this signal and this one quiet?"""
        prev = self._last_off.get(self._sig)
        if prev is None:
            return True
        t_off, tone_energy = prev
        # Windows entirely inside the gap, with a hop of margin for edge timing errors.
        lo = int(np.ceil(t_off * RATE / HOP)) + 1
        hi = int(np.floor((self._on_t * RATE - WINDOW) / HOP)) - 1
        loudest = 0.0
        for first, _, _, energy in self._recent:
            a, b = max(lo, first), min(hi + 1, first + energy.size)
            if a < b:
                loudest = max(loudest, float(energy[a - first:b - first].max()))
        return loudest <= tone_energy * 10 ** (-GAP_QUIET_DB / 10)

    def _start(self, code: int, j: int, amp: npt.NDArray[np.float32], j0: int) -> None:
        self._sig, self._run_j, self._gap, self._reported = code, j, 0, False
        self._on_t = _rising_edge(amp[:, code - 1], j - j0, j0)


def _centre(j: int) -> float:
    """Time of the centre of window `j`."""
    return (j * HOP + WINDOW / 2) / RATE


def _rising_edge(amp: npt.NDArray[np.float32], i: int, j0: int) -> float:
    """Start time of a burst whose first window is index `i` of `amp` (window `j0 + i`).

    The amplitude of a window grows linearly with its overlap with the tone, so it crosses
    half the steady amplitude when the window's centre is on the edge.
    """
    steady = float(amp[i + 1:i + 1 + _LAG].max(initial=0.0))
    half = steady / 2
    # The first window found on frequency may already lie inside the tone (the frequency
    # check needs two earlier windows with tone in them): search up to 4 windows back.
    for k in reversed(range(max(i - 4, 0), min(i + 2, amp.shape[0] - 1))):
        a, b = float(amp[k]), float(amp[k + 1])
        if a < half <= b:
            return _centre(j0 + k) + (half - a) / (b - a) * HOP / RATE
    return _centre(j0 + i)


def _falling_edge(amp: npt.NDArray[np.float32], i: int, j0: int) -> tuple[float, float]:
    """End time and steady amplitude of a burst whose last window is index `i` of `amp`."""
    steady = float(amp[max(i - _LAG, 0):max(i, 1)].max(initial=0.0))
    half = steady / 2
    for k in range(max(i - 1, 0), min(i + 3, amp.shape[0] - 1)):
        a, b = float(amp[k]), float(amp[k + 1])
        if a >= half > b:
            return _centre(j0 + k) + (a - half) / (a - b) * HOP / RATE, steady
    return _centre(j0 + i), steady


def _clamp(event: ToneEvent, end: float) -> ToneEvent:
    if event.end_s <= end and event.start_s >= 0:
        return event
    return ToneEvent(event.tone, max(event.start_s, 0.0), min(event.end_s, end),
                     event.cycles, event.on_s, event.off_s)
