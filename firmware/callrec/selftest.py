"""The self-test's verdicts: measurements in, ok/warn/fail with what to do about it out.

Pure: no I/O, no clock, no threads (`selftest_run.py` takes the measurements, on the daemon's
board when it runs, else on a board it opens itself). Each item of the report is one line for
a person: its result, a one-line detail, and, when it is not ok, what to do. Exit status of
`callrec selftest`: 0 when nothing failed (warnings are printed), 1 when an item failed.

The detail and the remedy are built from phrases (`phrase()`: an English template and its
values), so the web UI can show them in its language; `detail` and `remedy` are those phrases
in English, joined by "; ", for the CLI, the JSON API and the logs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from callrec.phrase import N_, Phrase, joined, phrase

OK, WARN, FAIL = "ok", "warn", "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}


# volumes.label()'s words, shown as a value of the storage item's phrases.
VOLUME_LABELS = (N_("the SD card"), N_("the USB stick"))


# The items, in the order they are run and shown.
ITEMS = ("board", "pins", "audio", "storage", "index", "clock", "keys")
TITLES = {
    "board": N_("Board and HAT microcontroller"),
    "pins": N_("Pins: privacy button, recording and fault LEDs, MCU reset"),
    "audio": N_("Audio path: test tone through the announcement relay and back"),
    "storage": N_("Storage: write, fsync, read back, delete"),
    "index": N_("Recordings index"),
    "clock": N_("Clock"),
    "keys": N_("Encryption key"),
}

BUSY = N_("a call is in progress, try again after it")

# The test tone: 1 kHz for half a second, 12 dB below full scale.
TONE_HZ = 1000.0
TONE_S = 0.5
TONE_DBFS = -12.0
# A tone that came back: this loud at least, this pure (share of the window's energy at the
# tone's frequency), and heard for about as long as it was played.
LOOPBACK_MIN_DBFS = -50.0
LOOPBACK_WEAK_DBFS = -40.0
LOOPBACK_MIN_PURITY = 0.5
LOOPBACK_CLIP = 32000
ANALYSIS_WINDOW_S = 0.05
# Below this year the clock cannot be right (the Pi has no battery clock: it starts at the
# last saved time, or 1970).
CLOCK_MIN_YEAR = 2024
SLOW_FSYNC_S = 1.0


class LineBusy(RuntimeError):
    """The line is in use: the self-test does not touch it (HTTP 409)."""

    def __init__(self, reason: str = BUSY) -> None:
        super().__init__(reason)


@dataclass(frozen=True)
class CheckResult:
    item: str
    status: str  # ok, warn or fail
    detail: str
    remedy: str = ""  # what to do about it ("" when ok)
    # The same as phrases, joined by "; " (empty: only the English is known, e.g. a report
    # saved by an older version).
    detail_t: tuple[Phrase, ...] = ()
    remedy_t: tuple[Phrase, ...] = ()

    @property
    def title(self) -> str:
        return TITLES.get(self.item, self.item)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detail_t": list(self.detail_t),
                "remedy_t": list(self.remedy_t), "title": self.title}


# A detail or remedy: phrases, or a plain English string (not translated).
Said = str | Phrase | Sequence[Phrase]


def _said(said: Said) -> tuple[str, tuple[Phrase, ...]]:
    if isinstance(said, str):
        return said, ()
    parts = (said,) if isinstance(said, dict) else tuple(said)
    return joined(parts), parts


def _result(item: str, status: str, detail: Said, remedy: Said = "") -> CheckResult:
    (d, d_t), (r, r_t) = _said(detail), _said(remedy)
    return CheckResult(item, status, d, r, d_t, r_t)


def ok(item: str, detail: Said) -> CheckResult:
    return _result(item, OK, detail)


def warn(item: str, detail: Said, remedy: Said) -> CheckResult:
    return _result(item, WARN, detail, remedy)


def fail(item: str, detail: Said, remedy: Said) -> CheckResult:
    return _result(item, FAIL, detail, remedy)


def _phrases(value: object) -> tuple[Phrase, ...]:
    """Phrases read back from JSON; anything malformed gives () (the English is shown)."""
    def good(p: object) -> bool:
        return (isinstance(p, dict) and isinstance(p.get("text"), str)
                and isinstance(p.get("values"), dict)
                and all(isinstance(v, str | int | float) or good(v)
                        for v in p["values"].values()))

    if isinstance(value, list) and all(good(p) for p in value):
        return tuple(value)
    return ()


def worst(statuses: Sequence[str]) -> str:
    return max(statuses, key=lambda s: _RANK.get(s, 2), default=OK)


@dataclass(frozen=True)
class Report:
    started_at: str  # UTC ISO
    finished_at: str
    mode: str  # "daemon" (run by the running daemon) or "direct" (the CLI opened the board)
    backend: str  # the board backend: "hat" or "sim"
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def overall(self) -> str:
        return worst([r.status for r in self.results])

    @property
    def exit_code(self) -> int:
        return 1 if self.overall == FAIL else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "mode": self.mode,
            "backend": self.backend,
            "overall": self.overall,
            "results": [r.as_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        results = tuple(
            CheckResult(str(r["item"]), str(r["status"]), str(r.get("detail", "")),
                        str(r.get("remedy", "")), _phrases(r.get("detail_t")),
                        _phrases(r.get("remedy_t")))
            for r in data.get("results", [])
        )
        return cls(str(data.get("started_at", "")), str(data.get("finished_at", "")),
                   str(data.get("mode", "")), str(data.get("backend", "")), results)


def format_table(report: Report) -> str:
    """The report for people: one line per item, then what to do for the others."""
    width = max(len(item) for item in ITEMS)
    lines = [f"self-test of {report.started_at} ({report.backend} board, "
             f"{'run by the daemon' if report.mode == 'daemon' else 'board opened here'})"]
    for r in report.results:
        lines.append(f"  {r.item:<{width}}  {r.status.upper():<4}  {r.detail}")
    todo = [r for r in report.results if r.status != OK and r.remedy]
    if todo:
        lines.append("what to do:")
        lines += [f"  {r.item}: {r.remedy}" for r in todo]
    verdict = {OK: "all checks passed", WARN: "passed, with warnings",
               FAIL: "FAILED"}[report.overall]
    lines.append(f"result: {verdict}")
    return "\n".join(lines)


# -- board and MCU -----------------------------------------------------------------------------
@dataclass(frozen=True)
class McuMeasure:
    backend: str
    connected: bool
    firmware: str | None
    protocol: int | None
    expected_protocol: int
    state_round_trip_s: float | None  # GET answered with STATE after this long (None: never)
    rx_errors: int | None = None  # frames the MCU rejected (its STATE's RXERR)
    bad_frames: int = 0  # frames the Pi rejected since the link started (CRC, garbage...)
    watchdog_expired: bool | None = None


def judge_mcu(m: McuMeasure) -> CheckResult:
    item = "board"
    sim = m.backend == "sim"
    where = phrase(N_("the line simulator's pty") if sim
                   else N_("the HAT's UART (/dev/serial0)"))
    if not m.connected and m.state_round_trip_s is None:
        remedy = (phrase("start the line simulator (`callrec sim line`), then run the self-test "
                         "again") if sim else
                  phrase("check that the HAT is seated and powered, that the UART is enabled "
                         "(hw/boot/config.txt.callrec) and that no console uses serial0 "
                         "(cmdline.txt); see hw/PINMAP.md"))
        return fail(item, phrase("{backend} board: no answer from the MCU on {where}",
                                 backend=m.backend, where=where), remedy)
    if m.protocol is not None and m.protocol != m.expected_protocol:
        return fail(item, phrase("MCU firmware {firmware} speaks protocol {protocol}, this "
                                 "software {expected}", firmware=str(m.firmware),
                                 protocol=str(m.protocol), expected=str(m.expected_protocol)),
                    phrase("update the HAT's MCU firmware (hw/mcu) or the software so that "
                           "they match"))
    version = phrase("MCU firmware {firmware}, protocol {protocol}",
                     firmware=m.firmware or phrase("unknown"), protocol=str(m.protocol or "?"))
    if m.state_round_trip_s is None:
        return fail(item, phrase("{backend} board, {version}: the MCU did not answer GET",
                                 backend=m.backend, version=version),
                    phrase("check the serial wiring and baud rate (hw/PROTOCOL.md); if it "
                           "persists, power-cycle the HAT"))
    detail = phrase("{backend} board, {version}, link up, round trip {ms} ms",
                    backend=m.backend, version=version,
                    ms=f"{m.state_round_trip_s * 1000:.0f}")
    if m.firmware is None:
        return warn(item, [detail, phrase("the MCU has not said its version")],
                    phrase("power-cycle the HAT; if the version stays unknown, reflash its "
                           "firmware"))
    errors = (m.rx_errors or 0) + m.bad_frames
    if errors:
        return warn(item, [detail, phrase("{count} damaged frame(s) since start", count=errors)],
                    phrase("a few after a reboot are harmless; if the count grows, check the "
                           "UART wiring and ground between the Pi and the HAT"))
    if m.watchdog_expired:
        return warn(item, [detail, phrase("the MCU's watchdog expired earlier (it opened the "
                                          "relay)")],
                    phrase("look in the journal for a Pi that stalled (journalctl -u callrec)"))
    return ok(item, detail)


# -- pins --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PinsMeasure:
    privacy_pressed: bool | None  # None: the input could not be read
    recording_led: tuple[bool, bool] | None  # read back after setting (on, off); None: not run
    fault_led_expected: bool | None  # what the fault LED should show (None: lamp test below)
    fault_led: bool | None  # what the MCU says it shows
    fault_led_test: tuple[bool, bool] | None = None  # lamp test: read back after (on, off)
    mcu_reset_released: bool | None = None


def judge_pins(m: PinsMeasure) -> CheckResult:
    item = "pins"
    parts: list[Phrase] = []
    fails: list[tuple[Phrase, Phrase]] = []
    warns: list[tuple[Phrase, Phrase]] = []
    if m.privacy_pressed is None:
        fails.append((phrase("privacy button (GPIO17) unreadable"),
                      phrase("check that no other program holds the GPIO pins (gpioinfo)")))
    elif m.privacy_pressed:
        warns.append((phrase("privacy button reads pressed"),
                      phrase("release the button; if it stays pressed, check its wiring (it "
                             "pulls GPIO17 to ground when pressed, hw/PINMAP.md)")))
    else:
        parts.append(phrase("privacy button released"))
    if m.recording_led is None:
        parts.append(phrase("recording LED not tested"))
    elif m.recording_led == (True, False):
        parts.append(phrase("recording LED switches"))
    else:
        fails.append((phrase("recording LED (GPIO27) did not follow"),
                      phrase("check that no other program holds GPIO27 (gpioinfo)")))
    if m.fault_led_test is not None:
        if m.fault_led_test == (True, False):
            parts.append(phrase("fault LED switches"))
        else:
            fails.append((phrase("the MCU did not switch the fault LED"),
                          phrase("update or reflash the HAT's MCU firmware")))
    elif m.fault_led is None:
        fails.append((phrase("the fault LED's state could not be read from the MCU"),
                      phrase("see the board item")))
    elif m.fault_led_expected is not None and m.fault_led != m.fault_led_expected:
        # Only two cases (the LED differs from what it should show): whole sentences.
        warns.append((phrase("fault LED on, expected off") if m.fault_led
                      else phrase("fault LED off, expected on"),
                      phrase("it follows the faults on the status page within a second; if it "
                             "stays wrong, restart callrec")))
    else:
        parts.append(phrase("fault LED on (a fault is shown)") if m.fault_led
                     else phrase("fault LED off"))
    if m.mcu_reset_released is None:
        fails.append((phrase("MCU reset line (GPIO22) not claimed"),
                      phrase("check that no other program holds GPIO22 (gpioinfo)")))
    elif not m.mcu_reset_released:
        warns.append((phrase("MCU reset line held active"), phrase("restart callrec")))
    else:
        parts.append(phrase("MCU reset line released (not pulsed: that restarts the MCU)"))
    if fails:
        return fail(item, [f for f, _ in fails] + parts, [r for _, r in fails + warns])
    if warns:
        return warn(item, [w for w, _ in warns] + parts, [r for _, r in warns])
    return ok(item, parts)


# -- audio loopback ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Loopback:
    """What came back of the tone: its level, purity and how long it was heard."""

    level_dbfs: float  # at the tone's frequency, loudest window
    purity: float  # share of that window's energy at the tone's frequency (0..1)
    heard_s: float  # how long it stayed within 6 dB of its loudest
    baseline_dbfs: float  # at the tone's frequency before the tone was played
    peak: int  # largest sample magnitude while it played


def _dbfs(power: float) -> float:
    """dB relative to a full-scale sine's power."""
    full = (32767.0**2) / 2
    return 10 * math.log10(max(power, 1e-12) / full)


def tone(rate: int, seconds: float = TONE_S, hz: float = TONE_HZ,
         dbfs: float = TONE_DBFS) -> np.ndarray:
    """The test tone as int16 samples, with 5 ms ramps (no clicks)."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    amp = 32767 * 10 ** (dbfs / 20)
    x = amp * np.sin(2 * np.pi * hz * t)
    ramp = min(n // 2, int(rate * 0.005))
    if ramp:
        env = np.ones(n)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        x *= env
    return np.round(x).astype(np.int16)


def _windows(x: np.ndarray, rate: int, hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Per window: power at `hz` (a quadrature correlation, phase-free) and total power."""
    n = max(1, int(rate * ANALYSIS_WINDOW_S))
    count = len(x) // n
    if count == 0:
        return np.zeros(0), np.zeros(0)
    frames = x[: count * n].astype(np.float64).reshape(count, n)
    t = np.arange(n) / rate
    ref = np.exp(-2j * np.pi * hz * t)
    at_hz = np.abs(frames @ ref) ** 2 * 2 / n**2  # a sine of amplitude A gives A^2/2
    total = np.mean(frames**2, axis=1)
    return at_hz, total


def analyse_loopback(captured: np.ndarray, baseline: np.ndarray, rate: int,
                     hz: float = TONE_HZ) -> Loopback:
    """Find the tone in what the capture side heard while (and after) it was played."""
    at_hz, total = _windows(captured, rate, hz)
    base_hz, _ = _windows(baseline, rate, hz)
    baseline_dbfs = _dbfs(float(np.max(base_hz))) if len(base_hz) else -120.0
    if len(at_hz) == 0:
        return Loopback(-120.0, 0.0, 0.0, baseline_dbfs, 0)
    best = int(np.argmax(at_hz))
    level = float(at_hz[best])
    purity = float(min(1.0, level / total[best])) if total[best] > 0 else 0.0
    heard = int(np.sum(at_hz >= level / 4)) if level > 0 else 0  # within 6 dB
    peak = int(np.max(np.abs(captured.astype(np.int32)))) if len(captured) else 0
    return Loopback(round(_dbfs(level), 1), round(purity, 3),
                    round(heard * ANALYSIS_WINDOW_S, 2), round(baseline_dbfs, 1), peak)


@dataclass(frozen=True)
class AudioMeasure:
    backend: str
    audio_open: bool
    capture_alive: bool
    relay_closed: bool | None  # the MCU's STATE after RELAY,1 (None: not asked/answered)
    relay_opened: bool | None  # ... after RELAY,0
    loopback: Loopback | None
    error: str = ""  # the audio device failed while playing or capturing
    interrupted: bool = False  # a call started: the test stopped and gave the line back


def judge_audio(m: AudioMeasure) -> CheckResult:
    item = "audio"
    sim = m.backend == "sim"
    device_remedy = (phrase("start PulseAudio with hw/sim/pulse-line.sh and the line simulator")
                     if sim else phrase("check the HAT codec's overlay in "
                                        "/boot/firmware/config.txt and that `arecord -L` lists "
                                        "callrec-line (hw/alsa); then restart callrec"))
    if m.interrupted:
        return fail(item, phrase("interrupted: a call started, the line was given back to it"),
                    phrase("run the self-test again when the line is idle"))
    if not m.audio_open:
        return fail(item, phrase("the line audio device is not open"), device_remedy)
    if not m.capture_alive:
        return fail(item, phrase("the capture side delivers no audio"), device_remedy)
    if m.error:
        return fail(item, phrase("audio device error: {error}", error=m.error), device_remedy)
    if m.relay_closed is False:
        return fail(item, phrase("the MCU did not close the announcement relay"),
                    phrase("see the board item; the MCU refuses while its watchdog is not fed"))
    if m.relay_opened is False:
        return fail(item, phrase("the announcement relay did not open again after the test"),
                    phrase("restart callrec; if it persists, the HAT's relay driver is faulty"))
    lb = m.loopback
    if lb is None:
        return fail(item, phrase("nothing was captured"), device_remedy)
    measured = phrase("tone back at {level} dBFS (played at {played}), purity {purity}, heard "
                      "{heard} s of {length} s", level=f"{lb.level_dbfs:.0f}",
                      played=f"{TONE_DBFS:.0f}", purity=f"{lb.purity:.2f}",
                      heard=f"{lb.heard_s:.2f}", length=f"{TONE_S:.2f}")
    path_remedy = (phrase("the simulated line echoes the prompt only while on-hook: run "
                          "`callrec sim line` from this version, with the line idle") if sim else
                   phrase("check the announcement relay (the MCU must close it: see the board "
                          "item), the wiring of the HAT to the line (hw/PINMAP.md) and the "
                          "codec's mixer levels (alsamixer: capture and playback not muted)"))
    if lb.level_dbfs < LOOPBACK_MIN_DBFS or lb.purity < LOOPBACK_MIN_PURITY:
        return fail(item, phrase("the test tone did not come back: {measured}",
                                 measured=measured), path_remedy)
    if lb.level_dbfs - lb.baseline_dbfs < 20:
        return fail(item, phrase("a {hz} Hz signal was there before the tone ({measured}, "
                                 "{before} dBFS before)", hz=f"{TONE_HZ:.0f}",
                                 measured=measured, before=f"{lb.baseline_dbfs:.0f}"),
                    phrase("something else is on the line: run the self-test with the line "
                           "free"))
    if abs(lb.heard_s - TONE_S) > 0.2:
        return warn(item, phrase("the tone came back with the wrong length: {measured}",
                                 measured=measured),
                    phrase("run the self-test again; if it persists, the capture loses audio "
                           "(check the CPU load and the ALSA buffer settings)"))
    if lb.peak >= LOOPBACK_CLIP:
        return warn(item, phrase("the tone came back clipped: {measured}", measured=measured),
                    phrase("lower the capture gain (alsamixer) until the self-test no longer "
                           "clips"))
    if lb.level_dbfs < LOOPBACK_WEAK_DBFS:
        return warn(item, phrase("the tone came back weak: {measured}", measured=measured),
                    phrase("raise the capture gain (alsamixer); a weak line records callers "
                           "faintly"))
    return ok(item, phrase("{measured}, relay closed and opened again", measured=measured))


# -- storage -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeMeasure:
    name: str  # "sd" or "usb"
    label: str  # "the SD card"
    present: bool  # False: a stick that is not inserted (not a fault)
    problem: str  # why it cannot be used ("" when it can)
    written: bool  # write + fsync + read back + compare + delete all worked
    error: str  # the step that failed and why
    fsync_s: float | None
    free_bytes: int
    total_bytes: int


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def judge_storage(volumes: Sequence[VolumeMeasure], min_free_bytes: int) -> CheckResult:
    item = "storage"
    parts: list[Phrase] = []
    fails: list[Phrase] = []
    warns: list[Phrase] = []
    remedies: list[Phrase] = []
    for v in volumes:
        name = phrase(v.label)  # "the SD card": translated as a text of its own
        if not v.present:
            parts.append(phrase("{label}: not inserted (recordings go to the SD card)",
                                label=name))
            continue
        if v.problem and not v.written:
            fails.append(phrase("{label}: {problem}", label=name, problem=v.problem))
            remedies.append(
                phrase("{label}: check its mount and filesystem (hw/USB.md); replace it if "
                       "errors persist", label=name) if v.name == "usb" else
                phrase("{label}: free space or replace the SD card; `dmesg` shows I/O errors",
                       label=name))
            continue
        if not v.written:
            fails.append(phrase("{label}: {error}", label=name, error=v.error))
            remedies.append(
                phrase("{label}: replace the USB stick (hw/USB.md)", label=name)
                if v.name == "usb" else
                phrase("{label}: the SD card is failing: back up the recordings and keys, then "
                       "replace it", label=name))
            continue
        sizes = {"free": _mb(v.free_bytes), "total": _mb(v.total_bytes)}
        text = (phrase("{label}: written, synced and read back (fsync {ms} ms), {free} free of "
                       "{total}", label=name, ms=f"{v.fsync_s * 1000:.0f}", **sizes)
                if v.fsync_s is not None else
                phrase("{label}: written, synced and read back, {free} free of {total}",
                       label=name, **sizes))
        if v.free_bytes < min_free_bytes:
            warns.append(phrase("{volume}, below the {kept} kept free", volume=text,
                                kept=_mb(min_free_bytes)))
            remedies.append(phrase("{label}: retention erases the oldest recordings to make "
                                   "room; check `callrec storage status`", label=name))
        elif v.fsync_s is not None and v.fsync_s > SLOW_FSYNC_S:
            warns.append(phrase("{volume}, slow", volume=text))
            remedies.append(phrase("{label}: a slow card can lose more audio in a power cut; "
                                   "use an A1/A2-rated card", label=name))
        else:
            parts.append(text)
    if fails:
        return fail(item, fails + warns + parts, remedies)
    if warns:
        return warn(item, warns + parts, remedies)
    return ok(item, parts or phrase("no volume configured"))


def judge_index(count: int | None, error: str) -> CheckResult:
    if error:
        return fail("index", phrase("the index cannot be read: {error}", error=error),
                    phrase("stop callrec and run `callrec reindex` (rebuilds it from the "
                           "recordings)"))
    if count is None:
        return warn("index", phrase("not checked"), phrase("see the keys item"))
    return ok("index", phrase("readable, {count} recording(s)", count=count))


# -- clock -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClockMeasure:
    now: datetime  # UTC
    synchronized: bool | None  # None: unknown
    source: str  # who said so (callrec.clock): "NTP (systemd-timesyncd)", "NTP (kernel ...)"


def judge_clock(m: ClockMeasure) -> CheckResult:
    item = "clock"
    shown = m.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    if m.now.year < CLOCK_MIN_YEAR:
        return fail(item, phrase("the clock says {time}: it has never been set", time=shown),
                    phrase("connect the appliance to a network with an NTP server (the Pi has "
                           "no battery clock); `timedatectl timesync-status` shows what it "
                           "tried"))
    if m.synchronized is None:
        return warn(item, phrase("{time}; whether it is synchronised is unknown", time=shown),
                    phrase("check `timedatectl` from a shell"))
    if not m.synchronized:
        return warn(item, phrase("{time}, NOT synchronised ({source}): recordings made now are "
                                 "marked \"time unverified\" and retention does not erase by "
                                 "age until it is", time=shown, source=m.source),
                    phrase("give the appliance network access to an NTP server (its DHCP "
                           "server or /etc/systemd/timesyncd.conf); `timedatectl "
                           "timesync-status` shows why"))
    return ok(item, phrase("{time}, synchronised ({source})", time=shown, source=m.source))


# -- encryption key ----------------------------------------------------------------------------
@dataclass(frozen=True)
class KeysMeasure:
    encrypt: bool  # storage.encrypt
    present: bool  # the device key is loaded
    fingerprint: str | None
    binding: str | None  # "otp", "file" or None (unbound)
    warning: str | None  # the unbound warning
    error: str = ""  # why the key could not be opened
    missing_fresh: bool = False  # no device key yet, and no recording needs one


def judge_keys(m: KeysMeasure) -> CheckResult:
    item = "keys"
    if not m.encrypt:
        return warn(item, phrase("encryption at rest is OFF (storage.encrypt = false)"),
                    phrase("set storage.encrypt = true: recordings on a lost SD card or stick "
                           "are then unreadable"))
    if m.missing_fresh:
        return warn(item, phrase("no device key yet (no recording needs one)"),
                    phrase("start callrec: it makes the device key at its first start; then "
                           "back it up with `callrec keys export`"))
    if m.error or not m.present:
        return fail(item, phrase("the device key cannot be opened: {error}",
                                 error=m.error or phrase("missing")),
                    phrase("restore it from the owner's backup (`callrec keys restore`); on "
                           "another recorder's SD card, see ARCHITECTURE.md, keys"))
    if not m.binding:
        return warn(item, phrase("device key {fingerprint} present, NOT bound to this "
                                 "recorder's hardware", fingerprint=str(m.fingerprint)),
                    phrase("set storage.key_binding (otp on a Pi 4/5 after "
                           "`rpi-otp-private-key -w`, or file on another medium); {warning}",
                           warning=m.warning or ""))
    return ok(item, phrase("device key {fingerprint} present, bound ({binding})",
                           fingerprint=str(m.fingerprint), binding=m.binding))
