"""The Pi-side parser: resynchronisation after every kind of damage, any byte split."""

from __future__ import annotations

import random

import pytest

from callrec.board import hat_protocol as hp
from callrec_mcu.framing import MAX_FRAME, encode_frame

FRAMES = [
    (encode_frame(["RING", "1"]), hp.RingMsg(True)),
    (
        encode_frame(["CID", "0123456789", "Dupont%2C Jean"]),
        hp.CallerIdMsg("0123456789", "Dupont, Jean"),
    ),
    (encode_frame(["HOOK", "1"]), hp.HookMsg(True)),
    (encode_frame(["POL", "-"]), hp.PolarityMsg(-1)),
    (encode_frame(["VOLT", "-8.2"]), hp.VoltMsg(-8.2)),
    (encode_frame(["WDT"]), hp.WatchdogMsg()),
    (encode_frame(["HOOK", "0"]), hp.HookMsg(False)),
]
STREAM = b"".join(f for f, _ in FRAMES)
MESSAGES = [m for _, m in FRAMES]


def test_split_at_every_position() -> None:
    for cut in range(len(STREAM) + 1):
        parser = hp.FrameParser()
        got = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:])
        assert got == MESSAGES, cut
        assert parser.stats["garbage_bytes"] == 0


def test_one_byte_at_a_time() -> None:
    parser = hp.FrameParser()
    got = [m for i in range(len(STREAM)) for m in parser.feed(STREAM[i : i + 1])]
    assert got == MESSAGES


def test_random_garbage_between_frames_loses_no_frame() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        stream = b""
        for frame, _ in FRAMES:
            stream += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            # Garbage that is not newline-terminated must end before the frame's '$' anyway.
            stream += frame
        parser = hp.FrameParser()
        chunks = []
        pos = 0
        while pos < len(stream):
            step = rng.randrange(1, 20)
            chunks.append(stream[pos : pos + step])
            pos += step
        got = [m for chunk in chunks for m in parser.feed(chunk)]
        assert got == MESSAGES


def test_random_bytes_never_raise() -> None:
    rng = random.Random(99)
    parser = hp.FrameParser()
    alphabet = b"$*,\n\r0123456789ABCDEF" + bytes(range(256))
    for _ in range(200):
        parser.feed(bytes(rng.choice(alphabet) for _ in range(rng.randrange(200))))
    assert parser.feed(STREAM) == MESSAGES  # its first '$' resynchronises


def test_truncated_frame_is_dropped_and_the_next_recovered() -> None:
    parser = hp.FrameParser()
    ring = encode_frame(["RING", "1"])
    assert parser.feed(ring[:5] + ring) == [hp.RingMsg(True)]
    assert parser.feed(ring[:-1]) == []  # no newline yet: pending, not lost
    assert parser.feed(b"\n") == [hp.RingMsg(True)]
    assert parser.stats["truncated"] == 1


def test_truncated_frame_ended_by_newline_is_malformed() -> None:
    parser = hp.FrameParser()
    ring = encode_frame(["RING", "1"])
    assert parser.feed(ring[:-4] + b"\n" + ring) == [hp.RingMsg(True)]
    assert parser.stats["malformed"] == 1


def test_oversize_line_is_dropped() -> None:
    parser = hp.FrameParser()
    ring = encode_frame(["RING", "1"])
    assert parser.feed(b"$" + b"A" * 500 + b"*1234\n" + ring) == [hp.RingMsg(True)]
    assert parser.stats["oversize"] == 1
    longest = encode_frame(["VOLT", "1.0" + "," * (121 - 8)])
    assert len(longest) == MAX_FRAME
    assert parser.feed(longest) == [hp.VoltMsg(1.0)]  # extra trailing fields are ignored
    assert parser.feed(longest[:-1] + b"0\n" + ring) == [hp.RingMsg(True)]
    assert parser.stats["oversize"] == 2


def test_bad_crc_is_counted_and_skipped() -> None:
    parser = hp.FrameParser()
    ring = encode_frame(["RING", "1"])
    bad = ring.replace(b"RING,1", b"RING,0")
    assert parser.feed(bad + ring) == [hp.RingMsg(True)]
    assert parser.stats["bad_crc"] == 1


def test_unknown_and_invalid_frames_are_counted() -> None:
    parser = hp.FrameParser()
    stream = (
        encode_frame(["FOO", "1"])
        + encode_frame(["RING", "2"])
        + encode_frame(["VOLT", "abc"])
        + encode_frame(["HELLO", "x", "1.0"])
        + encode_frame(["POL"])
        + encode_frame(["HOOK", "1"])
    )
    assert parser.feed(stream) == [hp.HookMsg(True)]
    assert parser.stats["unknown"] == 1
    assert parser.stats["invalid"] == 4


def test_crlf_and_lower_case_crc_are_accepted() -> None:
    ring = encode_frame(["RING", "1"])
    parser = hp.FrameParser()
    assert parser.feed(ring[:-1] + b"\r\n") == [hp.RingMsg(True)]
    assert parser.feed(ring.lower().replace(b"ring", b"RING")) == [hp.RingMsg(True)]


def test_garbage_bytes_are_counted_but_newlines_are_not() -> None:
    parser = hp.FrameParser()
    parser.feed(b"\r\n\nabc" + encode_frame(["WDT"]))
    assert parser.stats["garbage_bytes"] == 3


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        (
            ["STATE", "RING=1", "HOOK=0", "POL=-", "VOLT=-48.0", "NEW=5"],
            hp.StateMsg(True, False, -1, -48.0, None, None, None, None),
        ),
        (["STATE"], hp.StateMsg(None, None, None, None, None, None, None, None)),
    ],
)
def test_state_tolerates_missing_and_new_keys(fields: list[str], state: hp.StateMsg) -> None:
    assert hp.FrameParser().feed(encode_frame(fields)) == [state]


def test_reset_drops_a_partial_frame() -> None:
    parser = hp.FrameParser()
    ring = encode_frame(["RING", "1"])
    parser.feed(ring[:6])
    parser.reset()
    assert parser.feed(ring[6:]) == []
    assert parser.feed(ring) == [hp.RingMsg(True)]
