"""LinkMonitor: which events a message or a port change produces (pure, time passed in)."""

from __future__ import annotations

from callrec import events as ev
from callrec.board import hat_protocol as hp
from callrec.board.mcu_link import LinkMonitor


def strip(events: list[ev.Event]) -> list[tuple]:
    """Events without their timestamps, for comparison."""
    out = []
    for e in events:
        fields = {k: v for k, v in vars(e).items() if k != "at"}
        out.append((type(e).__name__, *fields.values()))
    return out


def opened(now: float = 0.0) -> LinkMonitor:
    m = LinkMonitor(timeout_s=3.0)
    m.port_opened(now)
    return m


def test_first_frame_brings_the_link_up_once() -> None:
    m = opened()
    assert not m.connected(0.1)
    assert strip(m.message(hp.HelloMsg(1, "0.1.0"), 0.1)) == [
        ("BoardFault", "mcu", True, "frames flowing")
    ]
    assert m.version == "0.1.0" and m.connected(0.2)
    assert m.message(hp.AckMsg("PING"), 0.2) == []
    assert not m.connected(3.3)


def test_messages_map_to_events() -> None:
    m = opened()
    m.message(hp.AckMsg("PING"), 0.0)
    got = []
    for msg in (
        hp.RingMsg(True),
        hp.RingMsg(False),
        hp.CallerIdMsg("0123", None),
        hp.HookMsg(True),
        hp.PolarityMsg(-1),
        hp.VoltMsg(-8.1),
        hp.HookMsg(False),
    ):
        got += strip(m.message(msg, 0.5))
    assert got == [
        ("Ring", True),
        ("Ring", False),
        ("CallerId", "0123", None, None, "mcu"),  # no absence; from the chip
        ("Hook", True),
        ("PolarityReversal", -1),
        ("LoopVoltage", -8.1),
        ("Hook", False),
    ]


def test_missing_port_is_reported_once() -> None:
    m = LinkMonitor(3.0)
    assert strip(m.port_unavailable("cannot open /dev/x")) == [
        ("BoardFault", "mcu", False, "cannot open /dev/x")
    ]
    assert m.port_unavailable("cannot open /dev/x") == []
    m.port_opened(10.0)
    assert strip(m.message(hp.AckMsg("PING"), 10.1)) == [
        ("BoardFault", "mcu", True, "frames flowing")
    ]


def test_silence_is_a_fault_and_frames_end_it() -> None:
    m = opened()
    assert m.tick(2.9) == []
    assert strip(m.tick(3.0)) == [("BoardFault", "mcu", False, "no frames for 3 s")]
    assert m.tick(10.0) == []
    assert strip(m.message(hp.VoltMsg(48.0), 11.0)) == [
        ("BoardFault", "mcu", True, "frames flowing"),
        ("LoopVoltage", 48.0),
    ]
    assert m.tick(13.9) == []
    assert len(m.tick(14.0)) == 1


def test_watchdog_fault_lasts_until_a_ping_is_acknowledged() -> None:
    m = opened()
    m.message(hp.AckMsg("PING"), 0.1)
    assert strip(m.message(hp.WatchdogMsg(), 1.0)) == [
        ("BoardFault", "mcu", False, "watchdog expired")
    ]
    assert strip(m.message(hp.VoltMsg(48.0), 1.1)) == [("LoopVoltage", 48.0)]  # still faulty
    assert strip(m.message(hp.AckMsg("PING"), 1.2)) == [
        ("BoardFault", "mcu", True, "frames flowing")
    ]


def test_unsolicited_hello_means_the_mcu_restarted() -> None:
    m = opened()
    m.message(hp.HelloMsg(1, "0.1.0"), 0.1)  # the reply to VER
    assert m.message(hp.HelloMsg(1, "0.1.0"), 2.0) == []  # still the handshake
    assert strip(m.message(hp.HelloMsg(1, "0.1.1"), 60.0)) == [
        ("BoardFault", "mcu", False, "mcu restarted")
    ]
    assert m.version == "0.1.1"
    assert strip(m.message(hp.AckMsg("PING"), 60.5)) == [
        ("BoardFault", "mcu", True, "frames flowing")
    ]


def test_state_snapshot_fills_only_the_gaps() -> None:
    m = opened()
    idle = hp.StateMsg(False, False, 1, 48.0, False, False, False, 0)
    assert strip(m.message(idle, 0.1))[1:] == [("LoopVoltage", 48.0)]
    m.message(hp.HookMsg(True), 0.2)
    m.port_unavailable("lost")
    m.port_opened(5.0)
    # The phone went back on-hook and the line reversed while we were not listening.
    back = hp.StateMsg(False, False, -1, -48.0, False, False, False, 0)
    assert strip(m.message(back, 5.1))[1:] == [("Hook", False), ("LoopVoltage", -48.0)]
    ringing = hp.StateMsg(True, None, None, None, None, None, None, None)
    assert strip(m.message(ringing, 5.2)) == [("Ring", True)]


def test_nak_produces_no_event() -> None:
    m = opened()
    m.message(hp.AckMsg("PING"), 0.0)
    assert m.message(hp.NakMsg("RELAY", "WDT"), 0.1) == []
