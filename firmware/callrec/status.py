"""The line's live status: shared with the web UI and written to <runtime_dir>/status.json.

No phone numbers or names here: the status is shown to every role and read by `callrec status`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec import __version__
from callrec.clock import ClockState, clock_state
from callrec.config import Config
from callrec.phrase import N_, Phrase, english, phrase
from callrec.storage.atomic_json import write_atomic

if TYPE_CHECKING:
    from callrec.board.board import Board
    from callrec.callflow import CallFlow

log = logging.getLogger(__name__)

# The web UI shows these names translated (they are PO msgids).
_PART_NAMES = {
    "mcu": N_("HAT microcontroller link"),
    "audio": N_("line audio device"),
    "announcement": N_("announcement"),
    "playback": N_("announcement playback"),
    "storage": N_("storage"),
    "retention": N_("storage space"),
    "volume": N_("recordings volume (USB stick)"),
    "web": N_("web UI (HTTPS certificate)"),
    "sip": N_("SIP line"),
    "privacy": N_("do-not-record list"),
    "clock": N_("clock"),
}

# Right after a boot without network the clock is commonly unsynchronised: a warning line on
# the status page, not a fault. Still so this long after the daemon started, it is a fault
# (the fault LED): something keeps the appliance from its time server.
CLOCK_FAULT_AFTER_S = 600.0
CLOCK_FAULT = N_("not synchronised {minutes} minutes after start: recordings are marked "
                 "\"time unverified\" and retention by age waits; give the appliance access "
                 "to an NTP server (`timedatectl timesync-status` shows what it tried)")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _wall_of(monotonic_at: float | None) -> str | None:
    """A future time.monotonic() value as UTC ISO wall-clock time."""
    if monotonic_at is None:
        return None
    at = datetime.now(UTC) + timedelta(seconds=monotonic_at - time.monotonic())
    return at.isoformat(timespec="seconds")


class StatusBoard:
    """Thread-safe status snapshot; the daemon writes, the web and the CLI read."""

    def __init__(self, config: Config, board: Board, *,
                 clock: Callable[[], ClockState] = clock_state,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config, self._board = config, board
        self._clock_source, self._monotonic = clock, monotonic
        self._started = monotonic()
        self._clock: ClockState | None = None
        self._lock = threading.Lock()
        self._faults: dict[str, str] = {}
        self._fault_phrases: dict[str, Phrase] = {}  # the same, translatable (when known)
        self._snapshot: dict[str, Any] = {}
        self._last_call: dict[str, Any] | None = None
        self._last_recording: str | None = None
        self._finalising = 0  # recordings handed to the recorder thread, not yet indexed
        self._latencies: deque[float] = deque(maxlen=1000)
        self._since_wall = _iso_now()
        self._state = ""
        self._storage: dict[str, Any] | None = None
        self._config_pending = False  # a saved configuration waits for the line to be idle
        # The SIP line's live counters (calls, messages, packets), read at each snapshot.
        self.sip_status: Callable[[], dict[str, Any]] | None = None

    # -- updates from the daemon thread ----------------------------------------------------
    def set_fault(self, part: str, detail: str | Phrase) -> None:
        """Record (detail) or clear ("") a fault; the fault LED mirrors whether any is set.

        A phrase (callrec.phrase) is shown in the web UI's language, its English elsewhere; a
        plain string is shown as it is."""
        text = english(detail) if isinstance(detail, dict) else detail
        with self._lock:
            self._fault_phrases.pop(part, None)
            if text:
                self._faults[part] = text
                if isinstance(detail, dict):
                    self._fault_phrases[part] = detail
            else:
                self._faults.pop(part, None)
            any_fault = bool(self._faults)
        self._board.set_fault_led(any_fault)

    def check_clock(self) -> bool:
        """Read the clock's state (cached in callrec.clock) and raise or clear the "clock"
        fault; True if anything shown changed (the daemon then publishes)."""
        state = self._clock_source()
        overdue = (not state.synchronised
                   and self._monotonic() - self._started >= CLOCK_FAULT_AFTER_S)
        with self._lock:
            previous, self._clock = self._clock, state
            faulted = "clock" in self._faults
        if previous is None or previous.synchronised != state.synchronised:
            if state.synchronised:
                log.info("clock synchronised (%s)", state.source)
            else:
                log.warning("clock not synchronised (%s): recordings made now are marked "
                            "\"time unverified\"; retention by age waits", state.detail)
        if overdue != faulted:
            self.set_fault("clock", phrase(CLOCK_FAULT, minutes=round(CLOCK_FAULT_AFTER_S / 60))
                           if overdue else "")
        return previous != state or overdue != faulted

    @property
    def clock_synchronised(self) -> bool:
        """The clock's state at the last check_clock() (False before the first)."""
        with self._lock:
            return self._clock is not None and self._clock.synchronised

    def set_storage(self, storage: dict[str, Any]) -> None:
        """The latest storage report (volumes, use, days left, retention), for the status page
        and `callrec storage status`; shown from the next publish()."""
        with self._lock:
            self._storage = storage

    def set_config_pending(self, pending: bool) -> None:
        """A configuration change was saved and applies (by a restart) when no call is up."""
        with self._lock:
            self._config_pending = pending

    def record_latency(self, seconds: float) -> None:
        with self._lock:
            self._latencies.append(seconds)

    def call_finished(self, outcome: str, direction: str) -> None:
        with self._lock:
            self._last_call = {"outcome": outcome, "direction": direction, "at": _iso_now()}

    def memory(self) -> dict[str, Any]:
        """What the status remembers of past calls, for the next process of a restart in
        place (daemon.py, handover.py): the last call and the last recording."""
        with self._lock:
            return {"last_call": self._last_call, "last_recording": self._last_recording}

    def remember(self, memory: object) -> None:
        """Take back what `memory()` gave; anything malformed is ignored."""
        if not isinstance(memory, dict):
            return
        last_call, last_recording = memory.get("last_call"), memory.get("last_recording")
        with self._lock:
            if isinstance(last_call, dict) and all(
                    isinstance(last_call.get(k), str) for k in ("outcome", "direction", "at")):
                self._last_call = {k: last_call[k] for k in ("outcome", "direction", "at")}
            if isinstance(last_recording, str):
                self._last_recording = last_recording

    @property
    def finalising(self) -> bool:
        """Whether a recording is being closed now (not the last published snapshot's view)."""
        with self._lock:
            return self._finalising > 0

    def recording_finishing(self) -> None:
        with self._lock:
            self._finalising += 1

    def recording_done(self, meta: dict[str, Any] | None) -> None:
        """A recording was closed and indexed (meta is None if nothing could be kept)."""
        with self._lock:
            self._finalising = max(0, self._finalising - 1)
            if meta is not None:
                self._last_recording = meta["id"]

    def publish(self, flow: CallFlow, running: bool = True) -> None:
        """Rebuild the snapshot after a state change and write status.json for the CLI."""
        with self._lock:
            if flow.state.value != self._state:
                self._state, self._since_wall = flow.state.value, _iso_now()
            call = flow.call
            snap = {
                "version": __version__,
                "running": running,
                "line": self._config.line.name,
                "state": flow.state.value,
                "since": self._since_wall,
                "call": None
                if call is None
                else {
                    "direction": call.direction,
                    "ring_count": call.ring_count,
                    "answered": call.answered_at is not None,
                },
                "not_recorded_reason": flow.not_recorded_reason or None,
                # The privacy button was pressed between calls: the next call starting before
                # this time is kept private (wall clock, for people).
                "next_call_private_until": _wall_of(flow.private_until(time.monotonic())),
                "recording": self._board.recording_led,
                "finalising": self._finalising > 0,
                "faults": [
                    {"part": p, "name": _PART_NAMES.get(p, p), "detail": d,
                     **({"detail_t": self._fault_phrases[p]} if p in self._fault_phrases
                        else {})}
                    for p, d in sorted(self._faults.items())
                ],
                "board": {
                    "backend": self._config.board.backend,
                    "mcu_connected": self._board.mcu.connected,
                    "mcu_version": self._board.mcu.version,
                    "audio_open": self._board.audio.is_open,
                },
                "last_call": self._last_call,
                "last_recording": self._last_recording,
                "announcement_latency_ms": [round(x * 1000, 3) for x in self._latencies],
                "storage": self._storage,
                "clock": self._clock.as_dict() if self._clock is not None else None,
                "config_pending": self._config_pending,
                "sip": self.sip_status() if self.sip_status is not None else None,
                "updated": _iso_now(),
            }
            self._snapshot = snap
        path = Path(self._config.status_path)
        try:
            write_atomic(path, json.dumps(snap, indent=1).encode())
        except OSError:
            pass  # the runtime dir is a convenience for the CLI; the web reads memory

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            snap = dict(self._snapshot)
            snap["board"] = {
                **snap.get("board", {}),
                "mcu_connected": self._board.mcu.connected,
                "audio_open": self._board.audio.is_open,
            }
        if self.sip_status is not None:
            snap["sip"] = self.sip_status()
        return snap
