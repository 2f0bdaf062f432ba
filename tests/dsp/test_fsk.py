"""The 1200 bit/s FSK demodulator and UART (V.23 and Bell 202), below the message layer."""

from __future__ import annotations

import numpy as np
import pytest
from test_callerid_signals import embed

from callrec.dsp.fsk import (
    BELL202,
    SPECS,
    V23,
    CarrierDown,
    CarrierUp,
    FskByte,
    FskDemodulator,
    FskEvent,
    FskSpec,
)
from callrec.dsp.gen_callerid import etsi_message, fsk_burst

MSG = etsi_message(number="0612345678", name="DUPONT JEAN", datetime="01021230")


def run(x: np.ndarray, spec: FskSpec, chunk: int = 800) -> list[FskEvent]:
    demod = FskDemodulator(spec)
    events: list[FskEvent] = []
    for a in range(0, len(x), chunk):
        events += demod.feed(x[a : a + chunk])
    return events + demod.flush()


def received(events: list[FskEvent]) -> bytes:
    return bytes(e.value for e in events if isinstance(e, FskByte))


@pytest.mark.parametrize("standard", ["etsi-v23", "bell202"])
def test_bytes_seizure_mark_and_carrier(standard: str) -> None:
    x = embed(0.3, fsk_burst(MSG, standard), 0.3)
    events = run(x, SPECS[standard])
    ups = [e for e in events if isinstance(e, CarrierUp)]
    downs = [e for e in events if isinstance(e, CarrierDown)]
    assert len(ups) == len(downs) == 1
    assert abs(ups[0].time_s - 0.3) < 0.006  # detected within one 5 ms sub-block
    burst_end = 0.3 + (300 + 180 + 10 * len(MSG) + 5) / 1200
    assert 0 < downs[0].time_s - burst_end < 0.02
    data = received(events)
    assert b"\x55" * 25 in data[:30]  # channel seizure, as a UART sees it
    assert data.endswith(MSG)
    first = next(e for e in events if isinstance(e, FskByte) and e.value == 0x80)
    assert first.idle_bits > 170  # the mark period
    assert first.mark_quality > 0.95
    chars = [e for e in events if isinstance(e, FskByte)]
    assert all(e.framing_ok for e in chars[-len(MSG) :])
    assert abs(first.start_s - (0.3 + 480 / 1200)) < 0.2e-3  # start-bit edge, sub-sample


@pytest.mark.parametrize("spec", [V23, BELL202], ids=lambda s: s.name)
@pytest.mark.parametrize("freq_error", [-0.03, -0.015, 0.015, 0.03])
@pytest.mark.parametrize("baud_error", [-0.02, 0.0, 0.02])
def test_frequency_and_bit_rate_tolerance(spec: FskSpec, freq_error: float,
                                          baud_error: float) -> None:
    # Standards: ±16 Hz (V.23, EN 300 659-1) / ±1 % (GR-30) tones, ±1 % bit rate. We take 2x.
    x = embed(0.1, fsk_burst(MSG, spec.name, -25, freq_error=freq_error,
                             baud_error=baud_error), 0.1)
    assert received(run(x, spec)).endswith(MSG)


@pytest.mark.parametrize("spec", [V23, BELL202], ids=lambda s: s.name)
@pytest.mark.parametrize("twist_db", [-10.0, -6.0, 6.0, 10.0])
def test_twist(spec: FskSpec, twist_db: float) -> None:
    x = embed(0.1, fsk_burst(MSG, spec.name, -20, twist_db=twist_db), 0.1)
    assert received(run(x, spec)).endswith(MSG)


def test_each_demodulator_hears_the_other_standard_and_measures_its_tones() -> None:
    # The tones are only 100 Hz apart: either receiver reads either burst, which is why the
    # decoder labels a message by the mark frequency it measured, not by the receiver.
    for sent in (V23, BELL202):
        for spec in (V23, BELL202):
            demod = FskDemodulator(spec)
            events = demod.feed(embed(0.1, fsk_burst(MSG, sent.name), 0.1))
            assert received(events).endswith(MSG)
            mark, _ = demod.measure_tones(0.1 + 320 / 1200, 0.1 + 470 / 1200)  # mark period
            assert abs(mark - sent.mark_hz) < 15


def test_marking_between_characters_and_no_end_marks() -> None:
    x = embed(0.1, fsk_burst(MSG, "etsi-v23", marks_between_bytes=10, end_mark_bits=0), 0.2)
    events = run(x, V23)
    assert received(events).endswith(MSG)
    idle = [e.idle_bits for e in events if isinstance(e, FskByte)][-len(MSG) + 1 :]
    assert all(9.5 < i < 10.5 for i in idle)


def test_chunk_size_does_not_change_the_events() -> None:
    x = embed(0.13, fsk_burst(MSG, "bell202", -30), 0.2)
    reference = run(x, BELL202, chunk=len(x))
    for chunk in (1, 7, 39, 160, 801):
        assert run(x, BELL202, chunk=chunk) == reference


def test_silence_and_low_level_give_no_carrier() -> None:
    assert run(np.zeros(8000, dtype=np.float32), V23) == []
    x = embed(0.1, fsk_burst(MSG, "etsi-v23", -52), 0.1)  # below the -48 dBm0 floor
    assert run(x, V23) == []


def test_skipping_quiet_audio_keeps_time() -> None:
    demod = FskDemodulator(V23)
    assert demod.idle
    demod.advance_silent(8000)
    events = demod.feed(embed(fsk_burst(MSG, "etsi-v23"), 0.1)) + demod.flush()
    up = next(e for e in events if isinstance(e, CarrierUp))
    assert abs(up.time_s - 1.0) < 0.006
    assert received(events).endswith(MSG)
