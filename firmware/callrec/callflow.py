"""The analog line's call state machine: board events in, actions out. No I/O, no clock.

    idle ─Ring─▶ ringing ─Hook(off)─▶ announcing ─done─▶ recording ─Hook(on)/reversal─▶ idle
      └─Hook(off), no ring─▶ dialling ─reversal or delay─▶ announcing

The caller's consent rests on the announcement, so the rule is: no announcement, no recording.
Audio captured during the announcement is held by the recorder and only written once the prompt
has completed; a call that ends during the prompt leaves nothing on disk. The end of a call is
decided by the line (loop current, polarity reversal, battery loss), never by silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callrec import events as ev
from callrec.config import LineConfig

# Below this loop voltage the line has no battery: the exchange or the cable is gone.
LINE_DOWN_VOLTS = 3.0


class State(StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    DIALLING = "dialling"
    ANNOUNCING = "announcing"
    RECORDING = "recording"
    NOT_RECORDED = "not_recorded"  # a call in progress that is deliberately not recorded


@dataclass(frozen=True)
class AnnouncementDone(ev.Event):
    """Feedback from the announcement player."""

    ok: bool
    error: str = ""


# -- actions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    pass


@dataclass(frozen=True)
class StartAnnouncement(Action):
    direction: str  # "in" or "out"


@dataclass(frozen=True)
class StopAnnouncement(Action):
    pass


@dataclass(frozen=True)
class StartCapture(Action):
    """Begin holding line audio in memory (from the start of the announcement)."""

    call: CallInfo


@dataclass(frozen=True)
class CommitCapture(Action):
    """The announcement completed: write the held audio and keep recording to disk."""


@dataclass(frozen=True)
class DiscardCapture(Action):
    reason: str


@dataclass(frozen=True)
class StopRecording(Action):
    reason: str


@dataclass(frozen=True)
class CallFinished(Action):
    """A call left the line; `outcome` is recorded, unanswered, abandoned, not_recorded..."""

    outcome: str
    direction: str


@dataclass
class CallInfo:
    direction: str
    line: str
    ring_count: int = 0
    number: str | None = None
    name: str | None = None
    absence: str | None = None  # caller ID's reason for no number: "P" withheld, "O" unavailable
    digits: str = ""  # dialled by the office (outgoing)
    keys_during_prompt: str = ""  # DTMF pressed while the announcement played
    first_event_at: float = 0.0
    answered_at: float | None = None
    answered_by: str = ""  # "hook" (incoming), "reversal" or "delay" (outgoing)


@dataclass
class CallFlow:
    """Feed events with `handle`; it returns the actions the daemon must carry out."""

    config: LineConfig
    state: State = State.IDLE
    call: CallInfo | None = None
    since: float = 0.0
    not_recorded_reason: str = ""
    _last_ring_at: float = 0.0
    _answer_deadline: float = 0.0
    _pending_cid: tuple[str | None, str | None, str | None, float] | None = None

    def _enter(self, state: State, at: float) -> None:
        self.state, self.since = state, at

    def handle(self, event: ev.Event) -> list[Action]:
        """Advance the machine by one event."""
        if isinstance(event, ev.CallerId):
            return self._caller_id(event)
        if isinstance(event, ev.LoopVoltage) and abs(event.volts) < LINE_DOWN_VOLTS:
            return self._end(event.at, "line_down")
        method = getattr(self, f"_on_{self.state.value}")
        actions: list[Action] = method(event)
        return actions

    # -- per-state handlers ----------------------------------------------------------------
    def _on_idle(self, e: ev.Event) -> list[Action]:
        if isinstance(e, ev.Ring) and e.on:
            self.call = CallInfo("in", self.config.name, ring_count=1, first_event_at=e.at)
            self._last_ring_at = e.at
            if self._pending_cid and e.at - self._pending_cid[3] < self.config.ring_timeout_s:
                self.call.number, self.call.name, self.call.absence = self._pending_cid[:3]
            self._pending_cid = None
            self._enter(State.RINGING, e.at)
        elif isinstance(e, ev.Hook) and e.off_hook:
            self.call = CallInfo("out", self.config.name, first_event_at=e.at)
            self._answer_deadline = e.at + self.config.outgoing_answer_delay_s
            self._enter(State.DIALLING, e.at)
        return []

    def _on_ringing(self, e: ev.Event) -> list[Action]:
        assert self.call is not None
        if isinstance(e, ev.Ring):
            self._last_ring_at = e.at
            if e.on:
                self.call.ring_count += 1
        elif isinstance(e, ev.Hook) and e.off_hook:
            self.call.answered_at, self.call.answered_by = e.at, "hook"
            if not self.config.record_incoming:
                return self._not_recorded(e.at, "incoming calls are not recorded on this line")
            return self._announce(e.at)
        elif isinstance(e, ev.Tick) and e.at - self._last_ring_at > self.config.ring_timeout_s:
            return self._finish(e.at, "unanswered")
        return []

    def _on_dialling(self, e: ev.Event) -> list[Action]:
        assert self.call is not None
        if isinstance(e, ev.Hook) and not e.off_hook:
            return self._finish(e.at, "abandoned")
        if isinstance(e, ev.Digit):
            self.call.digits += e.digit
            self._answer_deadline = e.at + self.config.outgoing_answer_delay_s
        elif isinstance(e, ev.PolarityReversal) or (
            isinstance(e, ev.Tick) and e.at >= self._answer_deadline
        ):
            self.call.answered_at = e.at
            self.call.answered_by = "reversal" if isinstance(e, ev.PolarityReversal) else "delay"
            if not self.config.record_outgoing:
                return self._not_recorded(e.at, "outgoing calls are not recorded on this line")
            return self._announce(e.at)
        return []

    def _on_announcing(self, e: ev.Event) -> list[Action]:
        if isinstance(e, AnnouncementDone):
            if e.ok:
                self._enter(State.RECORDING, e.at)
                return [CommitCapture()]
            return [DiscardCapture("announcement failed"), *self._not_recorded(e.at, e.error)]
        call = self.call
        if isinstance(e, ev.Digit) and call is not None:
            call.keys_during_prompt += e.digit  # the privacy policy acts on these (refusal)
            return []
        if isinstance(e, ev.PolarityReversal) and call is not None and call.answered_by == "delay":
            # The delay guessed the answer too early: this reversal is the exchange's real
            # answer signal, and the prompt so far went into the ringback. Start again so that
            # the called party hears all of it.
            call.answered_at, call.answered_by = e.at, "reversal"
            return [
                StopAnnouncement(),
                DiscardCapture("answered during the announcement"),
                *self._announce(e.at),
            ]
        if self._is_clear_down(e):
            return [
                StopAnnouncement(),
                DiscardCapture("call ended during the announcement"),
                *self._finish(e.at, "ended_during_announcement"),
            ]
        if isinstance(e, ev.BoardFault) and not e.ok and e.part in ("mcu", "audio"):
            # The relay may have opened or the prompt stopped: the caller was not told.
            reason = f"announcement interrupted: {e.part} failed"
            return [StopAnnouncement(), DiscardCapture(reason), *self._not_recorded(e.at, reason)]
        return []

    def _on_recording(self, e: ev.Event) -> list[Action]:
        if self._is_clear_down(e):
            return self._end(e.at, "hangup" if isinstance(e, ev.Hook) else "clear_down")
        if self._is_disconnect_tone(e):
            # The far end has gone and the exchange says so; the office phone is still
            # off-hook. Without this, lines that signal nothing would record to a timeout.
            return self._end(e.at, "disconnect_tone")
        return []

    def _on_not_recorded(self, e: ev.Event) -> list[Action]:
        if self._is_clear_down(e):
            return self._finish(e.at, "not_recorded")
        return []

    @staticmethod
    def _is_disconnect_tone(e: ev.Event) -> bool:
        return isinstance(e, ev.LineTone) and e.tone in ("busy", "congestion")

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _is_clear_down(e: ev.Event) -> bool:
        return (isinstance(e, ev.Hook) and not e.off_hook) or isinstance(e, ev.PolarityReversal)

    def _caller_id(self, e: ev.CallerId) -> list[Action]:
        late = (  # decoded from audio heard before the answer, reported after it
            self.state is State.ANNOUNCING
            and self.call is not None
            and self.call.direction == "in"
            and self.call.number is None
            and self.call.absence is None
        )
        if (self.state is State.RINGING or late) and self.call is not None:
            self.call.number, self.call.name, self.call.absence = e.number, e.name, e.absence
        elif self.state is State.IDLE:
            # ETSI allows caller ID before the first ring (after a line reversal).
            self._pending_cid = (e.number, e.name, e.absence, e.at)
        return []

    def _announce(self, at: float) -> list[Action]:
        assert self.call is not None
        self._enter(State.ANNOUNCING, at)
        return [StartCapture(self.call), StartAnnouncement(self.call.direction)]

    def _not_recorded(self, at: float, reason: str) -> list[Action]:
        self.not_recorded_reason = reason
        self._enter(State.NOT_RECORDED, at)
        return []

    def _end(self, at: float, reason: str) -> list[Action]:
        """End whatever call is in progress, from any state."""
        if self.state is State.RECORDING:
            return [StopRecording(reason), *self._finish(at, "recorded")]
        if self.state is State.ANNOUNCING:
            return [
                StopAnnouncement(),
                DiscardCapture(reason),
                *self._finish(at, "ended_during_announcement"),
            ]
        if self.state is State.IDLE:
            return []
        outcome = {State.RINGING: "unanswered", State.DIALLING: "abandoned"}.get(
            self.state, "not_recorded"
        )
        return self._finish(at, outcome)

    def _finish(self, at: float, outcome: str) -> list[Action]:
        direction = self.call.direction if self.call else "in"
        self.call = None
        self.not_recorded_reason = ""
        self._enter(State.IDLE, at)
        return [CallFinished(outcome, direction)]
