"""The self-test's verdicts (callrec.selftest: pure): measurements in, ok/warn/fail out."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from callrec import selftest as st

RATE = 8000


def _mcu(**kw: object) -> st.McuMeasure:
    base: dict[str, object] = dict(backend="hat", connected=True, firmware="0.1.0", protocol=1,
                                   expected_protocol=1, state_round_trip_s=0.004)
    return st.McuMeasure(**{**base, **kw})  # type: ignore[arg-type]


def test_mcu_verdicts() -> None:
    good = st.judge_mcu(_mcu())
    assert good.status == st.OK and "0.1.0" in good.detail and "4 ms" in good.detail
    silent = st.judge_mcu(_mcu(connected=False, state_round_trip_s=None))
    assert silent.status == st.FAIL and "UART" in silent.remedy
    sim = st.judge_mcu(_mcu(backend="sim", connected=False, state_round_trip_s=None))
    assert sim.status == st.FAIL and "callrec sim line" in sim.remedy
    assert st.judge_mcu(_mcu(protocol=2)).status == st.FAIL
    assert st.judge_mcu(_mcu(state_round_trip_s=None)).status == st.FAIL
    noisy = st.judge_mcu(_mcu(rx_errors=2, bad_frames=1))
    assert noisy.status == st.WARN and "3 damaged" in noisy.detail
    assert st.judge_mcu(_mcu(watchdog_expired=True)).status == st.WARN
    assert st.judge_mcu(_mcu(firmware=None)).status == st.WARN


def _pins(**kw: object) -> st.PinsMeasure:
    base: dict[str, object] = dict(privacy_pressed=False, recording_led=(True, False),
                                   fault_led_expected=False, fault_led=False,
                                   mcu_reset_released=True)
    return st.PinsMeasure(**{**base, **kw})  # type: ignore[arg-type]


def test_pins_verdicts() -> None:
    assert st.judge_pins(_pins()).status == st.OK
    assert st.judge_pins(_pins(fault_led_expected=None, fault_led_test=(True, False))).status \
        == st.OK
    assert st.judge_pins(_pins(fault_led_expected=None, fault_led_test=(False, False))).status \
        == st.FAIL
    stuck = st.judge_pins(_pins(privacy_pressed=True))
    assert stuck.status == st.WARN and "GPIO17" in stuck.remedy
    assert st.judge_pins(_pins(recording_led=(False, False))).status == st.FAIL
    assert st.judge_pins(_pins(privacy_pressed=None)).status == st.FAIL
    assert st.judge_pins(_pins(mcu_reset_released=None)).status == st.FAIL
    wrong = st.judge_pins(_pins(fault_led_expected=True, fault_led=False))
    assert wrong.status == st.WARN and "expected on" in wrong.detail
    assert st.judge_pins(_pins(fault_led=None)).status == st.FAIL
    # A failure and a warning: failed, and both remedies given.
    both = st.judge_pins(_pins(recording_led=(True, True), privacy_pressed=True))
    assert both.status == st.FAIL and "GPIO27" in both.remedy and "GPIO17" in both.remedy


def _echo(gain_db: float = -6.0, delay_s: float = 0.25, noise: float = 30.0,
          cut_s: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """What the capture side hears: noise, then the tone `delay_s` later at `gain_db`."""
    rng = np.random.default_rng(seed)
    played = st.tone(RATE).astype(np.float64) * 10 ** (gain_db / 20)
    if cut_s:
        played = played[: int(len(played) - cut_s * RATE)]
    heard = rng.normal(0, noise, int(RATE * 1.6))
    start = int(delay_s * RATE)
    heard[start: start + len(played)] += played
    baseline = rng.normal(0, noise, int(RATE * 0.3))
    return np.clip(heard, -32768, 32767).astype(np.int16), baseline.astype(np.int16)


def _audio(lb: st.Loopback | None, **kw: object) -> st.AudioMeasure:
    base: dict[str, object] = dict(backend="hat", audio_open=True, capture_alive=True,
                                   relay_closed=True, relay_opened=True, loopback=lb)
    return st.AudioMeasure(**{**base, **kw})  # type: ignore[arg-type]


def test_the_tone_that_came_back_is_found_by_level_purity_and_length() -> None:
    lb = st.analyse_loopback(*_echo(), RATE)
    assert lb.level_dbfs == pytest.approx(st.TONE_DBFS - 6, abs=1.0)
    assert lb.purity > 0.9 and lb.heard_s == pytest.approx(st.TONE_S, abs=0.1)
    assert lb.baseline_dbfs < -60
    verdict = st.judge_audio(_audio(lb))
    assert verdict.status == st.OK and "relay closed and opened" in verdict.detail


def test_no_tone_back_fails_with_what_to_check() -> None:
    heard = np.random.default_rng(2).normal(0, 30, RATE).astype(np.int16)
    lb = st.analyse_loopback(heard, heard[:2400], RATE)
    assert lb.level_dbfs < st.LOOPBACK_MIN_DBFS
    hat = st.judge_audio(_audio(lb))
    assert hat.status == st.FAIL and "relay" in hat.remedy and "alsamixer" in hat.remedy
    assert "simulated line" in st.judge_audio(_audio(lb, backend="sim")).remedy


def test_another_frequency_or_speech_is_not_the_tone() -> None:
    t = np.arange(RATE) / RATE
    other = (8000 * np.sin(2 * np.pi * 1400 * t)).astype(np.int16)
    lb = st.analyse_loopback(other, other[:10], RATE)
    assert st.judge_audio(_audio(lb)).status == st.FAIL


def test_audio_warnings_weak_clipped_short() -> None:
    weak = st.analyse_loopback(*_echo(gain_db=-32, noise=3), RATE)
    assert st.judge_audio(_audio(weak)).status == st.WARN
    assert "weak" in st.judge_audio(_audio(weak)).detail
    loud = st.analyse_loopback(*_echo(gain_db=+12), RATE)
    assert "clipped" in st.judge_audio(_audio(loud)).detail
    short = st.analyse_loopback(*_echo(cut_s=0.35), RATE)
    assert "wrong length" in st.judge_audio(_audio(short)).detail


def test_a_tone_already_on_the_line_is_not_a_loopback() -> None:
    heard, _ = _echo()
    t = np.arange(2400) / RATE
    baseline = (2000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    lb = st.analyse_loopback(heard, baseline, RATE)
    assert st.judge_audio(_audio(lb)).status == st.FAIL


def test_audio_device_and_relay_failures() -> None:
    lb = st.analyse_loopback(*_echo(), RATE)
    assert st.judge_audio(_audio(None, audio_open=False)).status == st.FAIL
    assert st.judge_audio(_audio(None, capture_alive=False)).status == st.FAIL
    assert st.judge_audio(_audio(lb, relay_closed=False)).status == st.FAIL
    assert st.judge_audio(_audio(lb, relay_opened=False)).status == st.FAIL
    assert st.judge_audio(_audio(lb, error="playback failed")).status == st.FAIL
    cut = st.judge_audio(_audio(None, interrupted=True))
    assert cut.status == st.FAIL and "again" in cut.remedy


def _vol(name: str = "sd", **kw: object) -> st.VolumeMeasure:
    base: dict[str, object] = dict(name=name, label=f"the {name}", present=True, problem="",
                                   written=True, error="", fsync_s=0.01,
                                   free_bytes=8_000_000_000, total_bytes=16_000_000_000)
    return st.VolumeMeasure(**{**base, **kw})  # type: ignore[arg-type]


def test_storage_verdicts() -> None:
    good = st.judge_storage([_vol(), _vol("usb", present=False, written=False,
                                          problem="not inserted")], 500_000_000)
    assert good.status == st.OK and "not inserted" in good.detail and "fsync 10 ms" in good.detail
    low = st.judge_storage([_vol(free_bytes=100_000_000)], 500_000_000)
    assert low.status == st.WARN and "storage status" in low.remedy
    slow = st.judge_storage([_vol(fsync_s=2.5)], 500_000_000)
    assert slow.status == st.WARN
    broken = st.judge_storage([_vol(), _vol("usb", written=False, error="fsync failed: I/O "
                                            "error")], 500_000_000)
    assert broken.status == st.FAIL and "replace the USB stick" in broken.remedy
    ro = st.judge_storage([_vol(written=False, problem="read-only")], 500_000_000)
    assert ro.status == st.FAIL and "read-only" in ro.detail


def test_index_clock_keys() -> None:
    assert st.judge_index(12, "").status == st.OK
    assert "reindex" in st.judge_index(None, "bad shard").remedy
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert st.judge_clock(st.ClockMeasure(now, True, "systemd-timesyncd")).status == st.OK
    unsync = st.judge_clock(st.ClockMeasure(now, False, "kernel"))
    assert unsync.status == st.WARN and "NTP" in unsync.remedy
    assert st.judge_clock(st.ClockMeasure(now, None, "")).status == st.WARN
    assert st.judge_clock(st.ClockMeasure(datetime(1970, 1, 1, tzinfo=UTC), True, "")).status \
        == st.FAIL
    bound = st.KeysMeasure(True, True, "abcd", "otp", None)
    assert st.judge_keys(bound).status == st.OK
    unbound = st.KeysMeasure(True, True, "abcd", None, "NOT bound")
    assert st.judge_keys(unbound).status == st.WARN
    assert st.judge_keys(st.KeysMeasure(False, False, None, None, None)).status == st.WARN
    missing = st.KeysMeasure(True, False, None, None, None, "no device key")
    assert "keys restore" in st.judge_keys(missing).remedy
    assert st.judge_keys(st.KeysMeasure(True, False, None, None, None, "x",
                                        missing_fresh=True)).status == st.WARN


def test_report_exit_code_table_and_json_round_trip() -> None:
    results = (st.ok("board", "fine"), st.warn("clock", "not synced", "fix NTP"))
    report = st.Report("2025-01-01T00:00:00+00:00", "2025-01-01T00:00:03+00:00", "direct",
                       "sim", results)
    assert report.overall == st.WARN and report.exit_code == 0
    table = st.format_table(report)
    assert "WARN" in table and "clock: fix NTP" in table and "passed, with warnings" in table
    assert st.Report.from_dict(report.as_dict()) == report
    failed = st.Report("", "", "daemon", "hat", (*results, st.fail("audio", "x", "y")))
    assert failed.exit_code == 1 and "FAILED" in st.format_table(failed)
    assert report.as_dict()["results"][0]["title"] == st.TITLES["board"]
