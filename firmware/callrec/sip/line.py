"""The SIP line: transport, B2BUA, media relay and recorders, wired on one decision thread.

    UDP ──▶ Transport (peers only, limits, stateless 400) ──Received──▶ queue ─┐
    RTP ──▶ MediaRelay (forward, decode) ──keys, media timeout, prompt done──▶ queue ─┤
    timers (a heap on this thread) ──TimerFired──────────────────────────────────▶ queue ─┤
                                                                                     ▼
                                   "sip-calls" thread: B2bua.handle(event) -> actions
      Send ─▶ Transport.send        Start/Update/StopRelay ─▶ MediaRelay
      Start/StopTimer ─▶ heap       Start/StopAnnouncement ─▶ MediaRelay.play (the prompt)
      Start/Commit/Discard/StopRecording ─▶ one Recorder per recorded call (2 channels)
      Evidence, CallFinished ─▶ the daemon's callbacks (access log, status)

As on the analog line, the threads that touch the network only enqueue; every decision is the
B2BUA's (pure, tested without sockets), taken here in arrival order. The relay hands each
direction's decoded audio to `_CallRecording`, which interleaves the two into frames
(`stereo.StereoAssembler`: channel 0 the office side, channel 1 the remote party) for a
`Recorder` of its own: the same pipeline as analog calls (held in memory until the prompt
completed, encrypted, synced every second, USB stick with fall-back to the SD card), one
thread per recorded call, so a slow disk under one call never delays another's audio.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callrec import __version__
from callrec import events as ev
from callrec.announcement import PlaybackProof, Prompt
from callrec.callflow import Action, CallInfo, Evidence, PrivacyRules
from callrec.clock import ClockState, clock_state, recording_fields
from callrec.config import SipConfig
from callrec.sip.b2bua import (
    AnnouncementFinished,
    B2bua,
    B2buaConfig,
    CallFinished,
    CommitRecording,
    DiscardRecording,
    MediaTimeout,
    Send,
    Side,
    SipReceived,
    StartAnnouncement,
    StartRecording,
    StartRelay,
    StartTimer,
    StopAnnouncement,
    StopRecording,
    StopRelay,
    StopTimer,
    TimerFired,
    TimerKey,
    TrunkState,
    UpdateRelay,
)
from callrec.sip.digest import Credentials
from callrec.sip.relay import AnnouncementPlayed, MediaRelay
from callrec.sip.stereo import CHANNEL_NAMES, RATE, StereoAssembler
from callrec.sip.transport import Peer, Received, Transport
from callrec.storage.recordings import new_recording_id

log = logging.getLogger(__name__)

MAX_QUEUE = 10_000  # events waiting for the decision thread; beyond, a flood: dropped
# How long a thread holding the GIL keeps it when another wants it (Python's default: 5 ms).
# The relay's packets wait behind recorder and web threads for at most this long: at 150
# recorded calls the relay's added p99 went from 1.5-2.7 ms to 0.9-1.0 ms (bench/sip_box.py),
# for a little more switching. Process-wide, so set by the SIP line only when it runs.
GIL_SWITCH_INTERVAL_S = 0.001


class CallRecorder(Protocol):
    """What the SIP line needs of `recorder.Recorder` (one per recorded call)."""

    def start(self) -> None: ...
    def begin(self, rec_id: str) -> None: ...
    def feed(self, pcm: bytes) -> None: ...
    def commit(self, sidecar: dict[str, Any]) -> None: ...
    def discard(self) -> None: ...
    def finish(self, meta: dict[str, Any], done: Callable[[dict[str, Any] | None], None],
               tail_s: float = 0.0) -> None: ...
    def quit(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class RecordingClosed(ev.Event):
    """A call's recorder closed and indexed its file (meta None: nothing kept)."""

    call: str
    meta: dict[str, Any] | None


@dataclass
class _CallRecording:
    """A recorded call: its recording id, its facts, and the two directions' assembly.
    The relay thread delivers audio (under its own lock) and so may the decision thread (the
    last samples when recording stops): the lock keeps the assembler consistent."""

    rec_id: str
    info: CallInfo
    started_at: str
    recorder: CallRecorder
    proof: PlaybackProof | None = None
    played: dict[str, int] | None = None
    clock: ClockState = field(default_factory=clock_state)  # at the start of the recording
    assembler: StereoAssembler = field(default_factory=StereoAssembler)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def audio(self, direction: str, pcm: bytes, start: int) -> None:
        with self.lock:
            frames = self.assembler.feed(direction, start, pcm)
        if frames:
            self.recorder.feed(frames)

    def flush(self) -> None:
        with self.lock:
            frames = self.assembler.flush()
        if frames:
            self.recorder.feed(frames)


@dataclass
class _Timers:
    """The B2BUA's timers: a heap of deadlines; a stopped or restarted timer's old entry is
    skipped when it comes up (cheaper than removing it from the heap)."""

    heap: list[tuple[float, int, TimerKey]] = field(default_factory=list)
    live: dict[TimerKey, int] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def start(self, key: TimerKey, at: float) -> None:
        n = next(self.seq)
        self.live[key] = n
        heapq.heappush(self.heap, (at, n, key))

    def stop(self, key: TimerKey) -> None:
        self.live.pop(key, None)

    def next_at(self) -> float | None:
        while self.heap and self.live.get(self.heap[0][2]) != self.heap[0][1]:
            heapq.heappop(self.heap)
        return self.heap[0][0] if self.heap else None

    def due(self, now: float) -> list[TimerKey]:
        out = []
        while (at := self.next_at()) is not None and at <= now:
            _, _, key = heapq.heappop(self.heap)
            del self.live[key]
            out.append(key)
        return out


def b2bua_config(cfg: SipConfig) -> B2buaConfig:
    return B2buaConfig(
        lan=cfg.address("lan"), trunk=cfg.address("trunk"),
        pbx_peer=cfg.address("pbx_peer"), trunk_peer=cfg.address("trunk_peer"),
        rtp_ports=cfg.rtp_range, line=cfg.name, announce_to_office=cfg.announce_to_office,
        record_incoming=cfg.record_incoming, record_outgoing=cfg.record_outgoing,
        never_record=cfg.never_record, trunk_keepalive_s=cfg.trunk_keepalive_s,
        **_credentials(cfg),
    )


def _credentials(cfg: SipConfig) -> dict[str, Any]:
    """The provider's digest credentials, the password read from its file (never logged)."""
    if not cfg.trunk_username:
        return {}
    try:
        password = Path(cfg.trunk_password_file).read_text(encoding="utf-8").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SipLineError(f"sip.trunk_password_file: cannot read {cfg.trunk_password_file} "
                           f"({getattr(exc, 'strerror', None) or exc})") from None
    return {"trunk_credentials": Credentials(cfg.trunk_username, password,
                                             cfg.trunk_realm or None)}


class SipLineError(RuntimeError):
    """The SIP line cannot start (an address cannot be bound, a credential file unreadable)."""


class SipLine:
    """One SIP line. `new_recorder()` makes a 2-channel Recorder (not started) for a call;
    `on_indexed(meta)` is called (recorder thread) when a recording is indexed;
    `on_evidence(action, proof)` and `on_finished(outcome, direction)` on this line's thread."""

    def __init__(
        self,
        cfg: SipConfig,
        *,
        prompts: Mapping[str, Prompt],
        privacy: PrivacyRules,
        prompt_versions: Mapping[str, tuple[dict[str, object], ...]] | None = None,
        new_recorder: Callable[[], CallRecorder],
        on_indexed: Callable[[dict[str, Any] | None], None] = lambda meta: None,
        on_evidence: Callable[[Evidence, PlaybackProof | None], None] = lambda e, p: None,
        on_finished: Callable[[str, str], None] = lambda outcome, direction: None,
        on_trunk_state: Callable[[bool, str], None] = lambda reachable, detail: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.prompts = prompts
        # The prompt library's versions behind each direction's prompt (the daemon's table,
        # updated with `prompts` on an idle line), named in each recording's proof.
        self.prompt_versions = prompt_versions if prompt_versions is not None else {}
        self.new_recorder = new_recorder
        self.on_indexed, self.on_evidence, self.on_finished = on_indexed, on_evidence, on_finished
        self.on_trunk_state = on_trunk_state
        self.clock = clock
        self.b2bua = B2bua(b2bua_config(cfg), privacy=privacy)
        self.events: queue.Queue[ev.Event] = queue.Queue(MAX_QUEUE)
        self._timers = _Timers()
        self._recordings: dict[str, _CallRecording] = {}
        self._closing: dict[str, CallRecorder] = {}  # finishing: stopped once indexed
        self._event_call = ""  # the call the event being handled is about, if it says
        self.outcomes: Counter[str] = Counter()
        self.dropped_events = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        lan, trunk = cfg.address("lan"), cfg.address("trunk")
        peers = [Peer("lan", cfg.address("pbx_peer")[0]),
                 Peer("trunk", cfg.address("trunk_peer")[0])]
        try:
            self.transport = Transport({"lan": lan, "trunk": trunk}, peers, self._received)
        except OSError as exc:
            raise SipLineError(f"SIP line: cannot listen on {cfg.lan} / {cfg.trunk} "
                               f"({exc.strerror or exc})") from None
        self.relay = MediaRelay(
            {"lan": lan[0], "trunk": trunk[0]}, self._enqueue, self._audio,
            hosts={"lan": [peers[0].host], "trunk": [peers[1].host]},
            port_range=cfg.rtp_range, media_timeout_s=cfg.media_timeout_s, clock=clock)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.relay.start()
        self._thread = threading.Thread(target=self._run, name="sip-calls", daemon=True)
        self._thread.start()
        self.transport.start()
        log.info("SIP line %s: office side %s, provider side %s", self.cfg.name, self.cfg.lan,
                 self.cfg.trunk)

    def stop(self) -> None:
        """Stop taking messages, close every recording in progress (kept, as on the analog
        line at shutdown), then stop the relay."""
        self.transport.stop()
        self._stop.set()
        self._enqueue(ev.Tick())
        if self._thread is not None:
            self._thread.join(timeout=10)
        for call in list(self._recordings):
            self._do(StopRecording(call, "shutdown"))
        for recorder in list(self._closing.values()):
            recorder.stop()  # closes and indexes what it was finishing, then returns
        self.relay.close()

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """For the status page: no number, no address of a caller; counts only. Called from
        other threads (the daemon's, the web's): the call table is copied in one step (a
        C-level copy under the GIL) before it is read, as this line's thread changes it."""
        calls = list(self.b2bua.calls.values())
        return {
            "line": self.cfg.name,
            "calls": sum(1 for c in calls if c.state != "ended"),
            "recording": len(self._recordings),
            "outcomes": dict(self.outcomes),
            "transport": self.transport.counters(),
            "relay": self.relay.counters(),
            "dropped_events": self.dropped_events,
            "registrations": self.b2bua.registrations.status(self.clock()),
            "provider_reachable": self.b2bua.keepalive.reachable,
        }

    # -- from other threads: enqueue only -------------------------------------------------
    def _enqueue(self, event: ev.Event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.dropped_events += 1  # a flood the transport's limits did not stop

    def _received(self, r: Received) -> None:
        side: Side = "lan" if r.side == "lan" else "trunk"
        self._enqueue(SipReceived(side, r.source, r.message, at=r.at))

    def _audio(self, call: str, direction: str, pcm: bytes, start: int) -> None:
        rec = self._recordings.get(call)
        if rec is not None:
            rec.audio(direction, pcm, start)

    # -- the decision thread --------------------------------------------------------------
    def _run(self) -> None:
        for action in self.b2bua.start(self.clock()):  # the first keep-alive
            self._do(action)
        while not self._stop.is_set():
            next_at = self._timers.next_at()
            timeout = 1.0 if next_at is None else min(1.0, max(0.0, next_at - self.clock()))
            try:
                event: ev.Event | None = self.events.get(timeout=timeout)
            except queue.Empty:
                event = None
            try:
                now = self.clock()
                for key in self._timers.due(now):
                    self._handle(TimerFired(key, at=now))
                if event is not None:
                    self._handle(event)
            except Exception:  # one bad call must not take the line down with it
                log.exception("SIP line: error handling an event; the line goes on")

    def _handle(self, event: ev.Event) -> None:
        if isinstance(event, RecordingClosed):
            recorder = self._closing.pop(event.call, None)
            if recorder is not None:
                recorder.quit()
            self.on_indexed(event.meta)
            return
        if isinstance(event, AnnouncementPlayed):
            rec = self._recordings.get(event.call)
            if rec is not None:
                rec.played = dict(event.samples)
            return
        if isinstance(event, ev.Tick):
            return
        self._event_call = str(getattr(event, "call", ""))
        for action in self.b2bua.handle(event):
            self._do(action)

    def _do(self, action: Action) -> None:
        getattr(self, f"_do_{type(action).__name__}")(action)

    def _do_Send(self, a: Send) -> None:
        self.transport.send(a.side, a.message, a.to)

    def _do_StartTimer(self, a: StartTimer) -> None:
        self._timers.start(a.key, self.clock() + a.after_s)

    def _do_StopTimer(self, a: StopTimer) -> None:
        self._timers.stop(a.key)

    def _do_StartRelay(self, a: StartRelay) -> None:
        try:
            self.relay.start_call(a.call, a.lan, a.trunk)
        except (OSError, ValueError) as exc:
            # A relay port taken by another program: the call cannot be anchored, so it is
            # released as a dead one would be (BYE both ways once confirmed).
            log.error("SIP call %s: media relay failed (%s)", a.call, exc)
            self._enqueue(MediaTimeout(a.call, "lan"))

    def _do_UpdateRelay(self, a: UpdateRelay) -> None:
        self.relay.update_call(a.call, a.lan, a.trunk)

    def _do_StopRelay(self, a: StopRelay) -> None:
        self.relay.stop_call(a.call)

    def _do_StartAnnouncement(self, a: StartAnnouncement) -> None:
        rec = self._recordings.get(a.call)
        call = self.b2bua.calls.get(a.call)
        direction = call.direction if call is not None else "in"
        prompt = self.prompts.get(direction)
        versions = self.prompt_versions.get(direction, ())
        if prompt is None or prompt.rate != RATE:
            self._enqueue(AnnouncementFinished(a.call, False, "no valid prompt installed"))
            return
        try:
            self.relay.play(a.call, a.legs, np.frombuffer(prompt.pcm, dtype="<i2"))
        except (KeyError, ValueError) as exc:
            self._enqueue(AnnouncementFinished(a.call, False, f"prompt not played ({exc})"))
            return
        if rec is not None:
            rec.proof = PlaybackProof(prompt.name, prompt.sha256, _now_iso(),
                                      first_frame_at=self.clock(), versions=versions)

    def _do_StopAnnouncement(self, a: StopAnnouncement) -> None:
        self.relay.stop_announcement(a.call)

    def _do_StartRecording(self, a: StartRecording) -> None:
        recorder = self.new_recorder()
        recorder.start()
        rec = _CallRecording(new_recording_id(), a.info, _now_iso(), recorder)
        recorder.begin(rec.rec_id)
        self._recordings[a.call] = rec
        self.relay.start_recording(a.call)

    def _do_CommitRecording(self, a: CommitRecording) -> None:
        rec = self._recordings.get(a.call)
        if rec is not None:
            if rec.proof is not None:
                rec.proof = dataclasses.replace(rec.proof, completed=True)
            rec.recorder.commit({**self._meta(rec), "status": "recording"})

    def _do_DiscardRecording(self, a: DiscardRecording) -> None:
        rec = self._recordings.pop(a.call, None)
        self.relay.stop_recording(a.call)
        if rec is not None:
            rec.recorder.discard()
            rec.recorder.quit()
            log.info("SIP call %s: not recorded (%s)", a.call, a.reason)

    def _do_StopRecording(self, a: StopRecording) -> None:
        self.relay.stop_recording(a.call)  # the last samples of both directions, in step
        rec = self._recordings.pop(a.call, None)
        if rec is None:
            return
        rec.flush()
        meta = {**self._meta(rec), "ended_at": _now_iso(), "end_reason": a.reason}
        self._closing[a.call] = rec.recorder
        call = a.call
        rec.recorder.finish(meta, lambda final: self._enqueue(RecordingClosed(call, final)))

    def _do_Evidence(self, a: Evidence) -> None:
        # Evidence comes from the event being handled: a refusal key names its call, whose
        # prompt is the proof of what the caller heard.
        rec = self._recordings.get(self._event_call)
        self.on_evidence(a, rec.proof if rec is not None else None)

    def _do_CallFinished(self, a: CallFinished) -> None:
        self.outcomes[a.outcome] += 1
        log.info("SIP call %s finished: %s (%s)", a.call, a.outcome, a.direction)
        self.on_finished(a.outcome, a.direction)

    def _do_TrunkState(self, a: TrunkState) -> None:
        """The provider stopped answering the keep-alive (a fault saying since when, local
        time) or answers again (cleared)."""
        since = datetime.now().astimezone() - timedelta(seconds=max(0.0, self.clock() - a.since))
        detail = "" if a.reachable else f"{a.detail} since {since:%H:%M}"
        (log.info if a.reachable else log.warning)("SIP line %s: %s", self.cfg.name,
                                                   detail or a.detail)
        self.on_trunk_state(a.reachable, detail)

    def _meta(self, rec: _CallRecording) -> dict[str, Any]:
        info = rec.info
        proof = rec.proof.as_dict() if rec.proof is not None else None
        if proof is not None and rec.played is not None:
            proof["samples_sent"] = rec.played  # per leg: the prompt reached both peers
        return {
            "id": rec.rec_id,
            "started_at": rec.started_at,
            "direction": info.direction,
            "line": info.line,
            "line_type": "sip",
            "caller_number": info.number if info.direction == "in" else None,
            "called_number": (info.digits or None) if info.direction == "out" else None,
            "answered_by": info.answered_by,
            "keys_during_prompt": info.keys_during_prompt or None,
            "announcement": proof,
            "audio": {"sample_rate": RATE, "channels": 2},
            "channel_names": CHANNEL_NAMES,
            "firmware": __version__,
            **recording_fields(rec.clock),
        }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
