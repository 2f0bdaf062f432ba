"""Ring, hook, polarity and voltage detection from sampled line voltage (1 sample = 1 ms)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import pytest

from callrec_mcu import linesense
from callrec_mcu.linesense import Debouncer, LineSense

Wave = Callable[[int], float]


def feed(sense: LineSense, volts: Iterable[float], t0: int = 0) -> list[tuple[int, str, object]]:
    """Feed samples; return (time_ms, kind, value) for every event."""
    out = []
    for i, v in enumerate(volts):
        for kind, value in sense.feed(v):
            out.append((t0 + i, kind, value))
    return out


def settled(volts: float = 48.0) -> LineSense:
    sense = LineSense()
    feed(sense, [volts] * 200)
    return sense


def kinds(events: list[tuple[int, str, object]], *wanted: str) -> list[tuple[int, str, object]]:
    return [e for e in events if e[1] in wanted]


def test_debouncer_needs_consecutive_agreement() -> None:
    d = Debouncer(3, state=False)
    assert [d.update(x) for x in (True, True, False, True, True)] == [False] * 5
    assert d.update(True) is True and d.state is True
    assert d.update(None) is False and d.state is True
    d.update(False)
    d.restart()
    assert [d.update(False) for _ in range(3)] == [False, False, True]


def test_start_up_reports_hook_once_and_no_polarity() -> None:
    events = feed(LineSense(), [48.0] * 500)
    assert kinds(events, "HOOK", "POL", "RING") == [(63, "HOOK", False)]


def test_french_ring_cadence(ring_wave: Wave) -> None:
    """1.5 s on / 3.5 s off, three times: one RING,1 and one RING,0 per burst, nothing else."""
    sense = settled()
    samples = []
    for t in range(3 * 5000):
        samples.append(ring_wave(t) if t % 5000 < 1500 else 48.0)
    events = feed(sense, samples)
    rings = kinds(events, "RING")
    assert [(k, v) for _, k, v in rings] == [("RING", True), ("RING", False)] * 3
    for n, (on, off) in enumerate(zip(rings[::2], rings[1::2], strict=True)):
        assert 0 < on[0] - n * 5000 <= 200  # detected within 200 ms of the burst start
        assert 0 < off[0] - (n * 5000 + 1500) <= 300  # and of its end
    assert kinds(events, "HOOK", "POL") == []
    assert sense.off_hook is False and sense.polarity == 1


@pytest.mark.parametrize("hz", [20.0, 50.0])
def test_other_ringing_frequencies(ring_wave: Wave, hz: float) -> None:
    sense = settled()
    events = feed(sense, [ring_wave(t, hz=hz) for t in range(1000)] + [48.0] * 1000)
    assert [(k, v) for _, k, v in kinds(events, "RING", "HOOK", "POL")] == [
        ("RING", True),
        ("RING", False),
    ]


def test_reversed_line_rings_too(ring_wave: Wave) -> None:
    sense = settled(-48.0)
    events = feed(sense, [ring_wave(t, dc=-48.0) for t in range(1000)])
    assert [(k, v) for _, k, v in kinds(events, "RING", "HOOK", "POL")] == [("RING", True)]


def test_reversals_and_hook_steps_are_not_rings() -> None:
    sense = settled()
    wave = [-48.0] * 300 + [48.0] * 300 + [8.0] * 300 + [48.0] * 300
    wave += [8.0 if (t // 50) % 2 else 48.0 for t in range(1000)]  # 10 pps pulse dialling
    assert kinds(feed(sense, wave), "RING") == []


def test_hook_debounce() -> None:
    sense = settled()
    assert feed(sense, [8.0] * 30 + [48.0] * 200) == []  # a 30 ms blip: ignored
    assert kinds(feed(sense, [8.0] * 63 + [48.0] * 200), "HOOK") == []
    events = feed(sense, [8.0] * 64 + [48.0] * 100)
    # Accepted on the 64th sample; the return to on-hook after 64 more.
    assert kinds(events, "HOOK") == [(63, "HOOK", True), (64 + 63, "HOOK", False)]
    assert sense.off_hook is False


def test_threshold_is_21_volts() -> None:
    sense = settled()
    assert kinds(feed(sense, [21.5] * 200), "HOOK") == []
    assert kinds(feed(sense, [20.5] * 200), "HOOK") == [(63, "HOOK", True)]


def test_polarity_reversal_and_blip() -> None:
    sense = settled()
    assert kinds(feed(sense, [-48.0] * 30 + [48.0] * 100), "POL") == []
    events = feed(sense, [-48.0] * 200)
    assert kinds(events, "POL", "HOOK") == [(63, "POL", -1)]
    events = feed(sense, [-8.0] * 100 + [8.0] * 100)  # off-hook, then the answer reversal
    assert kinds(events, "POL", "HOOK") == [(63, "HOOK", True), (163, "POL", 1)]


def test_battery_loss_changes_neither_hook_nor_polarity() -> None:
    sense = settled()
    events = feed(sense, [0.0] * 1000 + [48.0] * 200)
    assert kinds(events, "HOOK", "POL") == []
    assert [v for _, k, v in kinds(events, "VOLT")][:1] == [0.0]


def test_voltage_reports_on_change_and_periodically() -> None:
    sense = LineSense()
    events = kinds(feed(sense, [48.0] * 200), "VOLT")
    assert events == [(79, "VOLT", 48.0)]  # once two 40 ms blocks agree
    assert kinds(feed(sense, [46.5] * 2000), "VOLT") == []  # 1.5 V: not a change
    events = kinds(feed(sense, [8.0] * 200), "VOLT")
    assert [v for _, _, v in events] == [8.0]  # a step is reported once, not half-way
    events = kinds(feed(sense, [8.0] * 25000), "VOLT")
    assert len(events) == 2  # every 10 s while nothing changes
    assert events[1][0] - events[0][0] == linesense.VOLT_PERIOD_MS


def test_voltage_is_the_dc_during_ringing(ring_wave: Wave) -> None:
    sense = settled()
    events = feed(sense, [ring_wave(t) for t in range(12000)])
    assert [v for _, _, v in kinds(events, "VOLT")] == [48.0]  # the periodic one only


def test_quiet_samples_do_not_allocate() -> None:
    sense = settled()
    assert sense.feed(48.0) is sense.feed(48.0)


def test_noisy_line(ring_wave: Wave) -> None:
    """±3 V of noise (ADC, hum) adds no event and loses none."""
    rng = random.Random(5)

    def noisy(volts: list[float]) -> list[float]:
        return [v + rng.uniform(-3.0, 3.0) for v in volts]

    sense = settled()
    wave = noisy([ring_wave(t) for t in range(1500)] + [48.0] * 2000 + [8.0] * 2000)
    wave += noisy([-8.0] * 2000 + [-48.0] * 2000)
    got = [(k, v) for _, k, v in kinds(feed(sense, wave), "RING", "HOOK", "POL")]
    assert got == [
        ("RING", True),
        ("RING", False),
        ("HOOK", True),
        ("POL", -1),
        ("HOOK", False),
    ]
