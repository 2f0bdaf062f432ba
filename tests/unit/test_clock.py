"""The clock's state (callrec.clock) and where it shows: recordings, status, retention, sheet.

Every test injects the state: this machine's own clock may be synchronised or not.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from callrec import clock
from callrec.callflow import CallInfo
from callrec.clock import (
    KERNEL,
    OVERRIDE,
    TIMESYNCD,
    UNKNOWN,
    CachedClock,
    ClockState,
    read_clock_state,
    recording_fields,
)
from callrec.config import Config, ControllerConfig, RetentionConfig
from callrec.privacy.sheet import information_sheet
from callrec.status import CLOCK_FAULT_AFTER_S, StatusBoard
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.storage.wavstream import StreamingWavWriter

SYNCED = ClockState(True, TIMESYNCD, "synchronised")
UNSYNCED = ClockState(False, KERNEL, "no time server yet")


def never(*_: object) -> int | None:
    raise AssertionError("the kernel is not asked when timesyncd's flag says synchronised")


# -- reading the state ---------------------------------------------------------------------------
def test_timesyncd_flag_says_synchronised_without_asking_the_kernel(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    state = read_clock_state(flag, never, environ={})
    assert state == ClockState(True, TIMESYNCD, state.detail) and state.known


@pytest.mark.parametrize(("max_error_us", "synchronised"), [
    (16_000_000, False),  # saturated: no NTP client keeps it down (also timesyncd before sync)
    (15_999_999, True),
    (120_000, True),  # chrony or ntpd discipline the kernel clock
])
def test_without_the_flag_the_kernels_maximum_error_decides(
    tmp_path: Path, max_error_us: int, synchronised: bool
) -> None:
    state = read_clock_state(tmp_path / "absent", lambda: max_error_us, environ={})
    assert state.synchronised is synchronised and state.source == KERNEL and state.known


def test_no_adjtimex_is_unknown_and_untrusted(tmp_path: Path) -> None:
    state = read_clock_state(tmp_path / "absent", lambda: None, environ={})
    assert state.source == UNKNOWN and not state.known and not state.synchronised


def test_the_environment_overrides_for_the_simulator(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    forced = read_clock_state(flag, never, environ={"CALLREC_CLOCK": "unsynchronised"})
    assert not forced.synchronised and forced.source == OVERRIDE
    assert read_clock_state(tmp_path / "x", never,
                            environ={"CALLREC_CLOCK": "synchronised"}).synchronised
    # Anything else is ignored: the real reading.
    assert read_clock_state(flag, never, environ={"CALLREC_CLOCK": "yes"}).source == TIMESYNCD


def test_the_real_kernel_call_answers_on_linux() -> None:
    error = clock.kernel_max_error_us()
    assert error is None or error >= 0  # whatever this machine's state, the call works


def test_the_state_is_cached_for_a_few_seconds() -> None:
    reads: list[ClockState] = []
    states = iter([UNSYNCED, SYNCED])
    now = [100.0]

    def read() -> ClockState:
        reads.append(next(states))
        return reads[-1]

    cached = CachedClock(read, ttl_s=5.0, monotonic=lambda: now[0])
    assert cached() == UNSYNCED and cached() == UNSYNCED and len(reads) == 1
    now[0] += 4.9
    assert cached() == UNSYNCED
    now[0] += 0.2
    assert cached() == SYNCED and len(reads) == 2


def test_recording_fields_explain_an_unsynchronised_clock() -> None:
    assert recording_fields(SYNCED) == {"clock_synchronised": True}
    fields = recording_fields(UNSYNCED)
    assert fields["clock_synchronised"] is False
    assert "not been synchronised" in fields["clock_note"]


# -- one reading for retention, the access log and the self-test ---------------------------------
def test_retention_the_access_log_and_the_selftest_use_the_same_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callrec import audit, housekeeping, selftest_run

    for state in (SYNCED, UNSYNCED):
        monkeypatch.setattr(clock, "_cached", lambda state=state: state)
        assert housekeeping.clock_trusted() is state.synchronised
        assert audit._default_clock_trusted() is state.synchronised
        measured = selftest_run.measure_clock(lambda state=state: state)
        assert measured.synchronized is state.synchronised and measured.source == state.source
    unknown = selftest_run.measure_clock(lambda: ClockState(False, UNKNOWN))
    assert unknown.synchronized is None  # the self-test says "unknown", not "unsynchronised"


# -- recordings ------------------------------------------------------------------------------------
def test_analog_recording_meta_carries_the_clock_at_its_start() -> None:
    from callrec.daemon import Daemon, _CurrentCall

    daemon = cast(Any, SimpleNamespace(config=Config()))
    call = CallInfo(direction="in", line="line1", number="0612345678")
    unsynced = Daemon._meta(daemon, _CurrentCall("r1", call, "2024-05-01T10:00:00+00:00",
                                                 UNSYNCED))
    assert unsynced["clock_synchronised"] is False and unsynced["clock_note"]
    synced = Daemon._meta(daemon, _CurrentCall("r1", call, "t", SYNCED))
    assert synced["clock_synchronised"] is True and "clock_note" not in synced


def test_sip_recording_meta_takes_the_clock_when_the_recording_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callrec.sip.line import SipLine, _CallRecording

    monkeypatch.setattr(clock, "_cached", lambda: UNSYNCED)
    rec = _CallRecording("r1", CallInfo(direction="out", line="sip", digits="0145"), "t",
                         cast(Any, None))
    monkeypatch.setattr(clock, "_cached", lambda: SYNCED)  # synchronised during the call
    meta = SipLine._meta(cast(Any, None), rec)
    assert meta["clock_synchronised"] is False and meta["clock_note"]


def test_recovery_keeps_the_clock_fields(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    rec_id = new_recording_id()
    store.write_sidecar({"id": rec_id, "status": "recording", "audio": {"sample_rate": 8000},
                         **recording_fields(UNSYNCED)})
    writer = StreamingWavWriter(store.prepare(rec_id), 8000)
    writer.write(b"\x01\x00" * 4000)
    writer.sync()
    os.close(writer._fd)  # the process dies
    store.close()
    again = RecordingStore(tmp_path)
    assert again.recover() == [rec_id]
    for meta in (again.get(rec_id), again.load_sidecar(rec_id)):
        assert meta is not None and meta["status"] == "interrupted"
        assert meta["clock_synchronised"] is False and meta["clock_note"]
    again.close()


def test_the_subject_sheet_says_which_times_are_unverified() -> None:
    docs = [{"id": "20240501T090000Z-0123abcd", "started_at": "2024-05-01T09:00:00Z",
             "direction": "in", "clock_synchronised": False},
            {"id": "20240502T090000Z-0123abcd", "started_at": "2024-05-02T09:00:00Z",
             "direction": "in", "clock_synchronised": True}]
    html = information_sheet(ControllerConfig(), RetentionConfig(), docs, [], "t")
    assert html.count("heure non vérifiée") == 1 and html.count("time unverified") == 1
    assert "2024-05-01T09:00:00Z (time unverified" in html


# -- the status --------------------------------------------------------------------------------
class Board:
    def __init__(self) -> None:
        self.fault_led = False
        self.recording_led = False
        self.mcu = SimpleNamespace(connected=True, version="1")
        self.audio = SimpleNamespace(is_open=True)

    def set_fault_led(self, on: bool) -> None:
        self.fault_led = on


def flow() -> Any:
    return SimpleNamespace(state=SimpleNamespace(value="idle"), call=None,
                           not_recorded_reason="", private_until=lambda now: None)


def test_status_shows_the_clock_and_faults_only_when_unsynchronised_for_long(
    tmp_path: Path,
) -> None:
    state = [UNSYNCED]
    now = [1000.0]
    board = Board()
    config = Config(runtime_dir=str(tmp_path))
    status = StatusBoard(config, cast(Any, board), clock=lambda: state[0],
                         monotonic=lambda: now[0])
    assert status.check_clock() is True  # first reading
    status.publish(flow())
    snap = status.snapshot()
    assert snap["clock"] == {"synchronised": False, "source": KERNEL,
                             "detail": "no time server yet"}
    assert snap["faults"] == [] and not board.fault_led  # just booted: a warning, no fault
    assert status.check_clock() is False  # nothing changed: the daemon does not publish
    now[0] += CLOCK_FAULT_AFTER_S
    assert status.check_clock() is True
    status.publish(flow())
    [fault] = status.snapshot()["faults"]
    assert fault["part"] == "clock" and "10 minutes after start" in fault["detail"]
    assert board.fault_led
    state[0] = SYNCED
    assert status.check_clock() is True and status.clock_synchronised
    status.publish(flow())
    snap = status.snapshot()
    assert snap["faults"] == [] and not board.fault_led
    assert snap["clock"]["synchronised"] is True
