"""The simulated HAT (the real MCU firmware on a pty) and McuLink over real pyserial."""

from __future__ import annotations

import os
import queue
import random
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callrec import events as ev
from callrec.board.mcu_link import McuLink
from callrec.sim.mcu_host import McuHost, SimulatedLine

LINE_EVENTS = (ev.Ring, ev.Hook, ev.PolarityReversal, ev.CallerId)


def is_fault(ok: bool) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.BoardFault) and e.ok is ok


class Rig:
    def __init__(self, link_path: str, timeout_s: float = 3.0) -> None:
        self.link_path = link_path
        self.line = SimulatedLine()
        self.host: McuHost | None = None
        self.events: queue.Queue[ev.Event] = queue.Queue()
        self.seen: list[ev.Event] = []
        self.link = McuLink(link_path, 115200, self.events.put, timeout_s=timeout_s)

    def start_host(self) -> McuHost:
        self.host = McuHost(self.line, self.link_path)
        self.host.start()
        return self.host

    def wait(self, predicate: Callable[[ev.Event], bool], timeout: float = 2.0) -> ev.Event:
        """The first new event matching `predicate`; every event read is kept in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching event in {timeout} s: {self.seen}") from None
            self.seen.append(event)
            if predicate(event):
                return event

    def drain(self) -> list[ev.Event]:
        """Move every queued event into `seen`; return `seen`."""
        while not self.events.empty():
            self.seen.append(self.events.get())
        return self.seen

    def settle(self, quiet_s: float = 0.2) -> None:
        """Let start-up chatter pass, then forget everything seen so far."""
        time.sleep(quiet_s)
        self.drain()
        self.seen.clear()

    def line_events(self) -> list[ev.Event]:
        return [e for e in self.seen if isinstance(e, LINE_EVENTS)]


def poll(condition: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(str(tmp_path / "serial0"))
    rig.start_host()
    rig.link.start()
    try:
        rig.wait(is_fault(True))
        yield rig
    finally:
        rig.link.stop()
        if rig.host is not None:
            rig.host.stop()


def test_a_call_arrives_as_events_in_order(rig: Rig) -> None:
    rig.settle()
    t0 = time.monotonic()
    rig.line.ring(True)
    rig.wait(lambda e: e == ev.Ring(True, at=e.at))
    rig.line.ring(False)
    rig.line.send_caller_id("0123456789", "Dupont, Jean")
    rig.wait(lambda e: isinstance(e, ev.CallerId))
    rig.line.off_hook(True)
    rig.wait(lambda e: isinstance(e, ev.Hook) and e.off_hook)
    rig.line.reverse_polarity()
    rig.wait(lambda e: isinstance(e, ev.PolarityReversal))
    rig.line.off_hook(False)
    rig.wait(lambda e: isinstance(e, ev.Hook) and not e.off_hook)
    assert time.monotonic() - t0 < 4.0
    got = [
        (type(e).__name__, *[v for k, v in vars(e).items() if k != "at"]) for e in rig.line_events()
    ]
    assert got == [
        ("Ring", True),
        ("Ring", False),
        ("CallerId", "0123456789", "Dupont, Jean", None, "mcu"),  # no absence; from the chip
        ("Hook", True),
        ("PolarityReversal", -1),
        ("Hook", False),
    ]
    rig.wait(lambda e: isinstance(e, ev.LoopVoltage) and e.volts == -48.0)
    assert rig.link.connected and rig.link.version == "0.1.0"


def test_relay_and_led_commands_reach_the_firmware(rig: Rig) -> None:
    assert rig.host is not None
    rig.link.set_relay(True)
    assert poll(lambda: rig.host.relay_closed)
    rig.link.set_fault_led(True)
    assert poll(lambda: rig.host.fault_led)
    rig.link.set_relay(False)
    rig.link.set_fault_led(False)
    assert poll(lambda: not rig.host.relay_closed and not rig.host.fault_led)


def test_stop_still_sends_the_last_commands(rig: Rig) -> None:
    assert rig.host is not None
    rig.link.set_relay(True)
    assert poll(lambda: rig.host.relay_closed)
    rig.link.set_relay(False)
    rig.link.stop()
    assert poll(lambda: not rig.host.relay_closed, timeout=0.5)


def test_garbage_does_not_break_the_link(rig: Rig) -> None:
    assert rig.host is not None
    rig.settle()
    rng = random.Random(7)
    rig.host.inject_garbage(bytes(rng.randrange(256) for _ in range(3000)))
    rig.host.inject_garbage(b"\n$RING,1*0000\n$$$**\n$HOOK,1")  # bad CRC, truncated frames
    rig.host.inject_garbage(b"$" + b"X" * 300 + b"\n")  # oversize
    rig.line.ring(True)
    rig.wait(lambda e: isinstance(e, ev.Ring) and e.on)
    rig.line.ring(False)
    rig.wait(lambda e: isinstance(e, ev.Ring) and not e.on)
    stats = rig.link.stats()
    assert stats["garbage_bytes"] > 0 and stats["bad_crc"] >= 1 and stats["oversize"] >= 1
    assert not [e for e in rig.seen if isinstance(e, ev.BoardFault)]
    assert [type(e) for e in rig.line_events()] == [ev.Ring, ev.Ring]


def test_port_lost_and_back(rig: Rig) -> None:
    assert rig.host is not None
    rig.host.stop()
    fault = rig.wait(is_fault(False))
    assert isinstance(fault, ev.BoardFault) and fault.part == "mcu"
    assert not rig.link.connected
    rig.start_host()
    rig.wait(is_fault(True), timeout=3.0)
    rig.line.ring(True)
    rig.wait(lambda e: isinstance(e, ev.Ring) and e.on)
    assert rig.link.stats()["opens"] == 2


def test_hung_pi_lets_the_watchdog_open_the_relay(rig: Rig) -> None:
    assert rig.host is not None
    rig.link.set_relay(True)
    assert poll(lambda: rig.host.relay_closed)
    rig.link.stop()  # no more PINGs, as if the Pi hung
    # The last PING went out 0-1 s before the stop: the relay opens 2-3 s from now.
    time.sleep(1.8)
    assert rig.host.relay_closed and not rig.host.fault_led
    assert poll(lambda: not rig.host.relay_closed and rig.host.fault_led, timeout=2.0)


def test_port_missing_at_start(tmp_path: Path) -> None:
    rig = Rig(str(tmp_path / "later"))
    rig.link.start()
    try:
        fault = rig.wait(is_fault(False))
        assert isinstance(fault, ev.BoardFault) and "cannot open" in fault.detail
        time.sleep(0.7)  # retries (0.5 s, then 1 s) do not repeat the fault
        assert rig.events.empty()
        rig.start_host()
        rig.wait(is_fault(True), timeout=4.0)
    finally:
        rig.link.stop()
        if rig.host is not None:
            rig.host.stop()


def test_silent_mcu_is_a_fault() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    rig = Rig(os.ttyname(slave), timeout_s=0.5)
    rig.link.start()
    try:
        fault = rig.wait(is_fault(False))
        assert isinstance(fault, ev.BoardFault) and fault.detail.startswith("no frames")
        assert not rig.link.connected and rig.link.version is None
    finally:
        rig.link.stop()
        os.close(master)
        os.close(slave)


def test_loop_url_hears_only_its_own_commands() -> None:
    rig = Rig("loop://")
    rig.link.start()
    try:
        assert poll(lambda: rig.link.stats()["unknown"] >= 3)
        assert not rig.link.connected
    finally:
        rig.link.stop()
    # Its own commands are not MCU messages: never "up" (the port is there: no fault either).
    assert rig.drain() == []
