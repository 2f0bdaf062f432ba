"""The Pi side of the HAT serial protocol (hw/PROTOCOL.md): bytes in, typed messages out.

Pure: no I/O, no clock, no threads. The framing and CRC come from `callrec_mcu.framing`, the
very code the MCU runs, so the two ends share one implementation of the wire format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from callrec_mcu.framing import (
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    FrameDecoder,
    crc16_ccitt,
    encode_frame,
    escape_field,
    unescape_field,
)

__all__ = [
    "MAX_PAYLOAD",
    "PROTOCOL_VERSION",
    "AckMsg",
    "CallerIdMsg",
    "FrameParser",
    "HelloMsg",
    "HookMsg",
    "Message",
    "NakMsg",
    "PolarityMsg",
    "RingMsg",
    "StateMsg",
    "VoltMsg",
    "WatchdogMsg",
    "crc16_ccitt",
    "encode_command",
    "escape_field",
    "unescape_field",
]


@dataclass(frozen=True)
class HelloMsg:
    protocol: int
    firmware: str


@dataclass(frozen=True)
class RingMsg:
    on: bool


@dataclass(frozen=True)
class HookMsg:
    off_hook: bool


@dataclass(frozen=True)
class PolarityMsg:
    polarity: int  # +1 or -1, after the reversal


@dataclass(frozen=True)
class VoltMsg:
    volts: float


@dataclass(frozen=True)
class CallerIdMsg:
    number: str | None
    name: str | None


@dataclass(frozen=True)
class WatchdogMsg:
    pass


@dataclass(frozen=True)
class AckMsg:
    command: str


@dataclass(frozen=True)
class NakMsg:
    command: str
    reason: str


@dataclass(frozen=True)
class StateMsg:
    """GET's snapshot; None where the MCU does not know yet ('?') or did not say."""

    ring: bool | None
    off_hook: bool | None
    polarity: int | None
    volts: float | None
    relay: bool | None
    fault_led: bool | None
    watchdog_expired: bool | None
    rx_errors: int | None


Message = (
    HelloMsg
    | RingMsg
    | HookMsg
    | PolarityMsg
    | VoltMsg
    | CallerIdMsg
    | WatchdogMsg
    | AckMsg
    | NakMsg
    | StateMsg
)

T = TypeVar("T")

COMMANDS = ("PING", "VER", "GET", "RELAY", "LED")


class InvalidFields(ValueError):
    """A known message type with fields that do not parse."""


def _flag(text: str) -> bool:
    if text == "1":
        return True
    if text == "0":
        return False
    raise InvalidFields(text)


def _sign(text: str) -> int:
    if text in ("+", "-"):
        return 1 if text == "+" else -1
    raise InvalidFields(text)


def _volts(text: str) -> float:
    value = float(text)  # ValueError is caught by the parser like InvalidFields
    if not -1000.0 < value < 1000.0:
        raise InvalidFields(text)
    return value


def _optional(text: str | None, convert: Callable[[str], T]) -> T | None:
    return None if text is None or text == "?" else convert(text)


def _state(args: list[str]) -> StateMsg:
    # key=value pairs: readable in a terminal, and new keys can be added without breaking us.
    values = dict(arg.split("=", 1) for arg in args if "=" in arg)
    return StateMsg(
        ring=_optional(values.get("RING"), _flag),
        off_hook=_optional(values.get("HOOK"), _flag),
        polarity=_optional(values.get("POL"), _sign),
        volts=_optional(values.get("VOLT"), _volts),
        relay=_optional(values.get("RELAY"), _flag),
        fault_led=_optional(values.get("LED"), _flag),
        watchdog_expired=_optional(values.get("WDT"), _flag),
        rx_errors=_optional(values.get("RXERR"), int),
    )


def _need(args: list[str], count: int) -> list[str]:
    # Extra trailing fields are ignored: a later protocol revision may append some.
    if len(args) < count:
        raise InvalidFields("missing fields")
    return args


def _decode(kind: str, args: list[str]) -> Message | None:
    """Typed message for one frame's fields; None for an unknown type."""
    if kind == "RING":
        return RingMsg(_flag(_need(args, 1)[0]))
    if kind == "HOOK":
        return HookMsg(_flag(_need(args, 1)[0]))
    if kind == "POL":
        return PolarityMsg(_sign(_need(args, 1)[0]))
    if kind == "VOLT":
        return VoltMsg(_volts(_need(args, 1)[0]))
    if kind == "CID":
        number, name = (unescape_field(a) for a in _need(args, 2)[:2])
        return CallerIdMsg(number or None, name or None)
    if kind == "WDT":
        return WatchdogMsg()
    if kind == "ACK":
        return AckMsg(_need(args, 1)[0])
    if kind == "NAK":
        return NakMsg(*_need(args, 2)[:2])
    if kind == "HELLO":
        return HelloMsg(int(_need(args, 2)[0]), unescape_field(args[1]))
    if kind == "STATE":
        return _state(args)
    return None


class FrameParser:
    """MCU → Pi byte stream to messages. Never raises; every rejected frame is counted."""

    def __init__(self) -> None:
        self._frames = FrameDecoder()
        self.unknown = 0
        self.invalid = 0

    def feed(self, data: bytes) -> list[Message]:
        """Consume bytes (any split); return the messages completed by them, in order."""
        messages: list[Message] = []
        for fields in self._frames.feed(data):
            try:
                message = _decode(fields[0], fields[1:])
            except ValueError:
                self.invalid += 1
                continue
            if message is None:
                self.unknown += 1
            else:
                messages.append(message)
        return messages

    def reset(self) -> None:
        """Drop a partly received frame (the byte stream was interrupted)."""
        self._frames.reset()

    @property
    def stats(self) -> dict[str, int]:
        """Frame counters: frames, garbage_bytes, bad_crc, oversize, malformed, truncated,
        unknown (valid frame, unknown type) and invalid (known type, bad fields)."""
        return {**self._frames.stats(), "unknown": self.unknown, "invalid": self.invalid}


def encode_command(command: str, *args: str | int | bool) -> bytes:
    """One Pi → MCU frame, e.g. encode_command("RELAY", True) -> b'$RELAY,1*XXXX\\n'."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    fields = [command]
    for arg in args:
        if isinstance(arg, bool):
            fields.append("1" if arg else "0")
        else:
            fields.append(escape_field(str(arg)))
    return encode_frame(fields)
