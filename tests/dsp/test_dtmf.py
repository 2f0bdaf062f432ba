"""DTMF detector against ITU-T Q.24 (at 8 kHz), plus streaming behaviour.

Every condition is a stream of key presses between silences, fed in the daemon's 800-sample
chunks. Acceptance conditions must find every key exactly once and nothing else; rejection
conditions must find nothing. Measured rates go to `dtmf-accuracy.json` in the test's tmp
directory and are printed (pytest -s) at the end of the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from callrec.dsp.dtmf import DtmfDetector, DtmfEvent, DtmfThresholds
from callrec.dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callrec.dsp.gen_dtmf import (
    COLS,
    DIGITS,
    ROWS,
    dial,
    dtmf_tone,
    frequencies,
    silence,
    single_tone,
)
from callrec.dsp.signal import RATE, Samples, dbm0_to_peak

CHUNK = 800  # the daemon's 100 ms capture buffers
TONES = ROWS + COLS
RESULTS: dict[str, dict[str, float | int | str]] = {}


@pytest.fixture(scope="module", autouse=True)
def accuracy_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    path: Path = tmp_path_factory.mktemp("dtmf-report") / "dtmf-accuracy.json"
    path.write_text(json.dumps(RESULTS, indent=1, sort_keys=True))
    print(f"\nDTMF accuracy, written to {path}:")
    for name, row in sorted(RESULTS.items()):
        print(f"  {name:45s} {row}")


def detect(x: Samples, chunk: int = CHUNK, detector: DtmfDetector | None = None
           ) -> list[DtmfEvent]:
    det = detector or DtmfDetector()
    events: list[DtmfEvent] = []
    for i in range(0, len(x), chunk):
        events += det.feed(x[i : i + chunk])
    return events + det.flush()


def keys_in(x: Samples, chunk: int = CHUNK) -> str:
    return "".join(e.digit for e in detect(x, chunk))


def stream(parts: list[Samples], gap_s: float = 0.1) -> Samples:
    """Each part followed by `gap_s` of silence, with silence before the first."""
    out = [silence(gap_s)]
    for p in parts:
        out += [p, silence(gap_s)]
    return np.concatenate(out)


def found(expected: str, got: str) -> int:
    """Expected keys found, in order: the longest common subsequence (extra keys, i.e. the
    rest of `got`, are not counted here)."""
    row = [0] * (len(got) + 1)
    for e in expected:
        prev_diag = 0
        for j, g in enumerate(got, start=1):
            prev_diag, row[j] = row[j], (prev_diag + 1 if e == g else max(row[j], row[j - 1]))
    return row[-1]


def record(name: str, expected: str, got: str) -> None:
    hit = found(expected, got)
    RESULTS[name] = {"sent": len(expected), "detected": hit, "rate": round(hit / max(1, len(
        expected)), 4), "extra": len(got) - hit}


def phases(k: int) -> tuple[float, float]:
    return (0.7 * k) % (2 * np.pi), (1.9 * k + 0.3) % (2 * np.pi)


# -- Q.24 frequency tolerance -------------------------------------------------------------


def offset_stream(freq: float, offset: float) -> tuple[str, Samples]:
    """Every key using `freq`, that tone `offset` off and its partner exact, 3 phases each."""
    expected, parts = "", []
    for k, key in enumerate(d for d in DIGITS for _ in range(3) if freq in frequencies(d)):
        row = frequencies(key)[0] == freq
        fo = (offset, 0.0) if row else (0.0, offset)
        parts.append(dtmf_tone(key, 0.08, -10, freq_offset=fo, phases=phases(k)))
        expected += key
    # Uneven gaps so that the tones start at every alignment with the analysis blocks.
    return expected, np.concatenate([np.concatenate((silence(0.06 + 0.0013 * i), p))
                                     for i, p in enumerate(parts)] + [silence(0.1)])


@pytest.mark.parametrize("offset", [-0.015, 0.015])
@pytest.mark.parametrize("freq", TONES)
def test_tone_within_1_5_percent_is_detected(freq: float, offset: float) -> None:
    expected, x = offset_stream(freq, offset)
    got = keys_in(x)
    record(f"freq {freq:g} Hz {offset:+.1%}", expected, got)
    assert got == expected


@pytest.mark.parametrize("offset", [-0.035, 0.035, -0.05, 0.05])
@pytest.mark.parametrize("freq", TONES)
def test_tone_beyond_3_5_percent_is_rejected(freq: float, offset: float) -> None:
    expected, x = offset_stream(freq, offset)
    got = keys_in(x)
    record(f"freq {freq:g} Hz {offset:+.1%}", expected, got)
    assert got == ""


@pytest.mark.parametrize("offset", [-0.025, 0.025])
@pytest.mark.parametrize("freq", TONES)
def test_tone_at_2_5_percent_is_measured(freq: float, offset: float) -> None:
    """Between 1.5 % and 3.5 % Q.24 leaves the decision open: only recorded."""
    expected, x = offset_stream(freq, offset)
    record(f"freq {freq:g} Hz {offset:+.1%} (don't care)", expected, keys_in(x))


@pytest.mark.parametrize(("row_off", "col_off", "accept"), [
    (0.015, 0.015, True), (0.015, -0.015, True), (-0.015, 0.015, True), (-0.015, -0.015, True),
    (0.035, 0.035, False), (0.035, -0.035, False), (-0.035, 0.035, False),
    (-0.035, -0.035, False), (0.035, 0.0, False), (0.0, -0.035, False),
])
def test_every_key_with_both_tones_off(row_off: float, col_off: float, accept: bool) -> None:
    parts = [dtmf_tone(key, 0.08, -10, freq_offset=(row_off, col_off), phases=phases(k))
             for k, key in enumerate(DIGITS * 2)]
    got = keys_in(stream(parts, 0.08))
    record(f"every key, offsets {row_off:+.1%}/{col_off:+.1%}", DIGITS * 2, got)
    assert got == (DIGITS * 2 if accept else "")


@pytest.mark.parametrize("freq", TONES)
def test_one_tone_alone_is_not_a_key(freq: float) -> None:
    parts = [single_tone(freq * (1 + off), 0.5, level)
             for level in (-3, -20, -36) for off in (0.0, 0.015, 0.035)]
    assert keys_in(stream(parts)) == ""


# -- durations, pauses, drop-outs, rate ---------------------------------------------------


def duration_stream(tone_s: float) -> tuple[str, Samples]:
    """Every key, starting at 12 different alignments with the 4.25 ms block hop."""
    expected, parts = "", []
    for a in range(12):
        for key in DIGITS:
            parts.append(np.concatenate((silence(0.07 + a * 3 / RATE),
                                         dtmf_tone(key, tone_s, -10, phases=phases(a)))))
            expected += key
    return expected, np.concatenate([*parts, silence(0.1)])


@pytest.mark.parametrize("tone_ms", [40, 45, 60])
def test_tones_of_40_ms_and_more_are_detected(tone_ms: int) -> None:
    expected, x = duration_stream(tone_ms / 1000)
    got = keys_in(x)
    record(f"duration {tone_ms} ms", expected, got)
    assert got == expected


@pytest.mark.parametrize("tone_ms", [10, 15, 20])
def test_tones_of_20_ms_and_less_are_rejected(tone_ms: int) -> None:
    expected, x = duration_stream(tone_ms / 1000)
    got = keys_in(x)
    record(f"duration {tone_ms} ms", expected, got)
    assert got == ""


@pytest.mark.parametrize("tone_ms", [22, 24, 26, 28, 30, 35])
def test_tones_between_20_and_40_ms_are_measured(tone_ms: int) -> None:
    expected, x = duration_stream(tone_ms / 1000)
    record(f"duration {tone_ms} ms (don't care)", expected, keys_in(x))


@pytest.mark.parametrize("pause_ms", [40, 50, 80])
def test_a_pause_of_40_ms_separates_two_presses_of_a_key(pause_ms: int) -> None:
    expected, parts = "", []
    for a in range(12):
        for key in "159#":
            parts.append(np.concatenate((
                silence(0.08 + a * 3 / RATE), dtmf_tone(key, 0.06, -10),
                silence(pause_ms / 1000), dtmf_tone(key, 0.06, -10, phases=phases(a)))))
            expected += key * 2
    got = keys_in(np.concatenate([*parts, silence(0.1)]))
    record(f"pause {pause_ms} ms between equal keys", expected, got)
    assert got == expected


@pytest.mark.parametrize("dropout_ms", [5, 10])
def test_a_drop_out_of_10_ms_is_bridged(dropout_ms: int) -> None:
    expected, parts = "", []
    for a in range(12):
        for key in "26*D":
            tone = dtmf_tone(key, 0.12, -10, phases=phases(a))
            cut = round(0.05 * RATE) + a * 3
            tone[cut : cut + dropout_ms * RATE // 1000] = 0
            parts.append(np.concatenate((silence(0.08), tone)))
            expected += key
    got = keys_in(np.concatenate([*parts, silence(0.1)]))
    record(f"drop-out {dropout_ms} ms in a 120 ms tone", expected, got)
    assert got == expected


def test_ten_keys_per_second() -> None:
    rng = np.random.default_rng(5)
    digits = "".join(rng.choice(list(DIGITS), 200))
    got = keys_in(np.concatenate((silence(0.1), dial(digits, 0.05, 0.05))))
    record("10 keys/s (50 ms on, 50 ms off)", digits, got)
    assert got == digits


def test_a_key_held_for_seconds_is_one_event() -> None:
    events = detect(stream([dtmf_tone("7", 3.0, -20)]))
    assert [e.digit for e in events] == ["7"]
    assert events[0].end_s - events[0].start_s == pytest.approx(3.0, abs=0.01)


# -- twist and levels ---------------------------------------------------------------------


@pytest.mark.parametrize(("twist_db", "accept"), [
    (8.0, True), (4.0, True), (0.0, True), (-4.0, True),
    (10.0, False), (12.0, False), (-6.0, False), (-8.0, False),
])
@pytest.mark.parametrize("level", [-8.0, -20.0, -30.0])
def test_twist(twist_db: float, accept: bool, level: float) -> None:
    """Q.24: accept 8 dB normal (column louder) and 4 dB reverse twist. Rejected from 10 and
    6 dB (limits 9 and 5 dB: 1 dB each side for the measurement)."""
    parts = [dtmf_tone(key, 0.08, level, twist_db, phases=phases(k))
             for k, key in enumerate(DIGITS)]
    got = keys_in(stream(parts))
    record(f"twist {twist_db:+g} dB at {level:g} dBm0", DIGITS, got)
    assert got == (DIGITS if accept else "")


@pytest.mark.parametrize("level", [-3.0, -10.0, -20.0, -30.0, -36.0])
def test_levels_from_minus_3_to_minus_36_dbm0_are_detected(level: float) -> None:
    parts = [dtmf_tone(key, 0.06, level, phases=phases(k)) for k, key in enumerate(DIGITS)]
    got = keys_in(stream(parts))
    record(f"level {level:g} dBm0 per tone", DIGITS, got)
    assert got == DIGITS


@pytest.mark.parametrize("level", [-45.0, -50.0, -60.0])
def test_levels_below_minus_45_dbm0_are_rejected(level: float) -> None:
    parts = [dtmf_tone(key, 0.1, level, phases=phases(k)) for k, key in enumerate(DIGITS)]
    got = keys_in(stream(parts))
    record(f"level {level:g} dBm0 per tone", DIGITS, got)
    assert got == ""


@pytest.mark.parametrize("twist_db", [8.0, -4.0])
def test_dynamic_range_with_twist(twist_db: float) -> None:
    """The weaker tone down to −36 dBm0 with the stronger one twisted above it."""
    level = -36 + abs(twist_db) / 2  # dtmf_tone splits the twist evenly
    parts = [dtmf_tone(key, 0.08, level, twist_db, phases=phases(k))
             for k, key in enumerate(DIGITS)]
    got = keys_in(stream(parts))
    record(f"weak tone at -36 dBm0, twist {twist_db:+g} dB", DIGITS, got)
    assert got == DIGITS


# -- noise, distortion, coding ------------------------------------------------------------


def noisy_keys(rng: np.random.Generator, n: int, snr_db: float, tone_s: float,
               level: float = -20.0) -> tuple[str, Samples]:
    """n random keys (random ±1.5 % offsets and phases) in white noise (0-4 kHz) whose power
    is `snr_db` below the two tones' total power."""
    digits = "".join(rng.choice(list(DIGITS), n))
    parts = [silence(0.1)]
    for key in digits:
        off = rng.uniform(-0.015, 0.015, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        parts += [dtmf_tone(key, tone_s, level, freq_offset=(off[0], off[1]),
                            phases=(ph[0], ph[1])),
                  silence(tone_s + rng.uniform(0, 0.005))]
    x = np.concatenate(parts)
    power = dbm0_to_peak(level) ** 2  # two tones of peak p: 2·p²/2
    noise = rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))
    return digits, (x + noise).astype(np.float32)


def test_500_keys_at_15_db_signal_to_noise() -> None:
    """Q.24: 15 dB S/N. 40 ms tones with 40 ms pauses, the shortest Q.24 allows, at random
    ±1.5 % frequency errors: every key, nothing else."""
    digits, x = noisy_keys(np.random.default_rng(15), 500, 15.0, 0.04)
    got = keys_in(x)
    record("S/N 15 dB, 500 keys 40/40 ms, ±1.5 %", digits, got)
    assert got == digits


@pytest.mark.parametrize("snr_db", [12.0, 10.0])
def test_below_15_db_signal_to_noise_is_measured(snr_db: float) -> None:
    digits, x = noisy_keys(np.random.default_rng(int(snr_db)), 300, snr_db, 0.05)
    got = keys_in(x)
    record(f"S/N {snr_db:g} dB, 300 keys 50/50 ms, ±1.5 % (info)", digits, got)
    assert found(digits, got) >= 0.9 * len(digits) and len(got) <= len(digits)


@pytest.mark.parametrize("level", [-50.0, -30.0, -15.0, -5.0])
def test_noise_alone_gives_no_key(level: float) -> None:
    rng = np.random.default_rng(int(-level))
    x = (rng.standard_normal(30 * RATE) * dbm0_to_peak(level) / np.sqrt(2)).astype(np.float32)
    assert keys_in(x) == ""


@pytest.mark.parametrize(("harmonic_db", "accept"), [(-20.0, True), (-30.0, True),
                                                     (-10.0, False), (-6.0, False)])
def test_harmonic_distortion(harmonic_db: float, accept: bool) -> None:
    """Q.23 keeps a sender's distortion ≥ 20 dB down: accepted. Strong harmonics are what a
    musical instrument holding two notes has: rejected (talk-off)."""
    parts = []
    for k, key in enumerate(DIGITS):
        x = dtmf_tone(key, 0.08, -10, phases=phases(k))
        for f in frequencies(key):
            for h in (2, 3):
                if h * f < 3400:
                    x = x + single_tone(h * f, 0.08, -10 + harmonic_db)
        parts.append(x)
    got = keys_in(stream(parts))
    record(f"harmonics {harmonic_db:g} dB", DIGITS, got)
    assert got == (DIGITS if accept else "")


@pytest.mark.parametrize(("dc", "hum_dbm0"), [(0.03, None), (-0.03, None), (0.0, -40.0),
                                              (0.01, -45.0)])
def test_dc_offset_and_mains_hum(dc: float, hum_dbm0: float | None) -> None:
    """A line interface's DC offset (here up to 3 % of full scale, 40 dB above the tones)
    is not signal; mains hum (50 Hz + 150 Hz 10 dB lower) counts as noise."""
    digits = DIGITS
    x = np.concatenate((silence(0.1), dial(digits, 0.06, 0.06, level_dbm0=-36))) + dc
    if hum_dbm0 is not None:
        seconds = len(x) / RATE
        x = x + single_tone(50, seconds, hum_dbm0) + single_tone(150, seconds, hum_dbm0 - 10)
    got = keys_in(x.astype(np.float32))
    record(f"-36 dBm0 with DC {dc:+g}, hum {hum_dbm0} dBm0", digits, got)
    assert got == digits


def test_a_second_tone_in_a_group_rejects_the_key() -> None:
    parts = []
    for k, key in enumerate(DIGITS):
        row = frequencies(key)[0]
        other = ROWS[(ROWS.index(row) + 2) % 4]
        parts.append(dtmf_tone(key, 0.08, -10, phases=phases(k)) + single_tone(other, 0.08, -10))
    assert keys_in(stream(parts)) == ""


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("level", [-3.0, -36.0])
def test_keys_through_g711(law: str, level: float) -> None:
    """The line audio of a SIP trunk is G.711: quantisation noise must not matter."""
    digits = DIGITS * 2
    x = np.concatenate((silence(0.1), dial(digits, 0.05, 0.05, level_dbm0=level)))
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    coded = ulaw_decode(ulaw_encode(pcm)) if law == "ulaw" else alaw_decode(alaw_encode(pcm))
    got = keys_in((coded / 32768).astype(np.float32))
    record(f"G.711 {law} at {level:g} dBm0", digits, got)
    assert got == digits


# -- streaming ------------------------------------------------------------------------------


def test_events_do_not_depend_on_chunking() -> None:
    x = np.concatenate((silence(0.13), dial("0123456789*#ABCD", 0.06, 0.07)))
    reference = detect(x, len(x))
    assert "".join(e.digit for e in reference) == "0123456789*#ABCD"
    for chunk in (1, 37, 101, 800, 4000):
        assert detect(x, chunk) == reference
    assert detect(x, 800, DtmfDetector(batch_s=0)) == reference
    assert detect(x, 800, DtmfDetector(batch_s=1.0)) == reference


def test_event_times_follow_the_tones() -> None:
    """Start and end within 6 ms of the tone's (blocks start every 4.25 ms)."""
    starts = [0.1 + 0.2 * i + 0.00037 * i for i in range(16)]
    x = silence(3.6)
    for key, t in zip(DIGITS, starts, strict=True):
        tone = dtmf_tone(key, 0.07, -10)
        i = round(t * RATE)
        x[i : i + len(tone)] = tone
    events = detect(x)
    assert "".join(e.digit for e in events) == DIGITS
    for e, t in zip(events, starts, strict=True):
        assert e.start_s == pytest.approx(round(t * RATE) / RATE, abs=0.006)
        assert e.end_s == pytest.approx(round(t * RATE) / RATE + 0.07, abs=0.006)


def test_keys_are_reported_when_they_end_and_at_flush() -> None:
    det = DtmfDetector(batch_s=0)
    tone = np.concatenate((silence(0.05), dtmf_tone("5", 0.3, -10)))
    assert det.feed(tone) == []  # still pressed
    assert [e.digit for e in det.feed(silence(0.1))] == ["5"]  # ended
    assert det.feed(dtmf_tone("9", 0.2, -10)) == []
    [last] = det.flush()  # the input ends with the key held
    assert last.digit == "9" and last.end_s == pytest.approx(0.65, abs=0.006)
    assert det.flush() == []
    # After a flush the clock keeps running.
    det.feed(dtmf_tone("1", 0.1, -10))
    [after] = det.feed(silence(0.1)) + det.flush()
    assert after.digit == "1" and after.start_s == pytest.approx(0.65, abs=0.006)


def test_settled_time_never_passes_a_key_still_to_be_reported() -> None:
    det = DtmfDetector()
    x = stream([dtmf_tone(k, 0.08, -10) for k in "A0201C"], 0.08)
    reported: list[DtmfEvent] = []
    for i in range(0, len(x), CHUNK):
        reported += det.feed(x[i : i + CHUNK])
        settled = det.settled_s
        assert settled <= (i + CHUNK) / RATE
        late = detect(x)[len(reported):]  # keys not reported yet all start after it
        assert all(e.start_s >= settled - 1e-9 for e in late)


def test_thresholds_are_configurable() -> None:
    lenient = DtmfDetector(DtmfThresholds(normal_twist_db=14.0))
    x = stream([dtmf_tone("3", 0.08, -10, 12.0)])
    assert keys_in(x) == ""
    assert [e.digit for e in detect(x, detector=lenient)] == ["3"]
