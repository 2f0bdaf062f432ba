"""Listens to the line: runs the DSP chain on captured audio and reports what it heard.

Caller ID between the rings, DTMF digits, call-progress tones: the line's own signalling, as
events for the call state machine. The capture callback only enqueues; the analysis runs on
this thread so a slow chunk never delays capture or recording.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from callrec import events as ev
from callrec.dsp.callerid_types import MSG_CALL_SETUP, MSG_SDMF, STANDARD_DTMF_CID, CallerIdMessage
from callrec.dsp.chain import DETECTORS_BY_STATE, LineAnalyzer, LineEvent
from callrec.dsp.dtmf import DtmfEvent
from callrec.dsp.signal import from_pcm16
from callrec.dsp.tones import ToneEvent

log = logging.getLogger(__name__)

MAX_QUEUED_CHUNKS = 50  # 5 s of audio: beyond that the analysis has fallen hopelessly behind
# Audio is analysed in batches: waking up for every 100 ms chunk costs far more CPU (cold
# caches, thread switches) than the DSP itself. While a key press matters (dialling, the
# prompt's refusal key) batches are short; elsewhere half a second late is still in time.
BATCH_S = {"dialling": 0.2, "announcing": 0.2}
DEFAULT_BATCH_S = 0.5


def to_board_event(item: LineEvent) -> ev.Event | None:
    """The state machine's view of what the analysis found; None for what it ignores."""
    if isinstance(item, CallerIdMessage):
        if not item.checksum_ok or item.message_type not in (MSG_CALL_SETUP, MSG_SDMF, None):
            return None  # a damaged message is never taken as a number
        source = "dtmf" if item.standard == STANDARD_DTMF_CID else "fsk"
        return ev.CallerId(item.number, item.name, absence=item.absence, source=source)
    if isinstance(item, DtmfEvent):
        return ev.Digit(item.digit)
    if isinstance(item, ToneEvent):
        return ev.LineTone(item.tone)
    return None


class LineListener:
    def __init__(self, emit: Callable[[ev.Event], None], country: str = "fr") -> None:
        self._emit = emit
        self.analyzer = LineAnalyzer(country=country, detectors=DETECTORS_BY_STATE["idle"])
        self._state = "idle"
        self._queue: queue.Queue[bytes | None] = queue.Queue(MAX_QUEUED_CHUNKS)
        self._thread = threading.Thread(target=self._run, name="line-listener", daemon=True)
        self.dropped_chunks = 0

    def feed(self, pcm: bytes) -> None:
        """Captured audio (called on PortAudio's thread): enqueue, or drop if far behind."""
        try:
            self._queue.put_nowait(pcm)
        except queue.Full:
            self.dropped_chunks += 1

    def set_call_state(self, state: str) -> None:
        """The call's state (a callflow.State value): decides which detectors run."""
        self._state = state  # read by the listener thread before each chunk

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _next_batch(self) -> list[bytes] | None:
        """Wait for audio, let a batch accumulate, and take it all; None once stopped."""
        first = self._queue.get()
        if first is None:
            return None
        time.sleep(max(0.0, BATCH_S.get(self._state, DEFAULT_BATCH_S) - 0.1))
        batch = [first]
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return batch
            if more is None:
                self._queue.put(None)  # analyse what came before, then stop
                return batch
            batch.append(more)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            wanted = DETECTORS_BY_STATE.get(self._state, DETECTORS_BY_STATE["idle"])
            if wanted != self.analyzer.active:
                self.analyzer.listen_for(wanted)
            try:
                found = self.analyzer.feed(from_pcm16(b"".join(batch)))
            except Exception:  # a DSP bug must not take the recorder down with it
                log.exception("line analysis failed on one chunk")
                continue
            for item in found:
                event = to_board_event(item)
                if event is not None:
                    self._emit(event)
