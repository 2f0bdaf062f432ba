"""RFC 4733 telephone-events: payloads and the redundancy rules, one key press per key."""

from __future__ import annotations

import pytest

from callrec.sip.telephone_event import (
    KEYS,
    KeyEvent,
    TelephoneEvent,
    TelephoneEventDecoder,
    TelephoneEventError,
    build_event,
    parse_event,
)

SSRC = 0x5EED


def press(event: int, ts: int, durations: tuple[int, ...] = (160, 320, 480, 640),
          ends: int = 3) -> list[bytes]:
    """The packets a sender like baresip or Asterisk sends for one key: growing durations
    with the key's start timestamp, then the end packet three times (RFC 4733 §2.5.1.4)."""
    out = [build_event(event, d) for d in durations]
    return out + [build_event(event, durations[-1] + 160, end=True)] * ends


def keys(dec: TelephoneEventDecoder, packets: list[tuple[int, bytes]]) -> list[KeyEvent]:
    out = []
    for ts, payload in packets:
        k = dec.feed(SSRC, ts, payload)
        if k is not None:
            out.append(k)
    return out


def test_payload_fields() -> None:
    # Event 9, end bit, volume 10 (−10 dBm0), duration 1280: as in RFC 4733 §2.3's layout.
    raw = bytes([9, 0x8A, 0x05, 0x00])
    assert parse_event(raw) == TelephoneEvent(9, True, 10, 1280)
    assert build_event(9, 1280, end=True, volume=10) == raw
    assert parse_event(bytes([11, 0x40 | 7, 0, 160])) == TelephoneEvent(11, False, 7, 160)  # R


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x02\x03"])
def test_short_payload_is_an_error(payload: bytes) -> None:
    with pytest.raises(TelephoneEventError):
        parse_event(payload)
    with pytest.raises(TelephoneEventError):
        TelephoneEventDecoder().feed(SSRC, 0, payload)


@pytest.mark.parametrize("args", [(256, 0), (1, 0x10000), (1, -1), (1, 0, False, 64)])
def test_build_refuses_out_of_range(args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        build_event(*args)


def test_one_key_per_press_with_repeats_and_three_end_packets() -> None:
    dec = TelephoneEventDecoder()
    got = keys(dec, [(1000, p) for p in press(9, 1000)])
    assert got == [KeyEvent("9", 1000, SSRC, 10)]


def test_every_key_is_named() -> None:
    dec = TelephoneEventDecoder()
    packets = [(10_000 * (i + 1), p) for i in range(16) for p in press(i, 0)]
    assert "".join(k.key for k in keys(dec, packets)) == KEYS == "0123456789*#ABCD"


def test_non_key_events_are_ignored() -> None:
    dec = TelephoneEventDecoder()
    assert keys(dec, [(0, p) for p in press(16, 0)]) == []  # flash
    assert keys(dec, [(800, p) for p in press(70, 0)]) == []  # an RFC 4734 tone


def test_the_same_key_twice_is_two_presses() -> None:
    dec = TelephoneEventDecoder()
    packets = [(1000, p) for p in press(1, 0)] + [(2600, p) for p in press(1, 0)]
    assert [k.timestamp for k in keys(dec, packets)] == [1000, 2600]


def test_a_press_seen_only_by_its_end_packets_still_counts() -> None:
    dec = TelephoneEventDecoder()
    assert keys(dec, [(500, build_event(5, 800, end=True))] * 3) == [KeyEvent("5", 500, SSRC, 10)]


def test_late_repeats_of_an_earlier_key_are_not_new_keys() -> None:
    dec = TelephoneEventDecoder()
    first, second = press(1, 0), press(2, 0)
    packets = [(1000, p) for p in first[:-1]] + [(2600, second[0]), (1000, first[-1])]
    packets += [(2600, p) for p in second[1:]]
    assert "".join(k.key for k in keys(dec, packets)) == "12"


def test_lost_end_then_same_key_again_is_a_new_press() -> None:
    dec = TelephoneEventDecoder()
    packets = [(1000, p) for p in press(3, 0, ends=0)] + [(2800, p) for p in press(3, 0)]
    assert [k.timestamp for k in keys(dec, packets)] == [1000, 2800]


def test_a_long_key_split_in_segments_is_one_press() -> None:
    """RFC 4733 §2.5.1.3: past 0xFFFF the sender starts a new segment one full duration later,
    the same event without E."""
    dec = TelephoneEventDecoder()
    start = 0xFFFF_F000  # and the segment's timestamp wraps around 2^32
    seg1 = [(start, build_event(7, d)) for d in (160, 32_000, 0xFFFF)]
    nxt = (start + 0xFFFF) & 0xFFFFFFFF
    seg2 = [(nxt, build_event(7, d)) for d in (160, 4000)] + [(nxt, build_event(7, 4160, True))] * 3
    assert keys(dec, seg1 + seg2) == [KeyEvent("7", start, SSRC, 10)]


def test_other_ssrc_is_another_key() -> None:
    dec = TelephoneEventDecoder()
    assert dec.feed(1, 100, build_event(4, 160)) is not None
    assert dec.feed(2, 100, build_event(4, 160)) is not None
