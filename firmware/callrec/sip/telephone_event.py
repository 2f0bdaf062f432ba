"""RFC 4733 telephone-events (DTMF over RTP) → one key press per key.

A payload is 4 bytes: event (8 bits), E "end" bit, R reserved bit, volume (6 bits, −dBm0),
duration (16 bits, in RTP timestamp units since the event's start). The sender repeats it:
every packet of one key carries the same RTP timestamp (the key's start) with a growing
duration, and the last one, with E set, is sent three times (§2.5.1.4) because any of them may
be lost. So a key is identified by (SSRC, timestamp, event), and is reported once, at the
first packet seen of it: the refusal key must act as soon as it is pressed, and the start
packets may be lost while an end packet gets through (the key is still reported).

A key held longer than the 16-bit duration allows (8.2 s at 8 kHz) is sent as segments
(§2.5.1.3): the next segment has a new timestamp, one full duration later, and the same
event without E. It continues the same press and is not reported again.

Events 0-9, * (10), # (11), A-D (12-15) are keys; flash (16) and the other tones of RFC 4734
are ignored: the privacy features only need keys. Pure, no clock, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

KEYS = "0123456789*#ABCD"
MAX_DURATION = 0xFFFF
# Slack when matching a long event's next segment: the last duration seen of a segment may
# be short of the full 0xFFFF by the packets lost before its end (200 ms at 8 kHz).
_SEGMENT_SLACK = 1600


class TelephoneEventError(ValueError):
    """Payload too short to be a telephone-event."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int  # 0-63, as −dBm0
    duration: int  # RTP timestamp units


@dataclass(frozen=True, slots=True)
class KeyEvent:
    key: str  # one of 0-9 * # A B C D
    timestamp: int  # RTP timestamp of the key's start
    ssrc: int
    volume: int


def parse_event(payload: bytes) -> TelephoneEvent:
    """The first event of a payload (more than one only with RFC 2198 redundancy, whose
    extra blocks repeat older events: the first block is enough here)."""
    if len(payload) < 4:
        raise TelephoneEventError(f"telephone-event payload of {len(payload)} bytes")
    b1 = payload[1]
    return TelephoneEvent(payload[0], bool(b1 & 0x80), b1 & 0x3F,
                          (payload[2] << 8) | payload[3])


def build_event(event: int, duration: int, end: bool = False, volume: int = 10) -> bytes:
    """A telephone-event payload (for tests and the bench)."""
    if not (0 <= event <= 255 and 0 <= duration <= MAX_DURATION and 0 <= volume <= 63):
        raise ValueError("event, duration or volume out of range")
    return bytes([event, (0x80 if end else 0) | volume, duration >> 8, duration & 0xFF])


class TelephoneEventDecoder:
    """Feed every telephone-event packet of a stream; get a `KeyEvent` once per key."""

    def __init__(self, memory: int = 16) -> None:
        # Keys recently reported: their repeats and the three end packets are not new keys.
        # A few are enough: repeats come within ~60 ms, keys at most ~10 per second.
        self._seen: deque[tuple[int, int, int]] = deque(maxlen=memory)
        self._current: tuple[int, int, int] | None = None
        self._current_ended = False
        self._current_duration = 0

    def feed(self, ssrc: int, timestamp: int, payload: bytes) -> KeyEvent | None:
        """`TelephoneEventError` for a payload shorter than 4 bytes; None for a repeat or an
        event that is not a key."""
        ev = parse_event(payload)
        if ev.event >= len(KEYS):
            return None
        ident = (ssrc, timestamp, ev.event)
        if ident == self._current:
            self._current_duration = max(self._current_duration, ev.duration)
            self._current_ended |= ev.end
            return None
        if ident in self._seen:
            return None  # a late repeat of an earlier key
        cur = self._current
        continues = (
            cur is not None and not self._current_ended and cur[0] == ssrc and cur[2] == ev.event
            and self._current_duration >= MAX_DURATION - _SEGMENT_SLACK
            and 0 < (timestamp - cur[1]) & 0xFFFFFFFF <= MAX_DURATION + _SEGMENT_SLACK)
        self._seen.append(ident)
        self._current = ident
        self._current_ended = ev.end
        self._current_duration = ev.duration
        if continues:
            return None
        return KeyEvent(KEYS[ev.event], timestamp, ssrc, ev.volume)
