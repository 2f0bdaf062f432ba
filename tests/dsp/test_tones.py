"""Call-progress tones: every tone of every plan, tolerances, levels, noise, streaming."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callrec.dsp.cadence import Cadence, CadenceTracker, ToneEvent
from callrec.dsp.gen_tones import sine, tone_plan_signal
from callrec.dsp.signal import RATE, dbm0_to_peak
from callrec.dsp.tones import TONE_PLANS, ToneDetector, ToneSpec, tone_plan

CHUNK = 800  # the daemon's 100 ms capture buffers
LEAD_S = 0.5  # silence before each test signal
ALL_TONES = [(c, t) for c, plan in TONE_PLANS.items() for t in plan]


def name(country: str, key: str) -> str:
    """The tone reported for a plan entry (variants report their tone's name)."""
    return TONE_PLANS[country][key].tone or key


def silence(seconds: float) -> npt.NDArray[np.float32]:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def framed(signal: npt.NDArray[np.float32], tail_s: float = 1.0) -> npt.NDArray[np.float32]:
    return np.concatenate((silence(LEAD_S), signal, silence(tail_s)))


def add_noise(x: npt.NDArray[np.float32], snr_db: float, power: float,
              seed: int = 1) -> npt.NDArray[np.float32]:
    """White noise `snr_db` below `power` (the tone's power while it is on)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def tone_power(spec: ToneSpec, level_dbm0: float) -> float:
    return len(spec.freqs) * dbm0_to_peak(level_dbm0) ** 2 / 2


def detect(country: str, x: npt.NDArray[np.float32], chunk: int = CHUNK,
           batch_s: float = 0.2) -> tuple[list[ToneEvent], dict[str, float]]:
    """Events, and when `current` first showed each tone (end of the chunk fed)."""
    det = ToneDetector(country, batch_s=batch_s)
    events: list[ToneEvent] = []
    first_seen: dict[str, float] = {}
    for i in range(0, x.size, chunk):
        events += det.feed(x[i:i + chunk])
        cur = det.current
        if cur is not None:
            first_seen.setdefault(cur.tone, (i + chunk) / RATE)
    return events + det.flush(), first_seen


def decision_time(spec: ToneSpec) -> float:
    """When a tone can be recognised, from its start: `cycles` bursts, or `min_s`."""
    if spec.on_s is None or spec.off_s is None:
        return spec.min_s
    return spec.cycles * spec.on_s + (spec.cycles - 1) * spec.off_s


@pytest.mark.parametrize(("country", "tone"), ALL_TONES)
def test_each_tone_is_recognised_within_its_cycles(country: str, tone: str) -> None:
    spec = TONE_PLANS[country][tone]
    duration = 24.0 if tone == "ringback" else 8.0
    events, seen = detect(country, framed(tone_plan_signal(country, tone, duration, -20)))
    assert [e.tone for e in events] == [name(country, tone)]
    ev = events[0]
    assert ev.start_s == pytest.approx(LEAD_S, abs=0.01)
    if spec.on_s is None or spec.off_s is None:
        assert ev.end_s == pytest.approx(LEAD_S + duration, abs=0.01)
        assert (ev.cycles, ev.on_s, ev.off_s) == (1, None, None)
    else:
        period = spec.on_s + spec.off_s
        bursts = int(np.ceil(duration / period - spec.on_s / period + 1e-9))
        last_on = (bursts - 1) * period
        assert ev.cycles == bursts
        assert ev.end_s == pytest.approx(LEAD_S + last_on + spec.on_s, abs=0.01)
        assert ev.on_s == pytest.approx(spec.on_s, abs=0.008)
        assert ev.off_s == pytest.approx(spec.off_s, abs=0.008)
    # Live: the tone shows as `current` right after its stated cycles (+ batch and chunk).
    assert seen[name(country, tone)] <= LEAD_S + decision_time(spec) + 0.35


@pytest.mark.parametrize("error", [-0.10, 0.10, -0.25, 0.25])
@pytest.mark.parametrize(("country", "tone"),
                         [(c, t) for c, t in ALL_TONES if TONE_PLANS[c][t].on_s is not None])
def test_cadence_within_10_percent_accepted_25_percent_rejected(
        country: str, tone: str, error: float) -> None:
    x = framed(tone_plan_signal(country, tone, 26.0, -20, cadence_error=error))
    events, _ = detect(country, x)
    if abs(error) <= 0.10:
        assert [e.tone for e in events] == [name(country, tone)]
        spec = TONE_PLANS[country][tone]
        assert spec.on_s is not None
        # Edges of dual tones are timed within a few ms (partial windows leak).
        assert events[0].on_s == pytest.approx(spec.on_s * (1 + error), abs=0.008)
    else:
        assert events == []


@pytest.mark.parametrize("error", [-0.02, -0.015, 0.015, 0.02])
@pytest.mark.parametrize(("country", "tone"), ALL_TONES)
def test_frequency_error_within_2_percent_accepted(country: str, tone: str,
                                                   error: float) -> None:
    duration = 14.0 if tone == "ringback" else 5.0
    x = framed(tone_plan_signal(country, tone, duration, -20, freq_error=error))
    assert [e.tone for e in detect(country, x)[0]] == [name(country, tone)]


@pytest.mark.parametrize("error", [-0.10, -0.05, -0.035, 0.035, 0.05, 0.10])
@pytest.mark.parametrize(("country", "tone"),
                         [(c, t) for c in TONE_PLANS for t in ("dial", "busy")])
def test_frequency_error_beyond_3_5_percent_rejected(country: str, tone: str,
                                                     error: float) -> None:
    x = framed(tone_plan_signal(country, tone, 6.0, -20, freq_error=error))
    assert detect(country, x)[0] == []


@pytest.mark.parametrize("level", [-10.0, -20.0, -30.0])
@pytest.mark.parametrize(("country", "tone"), ALL_TONES)
def test_levels_down_to_minus_30_dbm0(country: str, tone: str, level: float) -> None:
    duration = 14.0 if tone == "ringback" else 5.0
    x = framed(tone_plan_signal(country, tone, duration, level))
    assert [e.tone for e in detect(country, x)[0]] == [name(country, tone)]


def test_tones_far_below_the_minimum_level_are_ignored() -> None:
    x = framed(tone_plan_signal("fr", "busy", 6.0, -45))
    assert detect("fr", x)[0] == []


@pytest.mark.parametrize(("level", "snr", "error"),
                         [(-20.0, 15.0, 0.02), (-30.0, 15.0, -0.02), (-20.0, 10.0, 0.0)])
@pytest.mark.parametrize(("country", "tone"), ALL_TONES)
def test_15_db_signal_to_noise_with_2_percent_error(country: str, tone: str, level: float,
                                                    snr: float, error: float) -> None:
    """15 dB S/N (white noise over the band) with ±2 % error; 10 dB on frequency."""
    spec = TONE_PLANS[country][tone]
    duration = 14.0 if tone == "ringback" else 6.0
    x = framed(tone_plan_signal(country, tone, duration, level, freq_error=error))
    x = add_noise(x, snr, tone_power(spec, level), seed=len(tone))
    events = detect(country, x)[0]
    assert [e.tone for e in events] == [name(country, tone)]
    if spec.on_s is not None:
        assert events[0].on_s == pytest.approx(spec.on_s, abs=0.01)


def test_result_does_not_depend_on_chunk_size_or_batching() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([
        framed(tone_plan_signal("us", "dial", 2.5, -15)),
        (rng.standard_normal(RATE) * 0.02).astype(np.float32),
        tone_plan_signal("us", "ringback", 13.0, -19),
        tone_plan_signal("us", "busy", 4.2, -24),
        silence(1.0),
        tone_plan_signal("us", "congestion", 3.1, -24),
    ])
    x = add_noise(x, 40.0, 1e-3)
    reference, _ = detect("us", x)
    assert [e.tone for e in reference] == ["dial", "ringback", "busy", "congestion"]
    for chunk, batch in [(1, 0.2), (37, 0.2), (160, 0.2), (8000, 0.2), (x.size, 0.2),
                         (37, 0.0), (160, 0.0), (800, 0.0), (1001, 0.05)]:
        events, _ = detect("us", x, chunk=chunk, batch_s=batch)
        assert len(events) == len(reference), (chunk, batch)
        for got, want in zip(events, reference, strict=True):
            assert got.tone == want.tone and got.cycles == want.cycles
            assert got.start_s == pytest.approx(want.start_s, abs=1e-4)
            assert got.end_s == pytest.approx(want.end_s, abs=1e-4)


def test_one_tone_after_another_on_the_same_frequency() -> None:
    """France: dial, ringback, then busy are all 440 Hz; only the cadence tells them apart."""
    x = np.concatenate([
        framed(tone_plan_signal("fr", "dial", 3.0, -10), tail_s=0.8),
        tone_plan_signal("fr", "ringback", 11.5, -15),
        silence(1.0),
        tone_plan_signal("fr", "busy", 4.5, -20),
        tone_plan_signal("fr", "congestion", 2.5, -20),
    ])
    events, _ = detect("fr", x)
    assert [e.tone for e in events] == ["dial", "ringback", "busy", "congestion"]
    assert events[0].end_s == pytest.approx(3.5, abs=0.01)
    assert events[1].start_s == pytest.approx(4.3, abs=0.01)


def test_current_is_the_hang_up_fallback() -> None:
    """A busy tone after speech-like noise shows as `current` ~2.5 s in, and stays there."""
    rng = np.random.default_rng(2)
    talk = (rng.standard_normal(5 * RATE) * 0.1).astype(np.float32)
    busy = tone_plan_signal("fr", "busy", 10.0, -20)
    x = np.concatenate((talk, busy))
    det = ToneDetector("fr")
    seen: list[tuple[float, ToneEvent]] = []
    for i in range(0, x.size, CHUNK):
        assert det.feed(x[i:i + CHUNK]) == []
        if det.current is not None:
            seen.append(((i + CHUNK) / RATE, det.current))
    assert seen and seen[0][0] <= 5.0 + 2.5 + 0.35
    assert {c.tone for _, c in seen} == {"busy"}
    starts = {c.start_s for _, c in seen}
    assert len(starts) == 1 and starts.pop() == pytest.approx(5.0, abs=0.01)
    final = det.flush()
    assert [e.tone for e in final] == ["busy"] and final[0].start_s == seen[0][1].start_s
    assert det.current is None  # flushed: a fresh detector


def test_425_and_440_hz_plans_do_not_mix() -> None:
    fr_busy = framed(tone_plan_signal("fr", "busy", 6.0, -15))
    eu_busy = framed(tone_plan_signal("eu", "busy", 6.0, -15))
    assert detect("eu", fr_busy)[0] == [] and detect("fr", eu_busy)[0] == []


def test_a_melody_on_the_tone_frequency_is_not_a_busy_tone() -> None:
    """440 Hz for 0.5 s, another note for 0.5 s, ...: the gaps are not quiet."""
    notes = [sine(440.0, 0.5, -15) if i % 2 == 0 else sine(330.0, 0.5, -15)
             for i in range(12)]
    x = framed(np.concatenate(notes))
    assert detect("fr", x)[0] == []
    with_gaps = framed(np.concatenate([n if i % 2 == 0 else silence(0.5)
                                       for i, n in enumerate(notes)]))
    assert [e.tone for e in detect("fr", with_gaps)[0]] == ["busy"]


def test_a_single_burst_or_a_short_tone_is_nothing() -> None:
    x = framed(np.concatenate((sine(440.0, 0.5, -10), silence(0.5), sine(440.0, 0.5, -10))))
    assert detect("fr", x)[0] == []
    assert detect("fr", framed(sine(440.0, 1.5, -10)))[0] == []  # fr dial needs 2 s


def test_country_plans() -> None:
    assert set(TONE_PLANS) >= {"fr", "eu", "us"}
    for plan in TONE_PLANS.values():
        assert {s.tone or k for k, s in plan.items()} == {"dial", "busy", "ringback",
                                                          "congestion"}
    assert tone_plan("FR") is TONE_PLANS["fr"]
    with pytest.raises(ValueError, match="no call-progress tone plan for country 'xx'"):
        ToneDetector("xx")
    custom = {"busy": ToneSpec((400.0,), 0.375, 0.375, cycles=3)}
    x = framed(np.concatenate([np.concatenate((sine(400.0, 0.375, -15), silence(0.375)))
                               for _ in range(6)]))
    det = ToneDetector("zz", plan=custom)
    got = [e for i in range(0, x.size, CHUNK) for e in det.feed(x[i:i + CHUNK])]
    got += det.flush()
    assert [(e.tone, e.cycles) for e in got] == [("busy", 6)]


# -- the cadence tracker alone ------------------------------------------------------------


def run_tracker(cadences: list[Cadence], bursts: list[tuple[float, float]],
                end: float) -> list[ToneEvent]:
    tr = CadenceTracker(cadences)
    out: list[ToneEvent] = []
    for on, off in bursts:
        out += tr.on(on)
        out += tr.tick((on + off) / 2)
        out += tr.off(off)
    return out + tr.finish(end)


BUSY = Cadence("busy", 0.5, 0.5, cycles=3)
CONGESTION = Cadence("congestion", 0.25, 0.25, cycles=4)
DIAL = Cadence("dial", min_s=2.0)


def test_tracker_needs_its_cycles() -> None:
    two = [(0.0, 0.5), (1.0, 1.5)]
    assert run_tracker([BUSY], two, 3.0) == []
    three = [*two, (2.0, 2.5)]
    assert run_tracker([BUSY], three, 3.0) == [ToneEvent("busy", 0.0, 2.5, 3, 0.5, 0.5)]


def test_tracker_tolerance_band() -> None:
    # ±(15 % + 10 ms): 0.5 s accepts 0.415..0.585 s.
    def bursts(on: float, off: float) -> list[tuple[float, float]]:
        return [(i * (on + off), i * (on + off) + on) for i in range(5)]

    assert run_tracker([BUSY], bursts(0.58, 0.42), 9)[0].cycles == 5
    assert run_tracker([BUSY], bursts(0.59, 0.5), 9) == []
    assert run_tracker([BUSY], bursts(0.5, 0.41), 9) == []


def test_tracker_ends_the_tone_when_a_burst_or_gap_breaks_the_pattern() -> None:
    bursts = [(0.0, 0.5), (1.0, 1.5), (2.0, 2.5), (3.0, 3.5), (4.3, 4.8)]  # 0.8 s gap
    events = run_tracker([BUSY], bursts, 6)
    assert events == [ToneEvent("busy", 0.0, 3.5, 4, 0.5, 0.5)]


def test_tracker_dial_needs_min_s_and_ends_with_the_burst() -> None:
    tr = CadenceTracker([DIAL, BUSY])
    assert tr.on(1.0) == []
    assert tr.tick(2.9) == [] and tr.progress(2.9) is None
    assert tr.deadline == pytest.approx(3.0)
    assert tr.tick(3.0) == []
    assert tr.progress(3.5) == ToneEvent("dial", 1.0, 3.5, 1, None, None)
    assert tr.off(7.0) == [ToneEvent("dial", 1.0, 7.0, 1, None, None)]
    assert tr.finish(8.0) == []


def test_tracker_rejects_noisy_gaps() -> None:
    tr = CadenceTracker([CONGESTION])
    out: list[ToneEvent] = []
    for i in range(8):
        out += tr.on(i * 0.5, quiet_gap=i != 5)
        out += tr.off(i * 0.5 + 0.25)
    out += tr.finish(5.0)
    assert [(e.start_s, e.cycles) for e in out] == [(0.0, 5)]


def test_tracker_validation() -> None:
    with pytest.raises(ValueError):
        CadenceTracker([])
    with pytest.raises(ValueError):
        CadenceTracker([DIAL, Cadence("other", min_s=1.0)])
