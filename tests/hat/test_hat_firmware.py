"""The MCU firmware on a fake HAL and clock: commands, events, the relay watchdog."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from callrec_mcu import firmware, framing
from callrec_mcu.firmware import WATCHDOG_MS, cid_fields

MCU_DIR = Path(firmware.__file__).parent


def test_boot_sends_hello_then_the_settled_hook(make_board: Callable) -> None:
    b = make_board()
    b.run(200)
    sent = b.hal.sent()
    assert sent[0] == f"HELLO,1,{firmware.FW_VERSION}"
    assert "HOOK,0" in sent and "VOLT,48.0" in sent
    assert not b.hal.relay and not b.hal.fault_led


def test_ver_get_and_unknown(board) -> None:
    assert board.command("VER") == [f"HELLO,1,{firmware.FW_VERSION}"]
    assert board.command("GET") == [
        "STATE,RING=0,HOOK=0,POL=+,VOLT=48.0,RELAY=0,LED=0,WDT=0,RXERR=0"
    ]
    assert board.command("REBOOT", "now") == ["NAK,REBOOT,UNKNOWN"]
    assert board.command("A%B") == ["NAK,A%25B,UNKNOWN"]


def test_state_before_the_line_settles(make_board: Callable) -> None:
    b = make_board()
    b.hal.rx = framing.encode_frame(["GET"])
    b.run(1)
    assert b.hal.sent()[-1] == "STATE,RING=0,HOOK=?,POL=?,VOLT=?,RELAY=0,LED=0,WDT=0,RXERR=0"


def test_relay_needs_an_armed_watchdog(board) -> None:
    assert board.command("RELAY", "1") == ["NAK,RELAY,WDT"]
    assert not board.hal.relay
    assert board.command("PING") == ["ACK,PING"]
    assert board.command("RELAY", "1") == ["ACK,RELAY"]
    assert board.hal.relay
    assert board.command("RELAY", "0") == ["ACK,RELAY"]
    assert not board.hal.relay
    assert board.command("RELAY", "0") == ["ACK,RELAY"]  # opening is always allowed


@pytest.mark.parametrize("args", [(), ("2",), ("1", "1"), ("on",)])
def test_relay_bad_arguments(board, args: tuple[str, ...]) -> None:
    board.command("PING")
    assert board.command("RELAY", *args) == ["NAK,RELAY,BADARG"]
    assert not board.hal.relay


def test_fault_led(board) -> None:
    assert board.command("LED", "FAULT", "1") == ["ACK,LED"]
    assert board.hal.fault_led
    assert board.command("LED", "REC", "1") == ["NAK,LED,BADARG"]
    assert board.command("LED", "FAULT") == ["NAK,LED,BADARG"]
    assert board.command("LED", "FAULT", "0") == ["ACK,LED"]
    assert not board.hal.fault_led


def test_watchdog_opens_the_relay_after_3_s_without_ping(board) -> None:
    board.command("PING")
    board.command("RELAY", "1")
    board.run(WATCHDOG_MS - 3)  # 1 ms went by in each command()
    assert board.hal.relay and not board.hal.fault_led
    assert board.hal.sent() == []
    board.run(2)
    assert not board.hal.relay and board.hal.fault_led
    assert board.hal.sent() == ["WDT"]
    board.run(10_000)
    assert board.hal.sent() == ["VOLT,48.0"]  # WDT is reported once, not repeated
    assert board.command("GET")[0].endswith("RELAY=0,LED=1,WDT=1,RXERR=0")
    # A PING clears the watchdog's FAULT, but the relay stays open until the Pi asks again.
    assert board.command("PING") == ["ACK,PING"]
    assert not board.hal.fault_led and not board.hal.relay


def test_watchdog_keeps_the_led_the_pi_asked_for(board) -> None:
    board.command("LED", "FAULT", "1")
    board.command("PING")
    board.run(WATCHDOG_MS + 10)
    board.command("PING")
    assert board.hal.fault_led


def test_regular_pings_keep_the_relay_closed(board) -> None:
    board.command("PING")
    board.command("RELAY", "1")
    for _ in range(10):
        board.run(999)
        board.command("PING")
    assert board.hal.relay
    assert "WDT" not in board.hal.sent()


def test_watchdog_across_ticks_wraparound(make_board: Callable) -> None:
    """MicroPython's ticks_ms wraps; the watchdog must work through the wrap."""
    b = make_board(wrap=1 << 14)
    b.hal.now = (1 << 14) - 1000
    b.run(200)
    b.command("PING")
    b.command("RELAY", "1")
    b.run(2500)  # the clock wrapped in here
    assert b.hal.relay
    b.run(600)
    assert not b.hal.relay and "WDT" in b.hal.sent()


def test_bad_crc_commands_are_ignored_and_counted(board) -> None:
    board.command("PING")
    board.hal.rx = framing.encode_frame(["RELAY", "1"]).replace(b"*", b"*F")[:-2] + b"\n"
    board.hal.rx += b"$RELAY,1*0000\n"
    board.run(1)
    assert board.hal.sent() == [] and not board.hal.relay
    assert board.command("GET")[0].endswith("RXERR=2")


def test_line_events_become_frames(make_board: Callable, ring_wave) -> None:
    wave = {"v": 48.0}
    b = make_board(volts=lambda t: ring_wave(t) if wave["v"] == "ring" else wave["v"])
    b.run(200)
    b.hal.sent()
    wave["v"] = "ring"
    b.run(400)
    assert b.hal.sent() == ["RING,1"]
    wave["v"] = 48.0
    b.run(400)
    assert b.hal.sent() == ["RING,0"]
    wave["v"] = 8.0
    b.run(200)
    assert b.hal.sent() == ["HOOK,1", "VOLT,8.0"]
    wave["v"] = -8.0
    b.run(200)
    assert b.hal.sent() == ["POL,-", "VOLT,-8.0"]


def test_caller_id_frame(board) -> None:
    board.hal.cid = ("0123456789", "Dupont, Jean")
    board.run(1)
    assert board.hal.sent() == ["CID,0123456789,Dupont%2C Jean"]
    board.hal.cid = ("", "")
    board.run(1)
    assert board.hal.sent() == ["CID,,"]


def test_caller_id_is_shortened_to_fit_a_frame() -> None:
    fields = cid_fields("0" * 40, "é" * 60)
    frame = framing.encode_frame(fields)
    assert len(frame) <= framing.MAX_FRAME
    assert fields[1] == "0" * 40
    assert framing.unescape_field(fields[2]) == "é" * len(framing.unescape_field(fields[2]))
    assert len(framing.encode_frame(cid_fields("1" * 300, ""))) <= framing.MAX_FRAME


# -- MicroPython subset ---------------------------------------------------------------------

FORBIDDEN_MODULES = {"typing", "dataclasses", "enum", "abc", "__future__", "collections"}


@pytest.mark.parametrize("path", sorted(MCU_DIR.glob("*.py")), ids=lambda p: p.name)
def test_firmware_stays_in_the_micropython_subset(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        else:
            names = set()
        assert not names & FORBIDDEN_MODULES, f"{path.name}:{node.lineno} imports {names}"
        assert not isinstance(node, ast.Match), f"{path.name}:{node.lineno}: match"
        assert not isinstance(node, ast.AnnAssign), f"{path.name}:{node.lineno}: annotation"
        if isinstance(node, ast.FormattedValue):
            # f"{x!r}" and f"{x=}" (which compiles to !r) are not MicroPython.
            assert node.conversion == -1, f"{path.name}:{node.lineno}: f-string conversion"
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and not any(a.annotation for a in node.args.args), (
                f"{path.name}:{node.lineno}: annotations"
            )
