"""Cadence tracking: classify on/off bursts of one call-progress signal into a named tone.

The frequency detector (`tones.py`) turns the line audio into bursts of "signal present" for
one set of frequencies; a `CadenceTracker` per set of frequencies decides which tone of the
country plan those bursts are, from their on and off lengths:

- a cadenced tone (busy, ringback, congestion) is recognised after `cycles` consecutive bursts
  whose on lengths match `on_s` and whose gaps match `off_s`, each within
  ``CADENCE_REL_TOL * length + CADENCE_ABS_TOL_S``. The usual requirement (ITU-T E.180 §3,
  spandsp, Asterisk's progress detector) is to accept ±10 %; the band is ±15 % + 10 ms so that
  ±10 % is accepted with margin for edge-timing errors and ±25 % is still rejected (250 ms
  congestion: accepted 203–297 ms). Each later burst must match too, or the tone ends;
- a continuous tone (dial tone) is recognised once a burst has lasted `min_s` (never shorter
  than the longest acceptable burst of another tone on the same frequencies, so the first
  burst of a ringback tone is not mistaken for a dial tone).

A tone ends at the end of its last matching burst: when the next gap exceeds the tolerance,
when a burst or gap does not match, or at `finish()`. Pure code, times in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# ±10 % must pass, ±25 % must fail (see the module docstring).
CADENCE_REL_TOL = 0.15
CADENCE_ABS_TOL_S = 0.010


@dataclass(frozen=True)
class Cadence:
    """How one tone is switched on and off.

    `on_s`/`off_s` are None for a continuous tone, which is recognised after `min_s`.
    `cycles` is the number of matching bursts (with the matching gaps between them) needed
    before a cadenced tone is recognised.
    """

    tone: str
    on_s: float | None = None
    off_s: float | None = None
    cycles: int = 1
    min_s: float = 1.0

    @property
    def continuous(self) -> bool:
        return self.on_s is None


@dataclass(frozen=True)
class ToneEvent:
    """A recognised call-progress tone.

    `start_s`/`end_s`: first and last instant of the tone (start of its first burst, end of
    its last one). `cycles`: bursts heard (1 for a continuous tone). `on_s`/`off_s`: mean
    measured burst and gap lengths, None for a continuous tone (and `off_s` None when the
    tone had a single burst).
    """

    tone: str
    start_s: float
    end_s: float
    cycles: int
    on_s: float | None
    off_s: float | None


def _tol(nominal: float) -> float:
    return CADENCE_REL_TOL * nominal + CADENCE_ABS_TOL_S


def _matches(measured: float, nominal: float) -> bool:
    return abs(measured - nominal) <= _tol(nominal)


@dataclass
class _Active:
    cadence: Cadence
    start_s: float
    end_s: float
    cycles: int
    sum_on: float
    sum_off: float
    n_off: int

    def event(self, end_s: float | None = None) -> ToneEvent:
        if self.cadence.continuous:
            return ToneEvent(self.cadence.tone, self.start_s,
                             self.end_s if end_s is None else end_s, 1, None, None)
        return ToneEvent(
            self.cadence.tone, self.start_s, self.end_s if end_s is None else end_s,
            self.cycles, self.sum_on / self.cycles,
            self.sum_off / self.n_off if self.n_off else None,
        )


class CadenceTracker:
    """Classify the bursts of one signal (one set of frequencies) into the tones that use it.

    Drive it with `on(t)` / `off(t)` at burst edges (in time order) and `tick(now)` as time
    passes (needed only once `now` reaches `deadline`); each returns the tones that ended.
    `finish(now)` ends the input. `progress(now)` is the recognised tone in progress, if any.
    """

    def __init__(self, cadences: Sequence[Cadence]) -> None:
        if not cadences:
            raise ValueError("a cadence tracker needs at least one cadence")
        self._cadenced = [c for c in cadences if not c.continuous]
        continuous = [c for c in cadences if c.continuous]
        if len(continuous) > 1:
            raise ValueError("at most one continuous tone per set of frequencies")
        self._continuous = continuous[0] if continuous else None
        self._max_off = max((c.off_s + _tol(c.off_s) for c in self._cadenced
                             if c.off_s is not None), default=0.0)
        self._keep = max((c.cycles for c in self._cadenced), default=1)
        self._bursts: list[tuple[float, float]] = []  # recent unclassified bursts
        self._on_since: float | None = None
        self._active: _Active | None = None

    def progress(self, now: float) -> ToneEvent | None:
        """The recognised tone in progress at `now` (ending at the latest evidence), or None."""
        if self._active is None:
            return None
        if self._on_since is not None:
            return self._active.event(end_s=max(self._active.end_s, now))
        return self._active.event()

    @property
    def max_gap_s(self) -> float:
        """The longest gap between two bursts of a tone that can still match."""
        return self._max_off

    @property
    def deadline(self) -> float:
        """The time from which `tick` may change something (inf: only an edge will)."""
        act, since = self._active, self._on_since
        if act is not None and not act.cadence.continuous:
            on, off = act.cadence.on_s, act.cadence.off_s
            assert on is not None and off is not None
            if since is None:
                return act.end_s + off + _tol(off)
            return since + on + _tol(on)
        cont = self._continuous
        if act is None and cont is not None and since is not None:
            return since + cont.min_s
        return float("inf")

    def on(self, t: float, quiet_gap: bool = True) -> list[ToneEvent]:
        """A burst starts at `t`; `quiet_gap`: the line was quiet since the previous burst.

        A network tone's gaps are silent; a gap with speech or music in it breaks the
        pattern (a melody alternating on and off a tone frequency is not a busy tone).
        """
        out = self.tick(t)
        act = self._active
        if act is not None:  # cadenced (a continuous tone would be in a burst)
            off = act.cadence.off_s
            assert off is not None
            if quiet_gap and _matches(t - act.end_s, off):
                act.sum_off += t - act.end_s
                act.n_off += 1
            else:
                out.append(act.event())
                self._active = None
        if self._bursts and (not quiet_gap or t - self._bursts[-1][1] > self._max_off):
            self._bursts.clear()
        self._on_since = t
        return out

    def off(self, t: float) -> list[ToneEvent]:
        """The burst in progress ends at `t`."""
        out = self.tick(t)
        start = self._on_since
        if start is None:
            return out
        self._on_since = None
        length = t - start
        act = self._active
        if act is not None and act.cadence.continuous:
            act.end_s = t
            out.append(act.event())
            self._active = None
            return out
        if act is not None:
            on = act.cadence.on_s
            assert on is not None
            if _matches(length, on):
                act.cycles += 1
                act.sum_on += length
                act.end_s = t
                return out
            out.append(act.event())
            self._active = None
        cont = self._continuous
        if cont is not None and length >= cont.min_s:  # not ticked while it lasted
            out.append(ToneEvent(cont.tone, start, t, 1, None, None))
            self._bursts.clear()
            return out
        self._bursts.append((start, t))
        del self._bursts[:-self._keep]
        self._classify()
        return out

    def tick(self, now: float) -> list[ToneEvent]:
        """Time has reached `now` with no edge since the last call."""
        act = self._active
        out: list[ToneEvent] = []
        if act is not None and not act.cadence.continuous:
            on, off = act.cadence.on_s, act.cadence.off_s
            assert on is not None and off is not None
            if self._on_since is None:
                if now - act.end_s > off + _tol(off):  # the next burst never came
                    out.append(act.event())
                    self._active = None
            elif now - self._on_since > on + _tol(on):  # burst too long: another tone
                out.append(act.event())
                self._active = None
                self._bursts.clear()
        cont = self._continuous
        if (self._active is None and cont is not None and self._on_since is not None
                and now - self._on_since >= cont.min_s):
            self._active = _Active(cont, self._on_since, now, 1, 0.0, 0.0, 0)
            self._bursts.clear()
        return out

    def finish(self, now: float) -> list[ToneEvent]:
        """End of input at `now`: report the tone in progress, if recognised."""
        out = self.tick(now)
        if self._on_since is not None:
            out += self.off(now)
        if self._active is not None:
            out.append(self._active.event())
        self._active = None
        self._bursts.clear()
        self._on_since = None
        return out

    def _classify(self) -> None:
        """Recognise a cadenced tone from the recent bursts (the last one just ended)."""
        bursts = self._bursts
        for cad in self._cadenced:
            on, off = cad.on_s, cad.off_s
            assert on is not None and off is not None
            n = len(bursts)
            if n < cad.cycles:
                continue
            recent = bursts[n - cad.cycles:]
            if not all(_matches(e - s, on) for s, e in recent):
                continue
            gaps = [recent[i + 1][0] - recent[i][1] for i in range(len(recent) - 1)]
            if not all(_matches(g, off) for g in gaps):
                continue
            self._active = _Active(
                cad, recent[0][0], recent[-1][1], cad.cycles,
                sum(e - s for s, e in recent), sum(gaps), len(gaps),
            )
            bursts.clear()
            return
