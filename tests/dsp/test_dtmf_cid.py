"""DTMF caller ID: parsing of the key sequences and the streaming decoder on line audio."""

from __future__ import annotations

import numpy as np
import pytest

from callrec.dsp.callerid_types import STANDARD_DTMF_CID, CallerIdMessage
from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.dtmf_cid import (
    DtmfCallerId,
    DtmfCallerIdDecoder,
    DtmfCidAssembler,
    parse_dtmf_cid,
)
from callrec.dsp.gen_dtmf import dial, silence
from callrec.dsp.signal import RATE, Samples

CHUNK = 800


@pytest.mark.parametrize(("keys", "number", "absence"), [
    ("A0201234567C", "0201234567", None),
    ("A0201234567#", "0201234567", None),
    ("D0612345678C", "0612345678", None),  # Denmark / Brazil: D is the start key
    ("D0612345678#", "0612345678", None),
    ("B00C", None, "O"),
    ("B10C", None, "P"),
    ("D00C", None, "O"),
    ("D10C", None, "P"),
    ("D1#", None, "P"),  # Danish one-digit codes
    ("D2#", None, "O"),
    ("D3#", None, "O"),
    ("B77C", None, "O"),  # an information code not understood: still no number
    ("A0612345678D0298765432C", "0612345678", None),  # D after A: redirecting number
    ("A0612345678B10C", "0612345678", None),
])
def test_well_formed_messages(keys: str, number: str | None, absence: str | None) -> None:
    parsed = parse_dtmf_cid(keys)
    assert parsed.well_formed
    assert (parsed.number, parsed.absence) == (number, absence)


def test_redirecting_number_and_information_code_are_kept() -> None:
    assert parse_dtmf_cid("A0612345678D0298765432C") == DtmfCallerId(
        True, "0612345678", None, "0298765432", None)
    assert parse_dtmf_cid("B10C").info_code == "10"


@pytest.mark.parametrize("keys", [
    "", "A", "A0201", "AC", "DC", "BC", "A02*01C", "A0201A0202C", "B1#0C", "C0201A",
    "0201234567C", "#A0201C",
])
def test_malformed_messages(keys: str) -> None:
    assert not parse_dtmf_cid(keys).well_formed


def events_of(keys: str, start_s: float = 0.5, tone_s: float = 0.07, gap_s: float = 0.07
              ) -> list[DtmfEvent]:
    out, t = [], start_s
    for k in keys:
        out.append(DtmfEvent(k, t, t + tone_s))
        t += tone_s + gap_s
    return out


def test_assembler_ignores_keys_outside_a_message() -> None:
    asm = DtmfCidAssembler()
    out: list[CallerIdMessage] = []
    for e in events_of("123*#A0201C99"):
        out += asm.push(e)
    [msg] = out
    assert msg.number == "0201" and msg.checksum_ok and msg.standard == STANDARD_DTMF_CID
    assert asm.flush() == []


def test_a_message_without_end_key_within_a_second_is_reported_bad() -> None:
    asm = DtmfCidAssembler()
    keys = events_of("A0201")
    for e in keys:
        assert asm.push(e) == []
    assert asm.advance(keys[-1].end_s + 0.9) == []
    [bad] = asm.advance(keys[-1].end_s + 1.1)
    assert (bad.checksum_ok, bad.number, bad.absence) == (False, None, None)
    assert (bad.start_s, bad.end_s) == (keys[0].start_s, keys[-1].end_s)


def test_a_late_key_closes_the_old_message_and_can_start_a_new_one() -> None:
    asm = DtmfCidAssembler()
    first = events_of("A12")
    second = events_of("A0201C", start_s=first[-1].end_s + 1.5)
    out: list[CallerIdMessage] = []
    for e in first + second:
        out += asm.push(e)
    assert [(m.checksum_ok, m.number) for m in out] == [(False, None), (True, "0201")]


def test_too_long_a_message_is_bad() -> None:
    asm = DtmfCidAssembler()
    out: list[CallerIdMessage] = []
    for e in events_of("A" + "1" * 60 + "C"):
        out += asm.push(e)
    assert out and not out[0].checksum_ok


def test_flush_reports_an_open_message_as_bad() -> None:
    asm = DtmfCidAssembler()
    for e in events_of("B1"):
        asm.push(e)
    [bad] = asm.flush()
    assert not bad.checksum_ok


# -- on line audio ------------------------------------------------------------------------


def decode(x: Samples, decoder: DtmfCallerIdDecoder | None = None) -> list[CallerIdMessage]:
    dec = decoder or DtmfCallerIdDecoder()
    out: list[CallerIdMessage] = []
    for i in range(0, len(x), CHUNK):
        out += dec.feed(x[i : i + CHUNK])
    return out + dec.flush()


@pytest.mark.parametrize(("keys", "number", "absence"), [
    ("A0201234567C", "0201234567", None),
    ("D0612345678#", "0612345678", None),
    ("D10C", None, "P"),
    ("B00C", None, "O"),
])
@pytest.mark.parametrize(("tone_s", "gap_s", "level"), [(0.08, 0.08, -10.0),
                                                        (0.05, 0.05, -30.0)])
def test_decoder_on_audio(keys: str, number: str | None, absence: str | None, tone_s: float,
                          gap_s: float, level: float) -> None:
    """As the line simulator sends it (80/80 ms at −10 dBm0) and fast and quiet (50/50 ms,
    −30 dBm0), between silences like before a first ring."""
    x = np.concatenate((silence(0.3), dial(keys, tone_s, gap_s, level), silence(2.0)))
    [msg] = decode(x)
    assert (msg.standard, msg.number, msg.absence, msg.checksum_ok) == (
        STANDARD_DTMF_CID, number, absence, True)
    assert msg.start_s == pytest.approx(0.3, abs=0.006)
    assert msg.end_s == pytest.approx(0.3 + len(keys) * (tone_s + gap_s) - gap_s, abs=0.006)
    assert (msg.name, msg.datetime, msg.message_type) == (None, None, None)


def test_decoder_reports_a_truncated_message_once_the_line_is_quiet() -> None:
    x = np.concatenate((silence(0.3), dial("A02012", 0.08, 0.08), silence(0.5)))
    dec = DtmfCallerIdDecoder()
    out: list[CallerIdMessage] = []
    for i in range(0, len(x), CHUNK):
        out += dec.feed(x[i : i + CHUNK])
    assert out == []  # only 0.5 s of silence so far
    for _ in range(10):  # one more second of silence, fed live
        out += dec.feed(silence(0.1))
    [bad] = out
    assert (bad.checksum_ok, bad.number) == (False, None)
    assert dec.flush() == []


def test_slow_keys_are_not_cut_by_the_timeout() -> None:
    """Gaps of 0.9 s between keys (under the 1 s timeout), fed live in 100 ms chunks: the
    analysis lags the input, which must not expire the message early."""
    parts = [silence(0.2)]
    for k in "A0201C":
        parts += [dial(k, 0.1, 0.0), silence(0.9)]
    [msg] = decode(np.concatenate(parts))
    assert (msg.number, msg.checksum_ok) == ("0201", True)


def test_two_messages_and_ordinary_keys() -> None:
    x = np.concatenate((silence(0.2), dial("A0201C"), silence(1.5), dial("123"),
                        silence(1.5), dial("B10C"), silence(0.3)))
    msgs = decode(x)
    assert [(m.number, m.absence, m.checksum_ok) for m in msgs] == [
        ("0201", None, True), (None, "P", True)]


def test_decoder_can_share_a_chain_detector() -> None:
    """A chain already running a DtmfDetector passes its key events on."""
    x = np.concatenate((silence(0.2), dial("A0299C"), silence(0.3)))
    det = DtmfDetector()
    dec = DtmfCallerIdDecoder(detector=det)
    out: list[CallerIdMessage] = []
    keys = ""
    for i in range(0, len(x), CHUNK):
        events = det.feed(x[i : i + CHUNK])
        keys += "".join(e.digit for e in events)
        out += dec.feed_events(events, det.settled_s)
    tail = det.flush()
    keys += "".join(e.digit for e in tail)
    out += dec.feed_events(tail, det.settled_s) + dec.assembler.flush()
    assert keys == "A0299C"
    assert [(m.number, m.checksum_ok) for m in out] == [("0299", True)]
    assert det.settled_s == pytest.approx(len(x) / RATE, abs=0.02)
