"""Events that cross the board boundary: what the line and the HAT tell the firmware.

Hardware callbacks (gpiozero threads, the serial reader, PortAudio) only build one of these and
put it on the daemon's queue; all decisions are taken by the call state machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    at: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True)
class Ring(Event):
    """Ringing voltage present (on=True) or gone (on=False)."""

    on: bool


@dataclass(frozen=True)
class Hook(Event):
    """Loop current: an office phone went off-hook (True) or back on-hook (False)."""

    off_hook: bool


@dataclass(frozen=True)
class PolarityReversal(Event):
    """The exchange reversed the line's polarity (answer or clear-down on many exchanges)."""

    polarity: int  # +1 or -1 after the reversal


@dataclass(frozen=True)
class LoopVoltage(Event):
    volts: float


@dataclass(frozen=True)
class Digit(Event):
    """A digit dialled or pressed on the line (DTMF or pulse), as far as the board knows it."""

    digit: str


@dataclass(frozen=True)
class CallerId(Event):
    """Caller identity received between the rings (only from a message whose checksum held)."""

    number: str | None
    name: str | None = None
    absence: str | None = None  # "P" withheld, "O" unavailable, as sent
    source: str = "mcu"  # "mcu" (the HAT's demodulator chip), "fsk" or "dtmf" (decoded here)


@dataclass(frozen=True)
class LineTone(Event):
    """A call-progress tone recognised on the line, with its cadence."""

    tone: str  # "dial", "busy", "ringback", "congestion"


@dataclass(frozen=True)
class PrivacyButton(Event):
    pressed: bool


@dataclass(frozen=True)
class BoardFault(Event):
    """A part of the board failed (serial link lost, audio device gone) or recovered."""

    part: str  # "mcu", "capture", "playback"
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Tick(Event):
    """Periodic clock event so that timeouts are decided by the state machine, not by timers."""
