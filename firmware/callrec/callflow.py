"""The analog line's call state machine: board events in, actions out. No I/O, no clock.

    idle ─Ring─▶ ringing ─Hook(off)─▶ announcing ─done─▶ recording ─Hook(on)/reversal─▶ idle
      └─Hook(off), no ring─▶ dialling ─reversal or delay─▶ announcing

The caller's consent rests on the announcement, so the rule is: no announcement, no recording.
Audio captured during the announcement is held by the recorder and only written once the prompt
has completed; a call that ends during the prompt leaves nothing on disk. The end of a call is
decided by the line (loop current, polarity reversal, battery loss), never by silence.

Saying no (see `PrivacyRules`): a call is kept out of recording, with nothing written, when
the caller presses the refusal key during the prompt (or in the short grace after it, see
REFUSAL_GRACE_S), when the caller ID or the dialled number is on the do-not-record list
(objection), when the office dialled the privacy prefix, when the privacy button was pressed
for it, or when the line is set to never record. Decided before the answer, the call gets no
announcement at all (telling someone "this call may be recorded" when it will not be is
pointless, and for an objector, wrong). Decided during the prompt, the held audio is dropped.
Decided while recording (privacy button, a very late caller ID), what was written is erased.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from callrec import events as ev
from callrec.config import LineConfig

# Below this loop voltage the line has no battery: the exchange or the cable is gone.
LINE_DOWN_VOLTS = 3.0

# A key pressed in the last moments of the prompt is reported up to about a second later (a
# 200 ms capture buffer, the device's latency, the listener's 0.2-0.5 s batches, the tone's
# own duration), and DTMF is not listened for once recording. So the held audio is written
# only this long after the prompt ended, and a refusal in that time still leaves nothing on
# disk. Nothing is lost by waiting: the audio since the prompt's start is held in memory.
REFUSAL_GRACE_S = 1.5

# Supplementary-service codes dialled before a number ("#31#" hides the caller ID in France)
# are not part of the number the do-not-record list is matched against.
_SERVICE_CODES = re.compile(r"^(?:[*#]\d*#)+")


def _never(number: str | None) -> bool:
    return False


@dataclass(frozen=True)
class PrivacyRules:
    """What the privacy settings ask of the call flow, as plain data and one pure callable.

    The defaults enforce nothing (refusal off, no prefix, empty list): the daemon builds the
    rules from the [privacy] configuration and the do-not-record list's matcher."""

    refusal_key: str = ""  # "" : callers cannot refuse with a key
    privacy_prefix: str = ""  # "" : no dialling prefix keeps a call private
    button_window_s: float = 60.0  # privacy button pressed between calls: the next one
    do_not_record: Callable[[str | None], bool] = field(default=_never)


def dialled_number(digits: str) -> str:
    """The number in what the office dialled, without leading service codes."""
    return _SERVICE_CODES.sub("", digits)


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
class EraseRecording(Action):
    """Stop writing this call and erase what was written (crypto-erasure): the call turned
    out to be one that must not be recorded (privacy button, late caller ID on the list)."""

    reason: str


@dataclass(frozen=True)
class Evidence(Action):
    """A record that a call was kept out of recording, for the access log. `number` is the
    caller's (in) or the dialled one (out), to be pseudonymised; None when it must leave no
    trace (staff privacy: whom a staff member called privately is nobody's business)."""

    kind: str  # "call.refused" (the refusal key) or "call.not_recorded" (anything else)
    reason: str
    direction: str
    line: str
    number: str | None = None


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
    private: str = ""  # why the office keeps this call out of recording (privacy button)


@dataclass
class CallFlow:
    """Feed events with `handle`; it returns the actions the daemon must carry out."""

    config: LineConfig
    privacy: PrivacyRules = field(default_factory=PrivacyRules)
    state: State = State.IDLE
    call: CallInfo | None = None
    since: float = 0.0
    not_recorded_reason: str = ""
    _last_ring_at: float = 0.0
    _answer_deadline: float = 0.0
    _pending_cid: tuple[str | None, str | None, str | None, float] | None = None
    _button_at: float | None = None  # privacy button pressed with no call on the line
    _commit_at: float | None = None  # the prompt completed: write from then (refusal grace)

    def _enter(self, state: State, at: float) -> None:
        self.state, self.since = state, at

    @property
    def writing(self) -> bool:
        """True while the call's audio is being written: what the recording LED shows."""
        return self.state is State.RECORDING

    def handle(self, event: ev.Event) -> list[Action]:
        """Advance the machine by one event."""
        if isinstance(event, ev.CallerId):
            return self._caller_id(event)
        if isinstance(event, ev.LoopVoltage) and abs(event.volts) < LINE_DOWN_VOLTS:
            return self._end(event.at, "line_down")
        if isinstance(event, ev.PrivacyButton):
            return self._privacy_button(event) if event.pressed else []
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
            self._take_button(e.at)
            self._enter(State.RINGING, e.at)
        elif isinstance(e, ev.Hook) and e.off_hook:
            self.call = CallInfo("out", self.config.name, first_event_at=e.at)
            self._answer_deadline = e.at + self.config.outgoing_answer_delay_s
            self._take_button(e.at)
            self._enter(State.DIALLING, e.at)
        return []

    def _take_button(self, at: float) -> None:
        """A call starts: a privacy-button press shortly before it makes it private."""
        pressed, self._button_at = self._button_at, None
        if pressed is not None and self.call is not None:
            if at - pressed <= self.privacy.button_window_s:
                self.call.private = "privacy button"

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
            kept_out = self._keep_out(self.call)
            if kept_out is not None:
                return kept_out
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
            kept_out = self._keep_out(self.call)
            if kept_out is not None:
                return kept_out
            return self._announce(e.at)
        return []

    def _on_announcing(self, e: ev.Event) -> list[Action]:
        call = self.call
        if isinstance(e, ev.Digit) and call is not None:
            late = self._commit_at is not None and e.at >= self._commit_at
            if not late:
                call.keys_during_prompt += e.digit
                if self.privacy.refusal_key and e.digit == self.privacy.refusal_key:
                    return self._refused(e.at)
                return []
        if self._commit_at is not None:
            # The prompt has completed; only a refusal (above), the privacy button or a late
            # caller ID on the list can still keep the call out. Anything a recording would
            # act on commits first, so the call ends as a recording, as without the grace.
            if e.at >= self._commit_at or self._is_clear_down(e) or self._is_disconnect_tone(e):
                return [*self._commit(e.at), *self._on_recording(e)]
            return []
        if isinstance(e, AnnouncementDone):
            if e.ok:
                if self.privacy.refusal_key:
                    self._commit_at = e.at + REFUSAL_GRACE_S
                    return [StopAnnouncement()]  # the relay opens now: the parties talk
                return self._commit(e.at)
            return [DiscardCapture("announcement failed"), *self._not_recorded(e.at, e.error)]
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

    def _commit(self, at: float) -> list[Action]:
        self._commit_at = None
        self._enter(State.RECORDING, at)
        return [CommitCapture()]

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
        later = (  # decoded even later: the prompt was short, the audio is being written
            self.state is State.RECORDING
            and self.call is not None
            and self.call.direction == "in"
            and self.call.number is None
            and self.call.absence is None
        )
        if (self.state is State.RINGING or late) and self.call is not None:
            self.call.number, self.call.name, self.call.absence = e.number, e.name, e.absence
            if late and self.privacy.do_not_record(e.number):
                # Objection: the audio so far is only in memory; drop it.
                return [
                    StopAnnouncement(),
                    self._evidence("do-not-record list", self.call),
                    DiscardCapture("do-not-record list"),
                    *self._not_recorded(e.at, "the caller is on the do-not-record list"),
                ]
        elif later and self.call is not None and self.privacy.do_not_record(e.number):
            self.call.number, self.call.name, self.call.absence = e.number, e.name, e.absence
            return [
                self._evidence("do-not-record list", self.call),
                EraseRecording("do-not-record list"),
                *self._not_recorded(e.at, "the caller is on the do-not-record list"),
            ]
        elif self.state is State.IDLE:
            # ETSI allows caller ID before the first ring (after a line reversal).
            self._pending_cid = (e.number, e.name, e.absence, e.at)
        return []

    # -- saying no --------------------------------------------------------------------------
    def _keep_out(self, call: CallInfo) -> list[Action] | None:
        """At the answer: the reasons not to record this call at all (no announcement, no
        capture), or None to announce and record it."""
        at = call.answered_at or 0.0
        if self.config.never_record:
            # No evidence record: the calls of such a line leave no trace at all.
            return self._not_recorded(at, "this line is never recorded")
        if call.private:
            return [self._evidence(call.private, call, staff=True),
                    *self._not_recorded(at, f"kept private ({call.private})")]
        prefix = self.privacy.privacy_prefix
        if call.direction == "out" and prefix and call.digits.startswith(prefix):
            return [self._evidence("privacy prefix", call, staff=True),
                    *self._not_recorded(at, "kept private (privacy prefix)")]
        number = call.number if call.direction == "in" else dialled_number(call.digits)
        if self.privacy.do_not_record(number):
            who = "caller" if call.direction == "in" else "called number"
            return [self._evidence("do-not-record list", call),
                    *self._not_recorded(at, f"the {who} is on the do-not-record list")]
        return None

    def private_until(self, now: float) -> float | None:
        """While a privacy-button press waits for the next call: until when (monotonic) a call
        that starts will be kept private; None otherwise. For the status page."""
        if self._button_at is None:
            return None
        until = self._button_at + self.privacy.button_window_s
        return until if until > now else None

    def _privacy_button(self, e: ev.PrivacyButton) -> list[Action]:
        """A staff member pressed the privacy button: this call (or the next one) is private.

        During a recording, what was written of the call is erased as well: the call is
        private as a whole, and keeping its first minutes would keep exactly what the person
        asked not to be kept (the lawful basis for recording does not cover private calls)."""
        call = self.call
        if self.state is State.IDLE or call is None:
            self._button_at = e.at  # a second press only renews the window: never "unpress"
            return []
        call.private = "privacy button"
        if self.state is State.ANNOUNCING:
            return [
                StopAnnouncement(),
                self._evidence("privacy button", call, staff=True),
                DiscardCapture("privacy button"),
                *self._not_recorded(e.at, "kept private (privacy button)"),
            ]
        if self.state is State.RECORDING:
            return [
                self._evidence("privacy button", call, staff=True),
                EraseRecording("privacy button"),
                *self._not_recorded(e.at, "kept private (privacy button)"),
            ]
        return []  # ringing or dialling: decided at the answer; not recorded: nothing to do

    def _refused(self, at: float) -> list[Action]:
        assert self.call is not None
        return [
            StopAnnouncement(),  # the caller has chosen: the rest of the prompt is pointless
            self._evidence("refusal key", self.call, kind="call.refused"),
            DiscardCapture("refused by the caller"),
            *self._not_recorded(at, "the caller refused the recording"),
        ]

    @staticmethod
    def _evidence(reason: str, call: CallInfo, *, kind: str = "call.not_recorded",
                  staff: bool = False) -> Evidence:
        number = call.number if call.direction == "in" else dialled_number(call.digits) or None
        return Evidence(kind, reason, call.direction, call.line, None if staff else number)

    def _announce(self, at: float) -> list[Action]:
        assert self.call is not None
        self._commit_at = None
        self._enter(State.ANNOUNCING, at)
        return [StartCapture(self.call), StartAnnouncement(self.call.direction)]

    def _not_recorded(self, at: float, reason: str) -> list[Action]:
        self._commit_at = None
        self.not_recorded_reason = reason
        self._enter(State.NOT_RECORDED, at)
        return []

    def _end(self, at: float, reason: str) -> list[Action]:
        """End whatever call is in progress, from any state."""
        if self.state is State.RECORDING:
            return [StopRecording(reason), *self._finish(at, "recorded")]
        if self.state is State.ANNOUNCING and self._commit_at is not None:
            # The prompt had completed (refusal grace): the call is a recording.
            return [*self._commit(at), StopRecording(reason), *self._finish(at, "recorded")]
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
        self._commit_at = None
        self._enter(State.IDLE, at)
        return [CallFinished(outcome, direction)]
