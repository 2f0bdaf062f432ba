"""The live analysis chain of one line: caller ID, DTMF, call-progress tones, level.

One object per line, fed with every captured chunk (the daemon's 100 ms buffers) on the
listener thread, and by `callrec dsp` and the benchmarks from a file: the same code live and
offline. Live, the daemon says which detectors the call's state needs (`listen_for`): each
signal can only appear at certain moments of a call, and a detector that is not running
costs nothing, which keeps an hour of recording within a couple of CPU-seconds on a Pi.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy.typing as npt

from callrec.dsp.callerid import CallerIdDecoder
from callrec.dsp.callerid_types import CallerIdMessage
from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.dtmf_cid import DtmfCallerIdDecoder
from callrec.dsp.level import LevelMeter, LevelReading
from callrec.dsp.tones import ToneDetector, ToneEvent

LineEvent = CallerIdMessage | DtmfEvent | ToneEvent

DETECTORS = frozenset({"callerid", "dtmf", "tones", "level"})

# What can be on the line in each state of the call state machine (callflow.State values):
# caller ID only on-hook (FSK between the rings, DTMF before the first ring); digits while
# dialling and during the prompt (the caller's refusal key); the exchange's tones from
# dialling to the end of the call (ringback, then busy after a hang-up).
DETECTORS_BY_STATE: dict[str, frozenset[str]] = {
    "idle": frozenset({"callerid", "dtmf"}),
    "ringing": frozenset({"callerid", "dtmf"}),
    "dialling": frozenset({"dtmf", "tones"}),
    "announcing": frozenset({"dtmf", "tones"}),
    "recording": frozenset({"tones"}),
    "not_recorded": frozenset({"tones"}),
}


class LineAnalyzer:
    def __init__(self, country: str = "fr", callerid_standard: str = "auto",
                 detectors: Iterable[str] = DETECTORS) -> None:
        self.country, self.callerid_standard = country, callerid_standard
        self.active: frozenset[str] = frozenset()
        self.last_level: LevelReading | None = None
        self._announced_tone: ToneEvent | None = None
        self.listen_for(detectors)

    def listen_for(self, detectors: Iterable[str]) -> None:
        """Run only these detectors from now on; one switched back on starts afresh."""
        wanted = frozenset(detectors)
        unknown = wanted - DETECTORS
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(sorted(unknown))}")
        for name in wanted - self.active:
            if name == "callerid":
                self.callerid = CallerIdDecoder(standard=self.callerid_standard)
            elif name == "dtmf":
                self.dtmf = DtmfDetector()
                # DTMF caller ID reads the same key events: one DTMF detector, not two.
                self.dtmf_callerid = DtmfCallerIdDecoder(detector=self.dtmf)
            elif name == "tones":
                self.tones = ToneDetector(self.country)
                self._announced_tone = None
            else:
                self.level = LevelMeter()
        self.active = wanted

    def feed(self, samples: npt.ArrayLike) -> list[LineEvent]:
        """Analyse one chunk; returns caller-ID messages, finished digits and tones.

        A tone is reported as soon as its cadence is recognised (not only when it stops): a
        busy tone after the far end hung up lasts until the office hangs up too.
        """
        events: list[LineEvent] = []
        if "callerid" in self.active:
            events += self.callerid.feed(samples)
        if "dtmf" in self.active:
            keys = self.dtmf.feed(samples)
            events += keys
            events += self.dtmf_callerid.feed_events(keys, self.dtmf.settled_s)
        if "tones" in self.active:
            events += [t for t in self.tones.feed(samples) if not self._same_tone(t)]
            current = self.tones.current
            if current is not None and not self._same_tone(current):
                events.append(current)
                self._announced_tone = current
        if "level" in self.active:
            readings = self.level.feed(samples)
            if readings:
                self.last_level = readings[-1]
        return events

    def _same_tone(self, tone: ToneEvent) -> bool:
        seen = self._announced_tone
        return seen is not None and seen.tone == tone.tone and seen.start_s == tone.start_s

    def flush(self) -> list[LineEvent]:
        events: list[LineEvent] = []
        if "callerid" in self.active:
            events += self.callerid.flush()
        if "dtmf" in self.active:
            keys = self.dtmf.flush()
            events += keys
            events += self.dtmf_callerid.feed_events(keys, self.dtmf.settled_s)
            events += self.dtmf_callerid.flush()
        if "tones" in self.active:
            events += [t for t in self.tones.flush() if not self._same_tone(t)]
        if "level" in self.active:
            self.level.flush()
        return events
