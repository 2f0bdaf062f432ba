"""The appliance's main loop: board events -> call state machine -> actions on board and disk.

Threads: the board's callbacks (gpiozero, serial reader, PortAudio) only enqueue; this loop is
the only place that decides; the recorder thread owns the open file; the announcement player
writes the prompt; cheroot's workers serve the web UI. Start in order, stop in reverse.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callrec import __version__, handover
from callrec import events as ev
from callrec.announcement import (
    AnnouncementPlayer,
    PlaybackProof,
    Prompt,
    PromptError,
)
from callrec.audit import open_audit
from callrec.board.backends import make_board
from callrec.board.recovery import McuRecovery
from callrec.callflow import (
    Action,
    AnnouncementDone,
    CallFinished,
    CallFlow,
    CallInfo,
    CommitCapture,
    DiscardCapture,
    EraseRecording,
    Evidence,
    PrivacyRules,
    StartAnnouncement,
    StartCapture,
    State,
    StopAnnouncement,
    StopRecording,
)
from callrec.clock import ClockState, clock_state, recording_fields
from callrec.config import Config, ConfigError, load
from callrec.config_audit import audit_problem, record_config_changes
from callrec.config_store import AFTER_CALL, NOW, ConfigStore
from callrec.housekeeping import Housekeeper
from callrec.listener import LineListener
from callrec.phrase import phrase
from callrec.privacy.donotrecord import DoNotRecord, DoNotRecordError, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
from callrec.prompt_library import LibraryError, PromptLibrary
from callrec.recorder import Recorder
from callrec.sdnotify import Backlog, Notifier, Watchdog
from callrec.selftest_run import SelfTestService
from callrec.sip.line import SipLine, SipLineError
from callrec.sip.stereo import RATE
from callrec.status import StatusBoard
from callrec.storage.open_store import open_store
from callrec.storage.recordings import new_recording_id
from callrec.storage.retention import describe_policy
from callrec.storage.volumes import (
    SD,
    USB,
    Choice,
    MountWatcher,
    VolumeHealth,
    VolumeSet,
    fallback_notice,
    label,
)
from callrec.transcoder import Transcoder

if TYPE_CHECKING:
    from callrec_web.sessions import SessionStore

log = logging.getLogger(__name__)

SIP_STATUS_EVERY_S = 2.0
TICK_S = 0.5  # timeouts are whole seconds (ring gap 8 s, answer guess 6 s): finer costs CPU
# systemd's watchdog is fed only while every recorder drains its queue: one that has sat on
# queued audio this long is wedged (a sync on a slow SD card takes seconds; a dying USB stick
# fails its commands after the kernel's 30 s SCSI timeout and a retry), and a restart is the
# way out. With WatchdogSec=30 the restart comes at most 90 s after the recorder stopped.
RECORDER_STALL_S = 60.0
SYSTEMD_STATUS_EVERY_S = 1.0  # the `systemctl status` line is refreshed at most this often
# A configuration saved from the web UI is applied this long after it was saved at the
# earliest, so that the page that saved it and the page its answer redirects to are both
# served before the web server stops (a browser follows the redirect within milliseconds).
CONFIG_APPLY_GRACE_S = 2.0


@dataclass(frozen=True)
class StorageFault(ev.Event):
    """A storage problem ("" clears it): write errors, or space retention cannot free."""

    detail: str
    part: str = "storage"


@dataclass(frozen=True)
class VolumesChanged(ev.Event):
    """The mount table changed (a USB stick plugged in or pulled out)."""


@dataclass(frozen=True)
class RecordingIndexed(ev.Event):
    """The recorder thread closed and indexed a recording (meta is None if nothing was kept)."""

    meta: dict[str, Any] | None


@dataclass(frozen=True)
class ConfigChanged(ev.Event):
    """The configuration file was changed (web UI): restart with it once no call is up."""


@dataclass(frozen=True)
class SipCallFinished(ev.Event):
    """A SIP call ended (its line's thread tells; the status is published from here)."""

    outcome: str
    direction: str


@dataclass
class _CurrentCall:
    rec_id: str
    call: CallInfo
    started_at: str
    clock: ClockState  # at the start: says whether started_at (and ended_at) can be trusted
    proof: PlaybackProof | None = None


M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread heaps (arenas) before any thread starts.

    glibc gives each thread that allocates its own arena, up to 8 per core; every arena keeps
    its freed pages. PortAudio's, the listener's and the web's threads each grew one, about
    2 MB of the daemon's 60 MB budget for no measurable gain in speed (bench/appliance.py).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass  # not glibc (musl): its allocator has no arenas to cap


def _log_evidence(kind: str, details: dict[str, Any]) -> None:
    """The evidence as a journal line (no number in clear: the subject is a pseudonym)."""
    log.info("privacy evidence: %s %s", kind,
             " ".join(f"{k}={v}" for k, v in details.items() if v is not None))


def release_free_memory() -> None:
    """Give freed heap pages back to the system (glibc keeps them otherwise).

    A call's audio buffers are allocated on PortAudio's thread and freed on others; without
    this the daemon's resident memory creeps up by a few MB on a 512 MB Pi Zero.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (musl): nothing to trim


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.events: queue.SimpleQueue[ev.Event] = queue.SimpleQueue()
        self.flow = CallFlow(config.line)
        self.store = open_store(config)
        if self.store.keys is not None and self.store.keys.unbound_warning:
            log.warning("%s", self.store.keys.unbound_warning)  # once: also in the status
        # The access log (who accessed what, and why), sealed under a key derived from the
        # device key. Its old months go at start and whenever an append opens a new month.
        self.audit = open_audit(config, self.store.keys)
        try:
            self.audit.prune()
        except OSError as exc:
            log.error("access log: old months not pruned: %s", exc)
        self._dnr_problem = ""
        self._dnr_lock = threading.Lock()  # asked by the analog and the SIP line's threads
        self.do_not_record = self._load_do_not_record()
        self._pseudonym = Pseudonymizer(pseudonym_key(self.store.keys, config.data_dir))
        p = config.privacy
        self.flow.privacy = PrivacyRules(p.refusal_key, p.privacy_prefix,
                                         p.privacy_button_window_s, self._on_do_not_record_list)
        # Evidence of calls kept out of recording: the access log (the record), and a line in
        # the journal for whoever reads it (neither holds the number). Daemon thread.
        self.on_evidence: Callable[[str, dict[str, Any]], None] = self._evidence
        self._write_failed = False  # the recorder reported a write error during this call
        self.board = make_board(config.board, self.events.put)
        self.volumes = VolumeSet(
            config.data_dir,
            config.storage.usb_mount_point,
            prefer=USB if config.storage.prefer_usb else SD,
        )
        self._min_free_bytes = config.retention.min_free_mb * 10**6
        self._last_volume: VolumeHealth | None = None  # recorder threads, under the lock
        self._volume_lock = threading.Lock()
        self.mount_watcher = MountWatcher(lambda: self.events.put(VolumesChanged()))
        self.recorder = Recorder(
            self.store,
            config.board.sample_rate,
            config.storage.fsync_interval_s,
            on_error=lambda msg: self.events.put(StorageFault(msg)),
            choose_volume=self._choose_volume,
            volume_problem=self._volume_problem,
            on_fallback=self._on_fallback,
        )
        self.player = AnnouncementPlayer(self.board.audio)
        self.listener = LineListener(self.events.put, country=config.line.country)
        # Line audio goes to the recorder while it wants it (from the prompt's start until the
        # capture pipeline is drained after the hang-up), and always to the listener, which
        # hears caller ID, digits and tones.
        self.board.audio.set_sink(self._on_line_audio)
        self.status = StatusBoard(config, self.board)
        if self._dnr_problem:
            self.status.set_fault("privacy", self._dnr_problem)
        self.transcoder = Transcoder(self.store, config.storage.audio_format)
        self.housekeeper = Housekeeper(
            self.store,
            config.retention,
            on_shortfall=lambda detail: self.events.put(StorageFault(detail, part="retention")),
            audit=self.audit,
        )
        self._next_retention = 0.0
        self._published_at = 0.0
        self.mcu_recovery = McuRecovery()
        self.prompts: dict[str, Prompt] = {}
        # The prompt library (web UI uploads and activations): re-read on an idle line when
        # its state file changes, so a new prompt never cuts into a call.
        self.prompt_library = PromptLibrary(config.announcement, config.board.sample_rate)
        self._prompt_versions: dict[str, tuple[dict[str, object], ...]] = {}
        self._prompt_generation: tuple[int, int, int] | None = None
        self.sip = self._make_sip_line() if config.sip.enabled else None
        self._current: _CurrentCall | None = None
        self._stop = threading.Event()
        self._web: Any = None
        self._sessions: SessionStore | None = None  # the web UI's logins (_start_web)
        # The self-test (web UI, `callrec selftest`): on its own thread, only on an idle line.
        self.selftest = SelfTestService.for_daemon(self)
        # systemd (Type=notify, WatchdogSec): readiness, a status line, watchdog pings fed by
        # loop() while the recorders drain (the line's and every SIP call's).
        self.notifier = Notifier()
        self.watchdog = Watchdog(self.notifier)
        # A saved configuration applies by a restart of this process (same PID: cli.cmd_run
        # re-executes it), never while a call is up: `restart` tells cmd_run to do it.
        self._config_saved_at: float | None = None
        self.restart = False
        self._backlogs: weakref.WeakKeyDictionary[Recorder, Backlog] = weakref.WeakKeyDictionary()
        self._backlogs[self.recorder] = Backlog(RECORDER_STALL_S)
        self._backlogs_lock = threading.Lock()  # SIP recorders are added on the SIP thread
        self._recorders_stalled = False
        self._systemd_status_at = 0.0

    # -- volumes: these run on the recorder thread (probing can block on a dying stick) -----
    def _choose_volume(self) -> str:
        """Probe the volumes and name the one the next recording goes to (the SD card when
        none can take it: the write error then says why). Each SIP call has a recorder
        thread of its own: the lock keeps one notice per change of volume."""
        with self._volume_lock:
            choice, healths = self.volumes.select(self._min_free_bytes)
            self._report_choice(choice, fallback_notice(self._last_volume, choice))
            name = choice.name or SD
            self._last_volume = next((h for h in healths if h.name == name), None)
            return name

    def _report_choice(self, choice: Choice, notice: str | None) -> None:
        if notice:
            log.warning("%s", notice)
            self.events.put(StorageFault(notice, part="volume"))
        elif choice.name == choice.preferred:
            self.events.put(StorageFault("", part="volume"))  # back on the preferred volume

    def _volume_problem(self, volume: str) -> str | None:
        health = next((h for h in self.volumes.check() if h.name == volume), None)
        if health is None or health.usable:
            return None
        return health.error or "not writable"

    def _on_fallback(self, volume: str, problem: str) -> None:
        """A recording left `volume` for the SD card during a call."""
        with self._volume_lock:
            previous = self._last_volume
            choice, healths = self.volumes.select(self._min_free_bytes)
            notice = fallback_notice(previous, choice) if choice.name != volume else None
            if not notice:
                notice = (f"Recording to {label(SD)}: {label(volume)} failed during a call "
                          f"({problem}).")
            log.warning("%s", notice)
            self.events.put(StorageFault(notice, part="volume"))
            self._last_volume = next((h for h in healths if h.name == SD), None)

    # -- the SIP line -------------------------------------------------------------------------
    def _make_sip_line(self) -> SipLine | None:
        try:
            line = SipLine(
                self.config.sip,
                prompts=self.prompts,
                prompt_versions=self._prompt_versions,
                privacy=self.flow.privacy,
                new_recorder=self._new_sip_recorder,
                on_indexed=lambda meta: self.events.put(RecordingIndexed(meta)),
                on_evidence=self._record_evidence,
                on_finished=lambda outcome, direction: self.events.put(
                    SipCallFinished(outcome, direction)),
                on_trunk_state=lambda ok, detail: self.events.put(
                    ev.BoardFault("sip", ok, detail)),
            )
        except SipLineError as exc:
            log.error("%s", exc)
            self.status.set_fault("sip", str(exc))
            return None
        self.status.sip_status = line.status
        return line

    def _new_sip_recorder(self) -> Recorder:
        """A SIP call's own recorder: both directions, the same volumes and fall-back."""
        recorder = Recorder(
            self.store,
            RATE,
            self.config.storage.fsync_interval_s,
            on_error=lambda msg: self.events.put(StorageFault(msg)),
            choose_volume=self._choose_volume,
            volume_problem=self._volume_problem,
            on_fallback=self._on_fallback,
            channels=2,
        )
        with self._backlogs_lock:  # watched until it is garbage (weak keys)
            self._backlogs[recorder] = Backlog(RECORDER_STALL_S)
        return recorder

    # -- saying no: the do-not-record list and the evidence ------------------------------------
    def _load_do_not_record(self) -> DoNotRecord | None:
        path = self.config.privacy.do_not_record_path(self.config.data_dir)
        try:
            return DoNotRecord.load(path, sealer_for(self.store.keys))
        except DoNotRecordError as exc:
            # Objections cannot be honoured from an unreadable list: no call is recorded until
            # it is repaired or restored (recording an objector is the worse error).
            self._dnr_problem = f"{exc}: no call is recorded until the list is restored"
            log.error("%s", self._dnr_problem)
            return None

    def _on_do_not_record_list(self, number: str | None) -> bool:
        """The call flow's question (daemon thread): is this number on the list? The list is
        re-read when another process (web UI, CLI) changed it: one stat per question."""
        if self.do_not_record is None:
            return True
        with self._dnr_lock:
            try:
                self.do_not_record.refresh()
            except DoNotRecordError as exc:
                log.error("%s (the list as last read still applies)", exc)
            return self.do_not_record.matches(number)

    def _do_Evidence(self, a: Evidence) -> None:
        self._record_evidence(a, self._current.proof if self._current is not None else None)

    def _record_evidence(self, a: Evidence, proof: PlaybackProof | None) -> None:
        """Proof that a call was kept out of recording: when, which line, why, the prompt
        that was playing (refusal), and the number only as a keyed pseudonym. Called by
        the analog line's and the SIP line's threads (the access log takes its own lock)."""
        subject = None
        if a.number:
            try:
                subject = self._pseudonym(a.number)
            except ValueError:
                subject = None  # no digit in it: nothing to identify
        details: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "line": a.line,
            "direction": a.direction,
            "reason": a.reason,
            "subject": subject,
        }
        if a.kind == "call.refused" and proof is not None:
            details.update(prompt=proof.prompt, prompt_sha256=proof.sha256)
        self.on_evidence(a.kind, details)

    def _check_audit(self) -> None:
        problem = audit_problem(self.audit)
        if problem:
            log.error("%s", problem)
            self.events.put(StorageFault(problem, part="access log"))

    def _evidence(self, kind: str, details: dict[str, Any]) -> None:
        _log_evidence(kind, details)
        self.audit.evidence(kind, details)

    def _do_EraseRecording(self, a: EraseRecording) -> None:
        self.recorder.abandon(a.reason)
        self._current = None

    def _update_led(self) -> None:
        """The recording LED shows the truth: on only while this call's audio is written."""
        wanted = self.flow.writing and not self._write_failed
        if self.board.recording_led != wanted:  # every event passes here: write on change
            self.board.set_recording_led(wanted)

    def _on_line_audio(self, pcm: bytes) -> None:
        """Capture callback (PortAudio's thread): enqueue only."""
        if self.recorder.wants_audio:
            self.recorder.feed(pcm)
        self.listener.feed(pcm)

    # -- start / stop ----------------------------------------------------------------------
    def _load_prompts(self) -> None:
        """Each direction's prompt from the prompt library (which first adopts the
        installer's files). At start, then again whenever the library changed, but only
        on an idle line. A prompt that cannot be loaded any more keeps the one before it
        playing (the proof names what really played); with none, calls are not recorded."""
        library = self.prompt_library
        try:
            library.sync_installed()
        except (OSError, LibraryError) as exc:
            log.error("prompt library: %s", exc)
        self._prompt_generation = library.generation()
        problems = []
        for direction in ("in", "out"):
            try:
                playlist = library.playlist(direction)
            except (PromptError, LibraryError, OSError) as exc:
                log.error("%s", exc)
                if direction not in self.prompts:
                    problems.append(str(exc))
                continue
            ids = [str(v["version"]) for v in playlist.versions]
            if self._prompt_versions.get(direction) != playlist.versions:
                log.info("announcement for %s calls: %s (%.1f s, sha256 %s)",
                         "incoming" if direction == "in" else "outgoing",
                         " + ".join(ids), playlist.prompt.seconds, playlist.prompt.sha256[:16])
            self.prompts[direction] = playlist.prompt
            self._prompt_versions[direction] = playlist.versions
        self.status.set_fault(
            "announcement",
            phrase("No announcement ({problems}): calls are not recorded until a valid prompt "
                   "is installed", problems="; ".join(problems)) if problems else "",
        )

    def _refresh_prompts_when_idle(self) -> None:
        """Take a newly activated prompt into use, between calls only (daemon thread)."""
        if self.flow.state is not State.IDLE or self._current is not None:
            return
        if self.prompt_library.generation() != self._prompt_generation:
            self._load_prompts()

    def _start_web(self) -> None:
        from callrec_web.app import WebContext, make_app
        from callrec_web.sessions import SessionStore
        from callrec_web.setup_code import FirstStartCode
        from callrec_web.transport import WebTransport
        from callrec_web.users import UserStore

        users = UserStore(self.config.data_dir / "users.json")
        code_file = Path(self.config.runtime_dir) / "setup-code"
        setup_code = FirstStartCode(users, code_file)
        if setup_code() is not None:
            # The code itself stays out of the journal: only the service user can read it.
            log.warning(
                "no account yet: open the web UI and enter the setup code shown by "
                "'callrec setup-code' (file %s)",
                code_file,
            )
        # HTTPS, plain HTTP redirecting to it, or (no certificate) only a page saying how to
        # fix it: callrec_web/transport.py. The page's status carries address and fingerprint.
        self._web = web = WebTransport(self.config.web)
        if web.problem:
            self.status.set_fault("web", web.problem)
        # Logins survive the restart that applies a saved configuration (handover.py).
        self._sessions = sessions = SessionStore(self.config.web.session_idle_minutes * 60,
                                                 self.config.web.session_max_hours * 3600)
        passed = handover.take("sessions")
        if passed is not None:
            try:
                kept = sessions.restore(json.loads(passed))
            except ValueError:
                kept = 0
            log.info("%d web session(s) kept across the restart", kept)
        ctx = WebContext(
            config=self.config,
            store=self.store,
            users=users,
            status=lambda: {**self.status.snapshot(), "web": web.status()},
            setup_code=setup_code,
            https=web.https,
            audit=self.audit,
            selftest=self.selftest,
            # The settings pages edit the file this process was started with.
            settings=ConfigStore(Path(self.config.source), apply=self.request_config_apply,
                                 audit=self.audit)
            if Path(self.config.source).is_file() else None,
            sessions=sessions,
        )
        web.start(make_app(ctx))
        (log.error if web.problem else log.info)("%s", web.describe())

    def start(self) -> None:
        self.notifier.status("starting: checking recordings")
        Path(self.config.runtime_dir).mkdir(parents=True, exist_ok=True, mode=0o750)
        self._load_prompts()
        recovered = self.store.recover()
        if recovered:
            log.warning("%d interrupted recording(s) recovered", len(recovered))
        self.status.check_clock()  # logs it, and the status shows it, from the start
        remembered = handover.take("status")  # a restart in place: the last call, still shown
        if remembered is not None:
            with contextlib.suppress(ValueError):
                self.status.remember(json.loads(remembered))
        self._choose_volume()  # logs and shows where recordings go, before any call
        self.recorder.start()
        self.mount_watcher.start()
        self.housekeeper.start()
        self.housekeeper.request("start")
        self._next_retention = time.monotonic() + self.config.retention.check_interval_minutes * 60
        self.listener.start()
        self.board.start()
        if self.sip is not None:
            self.sip.start()
        self._start_web()
        # Last: its walk of the archive for recordings left in WAV must not slow the start.
        self.transcoder.start()
        record_config_changes(self.audit, self.config, self.audit.directory)
        # The access log is checked in full off this thread (a long log takes seconds on a
        # Pi); a broken chain is a fault on the status page and the LED.
        threading.Thread(target=self._check_audit, name="audit-check", daemon=True).start()
        self.status.publish(self.flow)
        release_free_memory()  # what start-up allocated and dropped
        self.notifier.ready(self._systemd_status())  # the web UI answers: the start job ends

    def stop(self) -> None:
        self.restart = False  # SIGTERM: stop for good, even on the way to a restart
        self._stop.set()

    # -- applying a new configuration --------------------------------------------------------
    def request_config_apply(self) -> str:
        """The web UI saved the configuration (a web thread): NOW if the line is idle, else
        AFTER_CALL; the daemon thread restarts when it is idle (`_apply_config_when_idle`)."""
        self.events.put(ConfigChanged())
        return NOW if self._busy_with() is None else AFTER_CALL

    def _busy_with(self) -> str | None:
        """What a restart would cut now (None: nothing): a call on either line, a recording
        still being closed, a self-test, or a call the privacy button made private ahead."""
        if self.flow.state is not State.IDLE or self.status.finalising:
            return "a call"
        if self.sip is not None and self.sip.status().get("calls"):
            return "a SIP call"
        if self.selftest.running:
            return "the self-test"
        if self.flow.private_until(time.monotonic()) is not None:
            return "the privacy button's window"  # a restart would forget the press
        return None

    def _apply_config_when_idle(self, now: float) -> None:
        """Restart with the saved configuration once nothing is in progress (daemon thread).
        A file that no longer parses (edited by hand meanwhile) is not restarted into."""
        if self._config_saved_at is None or now - self._config_saved_at < CONFIG_APPLY_GRACE_S:
            return
        if self._busy_with() is not None or not self.events.empty():
            return  # events still queued (e.g. the recording just indexed) are handled first
        self._config_saved_at = None
        try:
            load(self.config.source)
        except ConfigError as exc:
            log.error("the new configuration is not applied: %s", exc)
            self.status.set_config_pending(False)
            return
        log.info("applying the new configuration: restarting")
        self.restart = True
        self._stop.set()

    def shutdown(self) -> None:
        """Stop everything in reverse order; a call in progress is closed and kept."""
        if self.restart:  # systemd: reloading until the new process says READY=1
            self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}",
                                 "STATUS=applying a new configuration")
        else:
            self.notifier.stopping()
        if self.flow.state is State.RECORDING:
            for action in self.flow.handle(ev.Hook(off_hook=False)):
                self._do(action)
        self.player.stop()
        self.status.publish(self.flow, running=False)
        if self._web is not None:
            self._web.stop()
            if self.restart and self._sessions is not None:
                handover.pass_on("sessions", json.dumps(self._sessions.export()).encode())
        if self.restart:  # the status page still shows the last call after the restart
            handover.pass_on("status", json.dumps(self.status.memory()).encode())
        if self.sip is not None:
            self.sip.stop()  # its recordings in progress are closed and kept
        self.board.stop()
        self.listener.stop()
        self.mount_watcher.stop()
        self.recorder.stop()
        self.transcoder.stop()
        self.housekeeper.stop()
        self.store.close()
        self.notifier.close()

    def run(self) -> None:
        """Start, then handle events until stop() (or SIGTERM via the CLI)."""
        # systemd's watchdog kills with SIGABRT: every thread's stack then goes to the journal
        # (code locations only), which shows where the loop or the recorder hung.
        faulthandler.enable()
        try:
            self.start()
            self.loop()
        finally:
            self.shutdown()

    def loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                event: ev.Event = self.events.get(timeout=timeout)
            except queue.Empty:
                event = ev.Tick()
                next_tick = time.monotonic() + TICK_S
            self.handle(event)
            self._tell_systemd()

    # -- systemd: the status line and the watchdog (daemon thread) ---------------------------
    def _tell_systemd(self) -> None:
        """After each event: the status line when it changed, and the watchdog ping (paced
        to half its interval). Only this loop pings: if it hangs, systemd restarts us."""
        if not self.notifier.enabled:
            return
        now = time.monotonic()
        if now - self._systemd_status_at >= SYSTEMD_STATUS_EVERY_S:
            self._systemd_status_at = now
            self.notifier.status(self._systemd_status())
        if self.watchdog.enabled and self._recorders_keep_up(now):
            self.watchdog.ping()

    def _recorders_keep_up(self, now: float) -> bool:
        """The line's recorder thread runs, and no recorder thread sits on queued audio."""
        with self._backlogs_lock:
            watched = list(self._backlogs.items())
        problem = ""
        alive, _ = self.recorder.health()
        if not alive:
            problem = "the recorder thread ended"
        for recorder, backlog in watched:
            alive, queued = recorder.health()
            if alive and backlog.stalled(queued, now):  # a SIP call's ends with its call
                problem = f"a recorder thread has not taken its queue for {RECORDER_STALL_S:.0f} s"
        if problem and not self._recorders_stalled:
            log.error("%s: watchdog pings stop, systemd restarts the service", problem)
        elif not problem and self._recorders_stalled:
            log.warning("the recorders keep up again: watchdog pings resume")
        self._recorders_stalled = bool(problem)
        return not problem

    def _systemd_status(self) -> str:
        """One short line for `systemctl status`: state, SIP calls, fault names (no details,
        nothing personal), e.g. "idle; 2 SIP calls; faults: none"."""
        snap = self.status.snapshot()  # also asks the SIP line for its counters
        parts = [str(snap.get("state") or self.flow.state.value)]
        sip = snap.get("sip")
        if isinstance(sip, dict):
            calls = int(sip.get("calls", 0))
            parts.append(f"{calls} SIP call{'' if calls == 1 else 's'}")
        faults = sorted({str(f.get("part")) for f in snap.get("faults") or []})
        parts.append("faults: " + (", ".join(faults) if faults else "none"))
        return "; ".join(parts)

    # -- one event -------------------------------------------------------------------------
    def handle(self, event: ev.Event) -> None:
        if self.mcu_recovery.observe(event):
            log.warning(
                "HAT MCU link down for %.0f s: pulsing its reset line",
                event.at - (self.mcu_recovery.down_since or event.at),
            )
            self.board.reset_mcu()
        if isinstance(event, ev.BoardFault):
            self.status.set_fault(event.part,
                                  "" if event.ok else event.detail or phrase("failed"))
        elif isinstance(event, StorageFault):
            self.status.set_fault(event.part, event.detail)
            if event.part == "storage" and event.detail and self.flow.writing:
                self._write_failed = True  # the recorder stopped writing this call
        elif isinstance(event, VolumesChanged):
            # Probing is done off this thread: the recorder checks the volume it writes to,
            # retention reports the volumes; the next recording probes them again.
            self.recorder.check_volume()
            self.housekeeper.request(Housekeeper.VOLUMES_CHANGED)
            self.transcoder.rescan()  # a stick that came back may hold some in WAV
        elif isinstance(event, RecordingIndexed):
            self.status.recording_done(event.meta)
            if event.meta is not None:
                self.transcoder.submit(str(event.meta["id"]))
            # Checked on the housekeeping thread: statvfs on a dying stick can block.
            self.housekeeper.request(Housekeeper.IF_LOW_SPACE)
        elif isinstance(event, SipCallFinished):
            self.status.call_finished(event.outcome, event.direction)
        elif isinstance(event, ConfigChanged):
            self._config_saved_at = event.at
            self.status.set_config_pending(True)
            busy = self._busy_with()
            log.info("configuration saved: %s", f"applies when {busy} ends" if busy
                     else "restarting to apply it")
        elif isinstance(event, ev.Tick) and event.at >= self._next_retention:
            self._next_retention = event.at + self.config.retention.check_interval_minutes * 60
            self.housekeeper.request("schedule")
        if isinstance(event, ev.Tick):
            self._refresh_prompts_when_idle()
        clock_changed = isinstance(event, ev.Tick) and self.status.check_clock()
        if clock_changed and self.status.clock_synchronised:
            self.housekeeper.request("clock synchronised")  # the age rule waited for it
        if isinstance(event, RecordingIndexed | StorageFault):
            self.status.set_storage(self._storage_status())
        elif isinstance(event, AnnouncementDone):
            # A prompt that played clears an earlier playback failure.
            self.status.set_fault("playback", "" if event.ok else event.error)
        before = self.flow.state
        if isinstance(event, ev.PrivacyButton) and event.pressed:
            log.info("privacy button pressed (%s)", self.flow.state.value)
        for action in self.flow.handle(event):
            self._do(action)
        self._update_led()
        if self.flow.state is not before:
            self.listener.set_call_state(self.flow.state.value)
        if (self.flow.state is not before or clock_changed
                or not isinstance(event, ev.Tick | ev.LoopVoltage)):
            self.status.publish(self.flow)
            self._published_at = event.at
        elif self.sip is not None and event.at - self._published_at >= SIP_STATUS_EVERY_S:
            # The SIP line's counters change without events here (packets, drops): the
            # status file `callrec status` reads is refreshed every few seconds.
            self.status.publish(self.flow)
            self._published_at = event.at
        self._apply_config_when_idle(event.at)

    def _storage_status(self) -> dict[str, Any]:
        hk = self.housekeeper
        return {
            "volumes": hk.report,
            "text": hk.report_text,
            "retention": describe_policy(hk.policy),
            "last_run": hk.last_run.isoformat(timespec="seconds") if hk.last_run else None,
            "erased_by_retention": hk.erased_total,
            "encrypted": self.store.keys is not None,
            # "otp", "file" or "none"; the warning says in plain words what "none" means.
            "key_binding": (self.store.keys.binding_kind or "none") if self.store.keys else None,
            "key_binding_warning": self.store.keys.unbound_warning if self.store.keys else None,
            "audio_format": self.config.storage.audio_format,
        }

    def _do(self, action: Action) -> None:
        handler = getattr(self, f"_do_{type(action).__name__}")
        handler(action)

    def _do_StartCapture(self, a: StartCapture) -> None:
        rec_id = new_recording_id()
        self._current = _CurrentCall(rec_id, a.call, datetime.now(UTC).isoformat(), clock_state())
        self._write_failed = False
        self.recorder.begin(rec_id)

    def _do_StartAnnouncement(self, a: StartAnnouncement) -> None:
        prompt = self.prompts.get(a.direction)
        if prompt is None:
            self.events.put(AnnouncementDone(ok=False, error="no valid prompt installed"))
            return
        self.selftest.preempt()  # a self-test gives the line back before the relay closes
        self.board.set_relay(True)
        proof = self.player.play(
            prompt, lambda ok, err: self.events.put(AnnouncementDone(ok=ok, error=err)),
            self._prompt_versions.get(a.direction, ()),
        )
        if self._current is not None:
            self._current.proof = proof

    def _do_StopAnnouncement(self, a: StopAnnouncement) -> None:
        self.player.stop()
        self.board.set_relay(False)

    def _do_CommitCapture(self, a: CommitCapture) -> None:
        self.board.set_relay(False)
        cur = self._current
        if cur is None:
            return
        if cur.proof is not None and cur.call.answered_at is not None:
            # From the answer event (stamped when the board reported it) to the first prompt
            # frame handed to the audio device.
            self.status.record_latency(cur.proof.first_frame_at - cur.call.answered_at)
        self.recorder.commit({**self._meta(cur), "status": "recording"})

    def _do_DiscardCapture(self, a: DiscardCapture) -> None:
        self.board.set_relay(False)
        self.recorder.discard()
        self._current = None

    def _do_StopRecording(self, a: StopRecording) -> None:
        cur = self._current
        self._current = None
        if cur is None:
            return
        meta = {
            **self._meta(cur),
            "ended_at": datetime.now(UTC).isoformat(),
            "end_reason": a.reason,
        }
        self.status.recording_finishing()
        self.recorder.finish(
            meta,
            lambda final: self.events.put(RecordingIndexed(final)),
            tail_s=self.board.audio.capture_latency_s,
        )

    def _do_CallFinished(self, a: CallFinished) -> None:
        log.info("call finished: %s (%s)", a.outcome, a.direction)
        self.status.call_finished(a.outcome, a.direction)
        release_free_memory()

    def _meta(self, cur: _CurrentCall) -> dict[str, Any]:
        call = cur.call
        return {
            "id": cur.rec_id,
            "started_at": cur.started_at,
            "direction": call.direction,
            "line": call.line,
            "caller_number": call.number if call.direction == "in" else None,
            "caller_name": call.name if call.direction == "in" else None,
            "caller_absence": call.absence if call.direction == "in" else None,
            "called_number": (call.digits or None) if call.direction == "out" else None,
            "ring_count": call.ring_count,
            "keys_during_prompt": call.keys_during_prompt or None,
            "answered_by": call.answered_by,
            "announcement": cur.proof.as_dict() if cur.proof else None,
            "audio": {"sample_rate": self.config.board.sample_rate, "channels": 1},
            "firmware": __version__,
            **recording_fields(cur.clock),
        }
