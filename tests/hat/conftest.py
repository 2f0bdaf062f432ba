"""Shared fakes for the HAT tests: a firmware HAL with a fake clock, a ringing waveform."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from callrec_mcu.firmware import Mcu
from callrec_mcu.framing import FrameDecoder, encode_frame


class FakeHal:
    """The firmware's HAL with a clock advanced by step(); UART traffic kept as frames."""

    def __init__(self, volts: Callable[[int], float] = lambda t: 48.0, wrap: int = 0) -> None:
        self.volts = volts
        self.wrap = wrap  # MicroPython ticks wrap around; 0 = never
        self.now = 0
        self.relay = False
        self.fault_led = False
        self.rx = b""
        self.tx = b""
        self.cid: tuple[str, str] | None = None
        self._decoder = FrameDecoder()

    def adc_line_volts(self) -> float:
        return self.volts(self.now)

    def set_relay(self, closed: bool) -> None:
        self.relay = closed

    def set_fault_led(self, on: bool) -> None:
        self.fault_led = on

    def uart_read(self) -> bytes:
        data, self.rx = self.rx, b""
        return data

    def uart_write(self, data: bytes) -> None:
        self.tx += data

    def ticks_ms(self) -> int:
        return self.now % self.wrap if self.wrap else self.now

    def ticks_diff(self, new: int, old: int) -> int:
        if not self.wrap:
            return new - old
        half = self.wrap // 2
        return ((new - old + half) % self.wrap) - half

    def cid_poll(self) -> tuple[str, str] | None:
        cid, self.cid = self.cid, None
        return cid

    def sent(self) -> list[str]:
        """Payloads the firmware sent since the last call."""
        frames = self._decoder.feed(self.tx)
        self.tx = b""
        return [",".join(fields) for fields in frames]


class Board:
    """A firmware instance on a FakeHal, driven in simulated milliseconds."""

    def __init__(self, hal: FakeHal) -> None:
        self.hal = hal
        self.mcu = Mcu(hal)

    def run(self, ms: int) -> None:
        for _ in range(ms):
            self.mcu.step()
            self.hal.now += 1

    def command(self, *fields: str) -> list[str]:
        self.hal.rx += encode_frame(list(fields))
        self.run(1)
        return self.hal.sent()


@pytest.fixture
def make_board() -> Callable[..., Board]:
    """Factory: make_board(volts=lambda t_ms: ..., wrap=0) -> a booted-but-not-run Board."""

    def make(volts: Callable[[int], float] = lambda t: 48.0, wrap: int = 0) -> Board:
        return Board(FakeHal(volts, wrap))

    return make


@pytest.fixture
def board(make_board: Callable[..., Board]) -> Iterator[Board]:
    """A firmware on a quiet on-hook line, booted and settled, its boot frames consumed."""
    b = make_board()
    b.run(200)
    b.hal.sent()
    yield b


def ringing(t_ms: int, dc: float = 48.0, hz: float = 25.0, vrms: float = 75.0) -> float:
    """The line voltage during a ring burst (used through the `ring_wave` fixture)."""
    return dc + vrms * math.sqrt(2) * math.sin(2 * math.pi * hz * t_ms / 1000)


@pytest.fixture
def ring_wave() -> Callable[..., float]:
    return ringing
