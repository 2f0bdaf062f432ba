"""The self-test's I/O: takes the measurements that `selftest.py` judges.

Two ways to run, one set of checks:

- `run_direct(config)`: the daemon is stopped, so this process opens the board itself (the
  same `make_board` and backends as the daemon: the HAT, or the line simulator's pty and
  PulseAudio), opens the store read-only in effect (nothing is written but the test file),
  runs every check and closes everything.
- `SelfTestService`: inside the running daemon, which owns the board. The web layer (page
  and POST /api/v1/selftest) asks it; it runs the checks on a worker thread of its own, only
  while the line is idle (`LineBusy` otherwise: HTTP 409), and gives the line back at once
  when a call starts (`preempt()`, called by the daemon before it closes the relay for a
  prompt): the main loop is never blocked and never waits for more than one 20 ms chunk.

No shell-outs: the clock's state comes from callrec.clock (timesyncd's flag file, else
adjtimex(2)).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from callrec import selftest as st
from callrec.board.hat_protocol import PROTOCOL_VERSION
from callrec.clock import ClockState, read_clock_state
from callrec.config import Config
from callrec.storage.atomic_json import write_atomic
from callrec.storage.volumes import SD, VolumeSet, label, problem_of

if TYPE_CHECKING:
    from callrec.board.board import Board
    from callrec.storage.keystore import KeyStore
    from callrec.storage.recordings import RecordingStore

log = logging.getLogger(__name__)

TEST_FILE_PREFIX = ".callrec-selftest"
TEST_FILE_BYTES = 64 * 1024
CHUNK_S = 0.02
BASELINE_S = 0.3
LEAD_S = 0.1  # silence before the tone (primes the playback stream)
TAIL_S = 1.0  # listening after the tone: the capture's latency and buffers
RESULT_FILE = "selftest.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- line access: who may use the relay and the audio, and when to stop --------------------------
class LineGuard:
    """Serialises the self-test's use of the line with calls.

    `busy()` says why the line may not be used now (None: idle). The daemon calls `preempt()`
    before it closes the relay for a prompt: the test stops within a chunk, opens the relay and
    gives the line back before `preempt()` returns, so the relay commands stay in order.
    """

    def __init__(self, busy: Callable[[], str | None] = lambda: None) -> None:
        self.busy = busy
        self._lock = threading.Lock()
        self._abort = threading.Event()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            reason = self.busy()
            if reason:
                raise st.LineBusy(reason)
            self._abort.clear()
            yield

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait; True if a call took the line meanwhile."""
        return self._abort.wait(seconds)

    def preempt(self) -> None:
        self._abort.set()
        with self._lock:  # the test has given the line back
            pass


# -- the checks ------------------------------------------------------------------------------------
def measure_mcu(board: Board) -> st.McuMeasure:
    mcu = board.mcu
    started = time.monotonic()
    state = mcu.request_state(timeout_s=1.0)
    round_trip = time.monotonic() - started if state is not None else None
    stats = mcu.stats()
    bad = sum(stats.get(k, 0) for k in ("bad_crc", "malformed", "oversize", "truncated",
                                        "invalid"))
    return st.McuMeasure(
        backend=board.config.backend, connected=mcu.connected, firmware=mcu.version,
        protocol=mcu.protocol, expected_protocol=PROTOCOL_VERSION,
        state_round_trip_s=round_trip,
        rx_errors=state.rx_errors if state is not None else None, bad_frames=bad,
        watchdog_expired=state.watchdog_expired if state is not None else None)


def measure_pins(board: Board, fault_expected: bool | None) -> st.PinsMeasure:
    """`fault_expected`: what the fault LED should show (the daemon's faults); None: no daemon,
    so the fault LED gets a lamp test (on, read back, off, read back)."""
    led: tuple[bool, bool] | None = None
    if board.mcu_reset_released is not None:  # the pins are claimed
        board.set_recording_led(True)
        on = board.recording_led
        board.set_recording_led(False)
        led = (on, board.recording_led)
    lamp: tuple[bool, bool] | None = None
    fault: bool | None = None
    if fault_expected is None:
        board.set_fault_led(True)
        s_on = board.mcu.request_state()
        board.set_fault_led(False)
        s_off = board.mcu.request_state()
        if s_on is not None and s_off is not None:
            lamp = (bool(s_on.fault_led), bool(s_off.fault_led))
        fault = s_off.fault_led if s_off is not None else None
    else:
        state = board.mcu.request_state()
        fault = state.fault_led if state is not None else None
    return st.PinsMeasure(privacy_pressed=board.privacy_pressed, recording_led=led,
                          fault_led_expected=fault_expected, fault_led=fault,
                          fault_led_test=lamp, mcu_reset_released=board.mcu_reset_released)


class _Capture:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, pcm: bytes) -> None:  # PortAudio's thread
        self.frames.append(pcm)

    def take(self) -> np.ndarray:
        frames, self.frames = self.frames, []
        data = b"".join(frames)
        return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")


def measure_audio(board: Board, guard: LineGuard) -> st.AudioMeasure:
    """Play the test tone through the announcement path (relay closed) and listen to the
    capture side. Call inside `guard.hold()`."""
    audio, backend = board.audio, board.config.backend
    if not audio.is_open or not audio.capture_alive():
        return st.AudioMeasure(backend, audio.is_open, audio.capture_alive(), None, None, None)
    rate = audio.rate
    chunk = int(rate * CHUNK_S) * 2
    pcm = (bytes(int(rate * LEAD_S) * 2) + st.tone(rate).tobytes()
           + bytes(int(rate * 0.1) * 2))
    capture = _Capture()
    closed: bool | None = None
    opened: bool | None = None
    error = ""
    interrupted = False
    baseline = np.zeros(0, dtype=np.int16)
    with audio.tap(capture):
        try:
            interrupted = guard.sleep(BASELINE_S)
            baseline = capture.take()
            if not interrupted:
                board.set_relay(True)
                state = board.mcu.request_state()
                closed = state.relay if state is not None else None
                for offset in range(0, len(pcm), chunk):
                    if guard.aborted:
                        interrupted = True
                        break
                    audio.write(pcm[offset: offset + chunk])
                interrupted = interrupted or guard.sleep(TAIL_S)
        except OSError as exc:  # AudioDeviceError is a RuntimeError: caught below
            error = str(exc)
        except RuntimeError as exc:
            error = str(exc)
        finally:
            board.set_relay(False)
            if guard.aborted:
                interrupted = True  # give the line back now: the prompt is waiting
            else:
                state = board.mcu.request_state()
                opened = (not state.relay) if state is not None and state.relay is not None \
                    else None
    captured = capture.take()
    loop = st.analyse_loopback(captured, baseline, rate) if len(captured) else None
    return st.AudioMeasure(backend, True, True, closed, opened, loop, error, interrupted)


def _write_read_delete(root: Path) -> tuple[float, str]:
    """Write a file, fsync it and its folder, read it back, compare, delete; (fsync s, error)."""
    data = secrets.token_bytes(TEST_FILE_BYTES)
    path = root / f"{TEST_FILE_PREFIX}-{os.getpid()}-{secrets.token_hex(4)}"
    step = "create"
    fsync_s = 0.0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            step = "write"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            step = "fsync"
            started = time.monotonic()
            os.fsync(fd)
            fsync_s = time.monotonic() - started
        finally:
            os.close(fd)
        step = "read back"
        with open(path, "rb") as f:
            back = f.read()
        if back != data:
            return fsync_s, "the file read back differs from what was written"
        step = "delete"
        path.unlink()
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        return fsync_s, f"{step} failed: {problem_of(exc)}"
    return fsync_s, ""


def measure_storage(config: Config) -> list[st.VolumeMeasure]:
    volumes = VolumeSet(config.data_dir, config.storage.usb_mount_point)
    out = []
    for h in volumes.check():
        measure = st.VolumeMeasure(h.name, label(h.name), h.present and h.mounted, h.error,
                                   False, "", None, h.free_bytes, h.total_bytes)
        if h.name != SD and not (h.present and h.mounted):
            out.append(measure)
            continue
        fsync_s, error = _write_read_delete(h.root)
        out.append(st.VolumeMeasure(h.name, label(h.name), True, h.error, not error, error,
                                    fsync_s, h.free_bytes, h.total_bytes))
    return out


def measure_index(store: RecordingStore | None) -> tuple[int | None, str]:
    if store is None:
        return None, ""
    try:
        store.page(0, 1)
        return store.count(), ""
    except Exception as exc:  # a damaged view: say so, whatever it is
        return None, str(exc) or type(exc).__name__


def measure_clock(read: Callable[[], ClockState] = read_clock_state) -> st.ClockMeasure:
    """The clock now, read afresh (callrec.clock: timesyncd's flag, else adjtimex(2))."""
    now = datetime.now(UTC)
    state = read()
    return st.ClockMeasure(now, state.synchronised if state.known else None, state.source)


def measure_keys(config: Config, keys: KeyStore | None, error: str = "",
                 missing_fresh: bool = False) -> st.KeysMeasure:
    if keys is None:
        return st.KeysMeasure(config.storage.encrypt, False, None, None, None, error,
                              missing_fresh)
    present = keys.device_key_path.exists()
    return st.KeysMeasure(config.storage.encrypt, present, keys.device_key_id,
                          keys.binding_kind, keys.unbound_warning,
                          "" if present else f"{keys.device_key_path} is gone")


@dataclass
class Subjects:
    """What the checks run on."""

    config: Config
    board: Board
    store: RecordingStore | None
    keys: st.KeysMeasure
    fault_expected: bool | None  # None: lamp test of the fault LED (no daemon)


def run_checks(s: Subjects, guard: LineGuard, mode: str) -> st.Report:
    """Every item, in order; the line's items inside `guard.hold()` (LineBusy if not idle)."""
    started = _now()
    results: list[st.CheckResult] = [st.judge_mcu(measure_mcu(s.board))]
    with guard.hold():
        results.append(st.judge_pins(measure_pins(s.board, s.fault_expected)))
        results.append(st.judge_audio(measure_audio(s.board, guard)))
    results.append(st.judge_storage(measure_storage(s.config),
                                    s.config.retention.min_free_mb * 1_000_000))
    results.append(st.judge_index(*measure_index(s.store)))
    results.append(st.judge_clock(measure_clock()))
    results.append(st.judge_keys(s.keys))
    return st.Report(started, _now(), mode, s.board.config.backend, tuple(results))


def save_report(config: Config, report: st.Report) -> None:
    """The last result, for the web page and the diagnostics bundle (best effort)."""
    path = Path(config.runtime_dir) / RESULT_FILE
    try:
        write_atomic(path, json.dumps(report.as_dict(), indent=1).encode())
    except OSError as exc:
        log.debug("self-test result not saved: %s", exc)


def load_report(config: Config) -> st.Report | None:
    try:
        return st.Report.from_dict(json.loads((Path(config.runtime_dir) / RESULT_FILE)
                                              .read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# -- daemon stopped: this process opens the board ------------------------------------------------
READY_S = 6.0


def run_direct(config: Config) -> st.Report:
    from callrec import events as ev
    from callrec.board.backends import make_board
    from callrec.storage.keystore import DeviceKeyMissing, KeyStoreError
    from callrec.storage.open_store import open_keys
    from callrec.storage.recordings import RecordingStore

    events: queue.SimpleQueue[ev.Event] = queue.SimpleQueue()  # nobody decides here
    board = make_board(config.board, events.put)
    keys = None
    keys_error, fresh = "", False
    try:
        keys = open_keys(config, create_device_key=False)
    except DeviceKeyMissing as exc:
        fresh = " recording keys exist" not in str(exc)
        keys_error = str(exc)
    except KeyStoreError as exc:
        keys_error = str(exc)
    store = None
    store_error = ""
    if keys is not None or not config.storage.encrypt:
        try:
            store = RecordingStore(config.data_dir, keys,
                                   usb_mount_point=config.storage.usb_mount_point)
        except Exception as exc:  # a damaged index is this check's finding, whatever it is
            store_error = str(exc) or type(exc).__name__
    try:
        board.start()
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline and not (
                board.mcu.connected and board.audio.is_open and board.audio.capture_alive()):
            time.sleep(0.1)
        if board.audio.is_open:
            time.sleep(1.0)  # PortAudio's first capture callbacks: let them settle
        subjects = Subjects(config, board, store,
                            measure_keys(config, keys, keys_error, fresh), None)
        report = run_checks(subjects, LineGuard(), "direct")
        if store_error:
            results = tuple(st.judge_index(None, store_error) if r.item == "index" else r
                            for r in report.results)
            report = st.Report(report.started_at, report.finished_at, report.mode,
                               report.backend, results)
    finally:
        board.stop()
        if store is not None:
            store.close()
    save_report(config, report)
    return report


# -- daemon running: a worker thread, only while the line is idle ---------------------------------
class _Run:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: st.Report | BaseException | None = None


class SelfTestService:
    """The running daemon's self-test: `run()` from a web request thread, `preempt()` from the
    daemon's thread. One run at a time; a second request waits for the running one."""

    RUN_TIMEOUT_S = 60.0

    def __init__(self, config: Config, board: Board, store: RecordingStore,
                 busy: Callable[[], str | None], faults: Callable[[], bool]) -> None:
        self.config, self.board, self.store = config, board, store
        self.guard = LineGuard(busy)
        self._faults = faults
        self._lock = threading.Lock()
        self._current: _Run | None = None
        self._last: st.Report | None = None

    @classmethod
    def for_daemon(cls, daemon: Any) -> SelfTestService:
        """The service on a `Daemon`'s board and store: the line is busy unless the analog
        line is idle and no SIP call is up; the fault LED should show the status's faults."""

        def busy() -> str | None:
            snap = daemon.status.snapshot()
            sip = snap.get("sip") or {}
            if daemon.flow.state.value != "idle" or sip.get("calls"):
                return st.BUSY
            return None

        return cls(daemon.config, daemon.board, daemon.store, busy,
                   lambda: bool(daemon.status.snapshot().get("faults")))

    def preempt(self) -> None:
        """A call needs the line: the test stops and gives it back (daemon thread)."""
        self.guard.preempt()

    @property
    def running(self) -> bool:
        """Whether a run holds the line now (the daemon waits for it before a restart)."""
        return self._current is not None

    def last(self) -> dict[str, Any] | None:
        report = self._last or load_report(self.config)
        return report.as_dict() if report is not None else None

    def run(self) -> dict[str, Any]:
        """Run the checks (or join the run in progress) and return the report; raises
        LineBusy when a call is in progress."""
        with self._lock:
            current = self._current
            if current is None:
                reason = self.guard.busy()
                if reason:
                    raise st.LineBusy(reason)
                current = self._current = _Run()
                threading.Thread(target=self._work, args=(current,), name="selftest",
                                 daemon=True).start()
        if not current.done.wait(self.RUN_TIMEOUT_S):
            raise TimeoutError("the self-test did not finish in time")
        result = current.result
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        return result.as_dict()

    def _work(self, run: _Run) -> None:
        result: st.Report | BaseException
        try:
            subjects = Subjects(self.config, self.board, self.store,
                                measure_keys(self.config, self.store.keys), self._faults())
            result = run_checks(subjects, self.guard, "daemon")
            self._last = result
            save_report(self.config, result)
            log.info("self-test: %s (%s)", result.overall,
                     ", ".join(f"{r.item} {r.status}" for r in result.results))
        except BaseException as exc:  # handed to the waiting request
            if not isinstance(exc, st.LineBusy):
                log.exception("self-test failed")
            result = exc
        with self._lock:
            run.result = result
            self._current = None
            run.done.set()
