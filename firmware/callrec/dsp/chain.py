"""The live analysis chain of one line: caller ID, DTMF, call-progress tones, level.

One object per line, fed with every captured chunk (the daemon's 100 ms buffers) on the
listener thread, and by `callrec dsp` from a file: the same code live and offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy.typing as npt

from callrec.dsp.callerid import CallerIdDecoder
from callrec.dsp.callerid_types import CallerIdMessage
from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.dtmf_cid import DtmfCallerIdDecoder
from callrec.dsp.level import LevelMeter, LevelReading
from callrec.dsp.tones import ToneDetector, ToneEvent

LineEvent = CallerIdMessage | DtmfEvent | ToneEvent


@dataclass
class LineAnalyzer:
    country: str = "fr"
    callerid_standard: str = "auto"
    callerid: CallerIdDecoder = field(init=False)
    dtmf: DtmfDetector = field(init=False)
    dtmf_callerid: DtmfCallerIdDecoder = field(init=False)
    tones: ToneDetector = field(init=False)
    level: LevelMeter = field(init=False)
    last_level: LevelReading | None = None
    _announced_tone: ToneEvent | None = None

    def __post_init__(self) -> None:
        self.callerid = CallerIdDecoder(standard=self.callerid_standard)
        self.dtmf = DtmfDetector()
        # DTMF caller ID reads the same key events: one DTMF detector per line, not two.
        self.dtmf_callerid = DtmfCallerIdDecoder(detector=self.dtmf)
        self.tones = ToneDetector(self.country)
        self.level = LevelMeter()

    def feed(self, samples: npt.ArrayLike) -> list[LineEvent]:
        """Analyse one chunk; returns caller-ID messages, finished digits and tones.

        A tone is reported as soon as its cadence is recognised (not only when it stops): a
        busy tone after the far end hung up lasts until the office hangs up too.
        """
        keys = self.dtmf.feed(samples)
        events: list[LineEvent] = [*self.callerid.feed(samples), *keys]
        events += self.dtmf_callerid.feed_events(keys, self.dtmf.settled_s)
        for tone in self.tones.feed(samples):
            if not self._same_tone(tone):
                events.append(tone)
        current = self.tones.current
        if current is not None and not self._same_tone(current):
            events.append(current)
            self._announced_tone = current
        readings = self.level.feed(samples)
        if readings:
            self.last_level = readings[-1]
        return events

    def _same_tone(self, tone: ToneEvent) -> bool:
        seen = self._announced_tone
        return seen is not None and seen.tone == tone.tone and seen.start_s == tone.start_s

    def flush(self) -> list[LineEvent]:
        keys = self.dtmf.flush()
        events: list[LineEvent] = [*self.callerid.flush(), *keys]
        events += self.dtmf_callerid.feed_events(keys, self.dtmf.settled_s)
        events += self.dtmf_callerid.flush()
        events += [t for t in self.tones.flush() if not self._same_tone(t)]
        self.level.flush()
        return events
