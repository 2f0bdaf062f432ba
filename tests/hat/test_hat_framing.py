"""Framing, CRC and escaping, against the spec's worked examples (hw/PROTOCOL.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callrec.board import hat_protocol as hp
from callrec_mcu import framing
from callrec_mcu.firmware import Mcu

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "hw" / "PROTOCOL.md"

# The same examples as the spec, with their meaning: the test that the document is true.
EXAMPLES: list[tuple[bytes, hp.Message]] = [
    (b"$HELLO,1,0.1.0*829F\n", hp.HelloMsg(1, "0.1.0")),
    (b"$RING,1*7DD2\n", hp.RingMsg(True)),
    (b"$RING,0*6DF3\n", hp.RingMsg(False)),
    (b"$HOOK,1*2F04\n", hp.HookMsg(True)),
    (b"$HOOK,0*3F25\n", hp.HookMsg(False)),
    (b"$POL,-*60C4\n", hp.PolarityMsg(-1)),
    (b"$POL,+*0002\n", hp.PolarityMsg(1)),
    (b"$VOLT,48.0*8244\n", hp.VoltMsg(48.0)),
    (b"$VOLT,-7.9*D78C\n", hp.VoltMsg(-7.9)),
    (b"$CID,0123456789,Dupont%2C Jean*07C3\n", hp.CallerIdMsg("0123456789", "Dupont, Jean")),
    (b"$CID,,*1455\n", hp.CallerIdMsg(None, None)),
    (b"$CID,0612345678,Zo%C3%AB*3505\n", hp.CallerIdMsg("0612345678", "Zoë")),
    (b"$WDT*CCBB\n", hp.WatchdogMsg()),
    (b"$ACK,PING*4F99\n", hp.AckMsg("PING")),
    (b"$NAK,RELAY,WDT*7906\n", hp.NakMsg("RELAY", "WDT")),
    (
        b"$STATE,RING=0,HOOK=1,POL=+,VOLT=8.1,RELAY=1,LED=0,WDT=0,RXERR=0*938B\n",
        hp.StateMsg(False, True, 1, 8.1, True, False, False, 0),
    ),
    (
        b"$STATE,RING=0,HOOK=?,POL=?,VOLT=?,RELAY=0,LED=0,WDT=0,RXERR=0*6432\n",
        hp.StateMsg(False, None, None, None, False, False, False, 0),
    ),
]

COMMANDS: list[tuple[bytes, tuple[str, ...]]] = [
    (b"$PING*6427\n", ("PING",)),
    (b"$VER*A87C\n", ("VER",)),
    (b"$GET*BCE9\n", ("GET",)),
    (b"$RELAY,1*7566\n", ("RELAY", "1")),
    (b"$RELAY,0*6547\n", ("RELAY", "0")),
    (b"$LED,FAULT,1*D9D5\n", ("LED", "FAULT", "1")),
    (b"$LED,FAULT,0*C9F4\n", ("LED", "FAULT", "0")),
]


def doc_frames() -> list[bytes]:
    text = PROTOCOL_MD.read_text(encoding="utf-8").split("## Worked examples", 1)[1]
    return [m.encode() + b"\n" for m in re.findall(r"(\$[^*$\n]*\*[0-9A-F]{4})$", text, re.M)]


def test_crc_check_value() -> None:
    assert framing.crc16_ccitt(b"123456789") == 0x29B1
    assert framing.crc16_ccitt(b"") == 0xFFFF


@pytest.mark.parametrize(("frame", "message"), EXAMPLES)
def test_spec_examples_decode(frame: bytes, message: hp.Message) -> None:
    parser = hp.FrameParser()
    assert parser.feed(frame) == [message]
    assert parser.stats["frames"] == 1


@pytest.mark.parametrize(("frame", "fields"), COMMANDS)
def test_spec_commands_encode(frame: bytes, fields: tuple[str, ...]) -> None:
    assert framing.encode_frame(list(fields)) == frame
    command, *args = fields
    assert hp.encode_command(command, *args) == frame


def test_mcu_encodes_the_spec_examples() -> None:
    for frame, _ in EXAMPLES:
        payload = frame[1 : frame.index(b"*")].decode()
        assert framing.encode_frame(payload.split(",")) == frame


def test_every_frame_in_the_document_is_valid_and_understood() -> None:
    frames = doc_frames()
    assert len(frames) >= len(EXAMPLES) + len(COMMANDS)
    known = {f for f, _ in EXAMPLES} | {f for f, _ in COMMANDS}
    for frame in frames:
        fields = framing.FrameDecoder().feed(frame)
        assert len(fields) == 1, frame
        if fields[0][0] in hp.COMMANDS:
            assert frame in {f for f, _ in COMMANDS}, frame
        else:
            assert len(hp.FrameParser().feed(frame)) == 1, frame
    assert known <= set(frames)


def test_bool_arguments_and_unknown_commands() -> None:
    assert hp.encode_command("RELAY", True) == b"$RELAY,1*7566\n"
    assert hp.encode_command("LED", "FAULT", False) == b"$LED,FAULT,0*C9F4\n"
    with pytest.raises(ValueError, match="unknown command"):
        hp.encode_command("REBOOT")


@pytest.mark.parametrize(
    "text", ["", "plain", "a,b*c$d\\e%f", "Zoë SStraße", "tab\tnew\nline", "%41 stays", "日本"]
)
def test_escape_round_trip(text: str) -> None:
    escaped = framing.escape_field(text)
    assert all(0x20 <= ord(c) <= 0x7E and c not in ",*$\\" for c in escaped)
    assert framing.unescape_field(escaped) == text


def test_unescape_is_lenient() -> None:
    assert framing.unescape_field("100%") == "100%"
    assert framing.unescape_field("%zz%4") == "%zz%4"
    assert framing.unescape_field("%E9t%E9") == "été"  # not UTF-8: read as Latin-1


def test_encode_refuses_unsafe_or_oversize_payloads() -> None:
    with pytest.raises(ValueError):
        framing.encode_frame(["CID", "a*b"])
    with pytest.raises(ValueError):
        framing.encode_frame(["X" * (framing.MAX_PAYLOAD + 1)])
    with pytest.raises(ValueError):
        framing.encode_frame([""])
    longest = framing.encode_frame(["X" * framing.MAX_PAYLOAD])
    assert len(longest) == framing.MAX_FRAME
    assert framing.FrameDecoder().feed(longest) == [["X" * framing.MAX_PAYLOAD]]


def test_firmware_answers_every_documented_command() -> None:
    class Hal:
        def __init__(self) -> None:
            self.out = b""
            self.rx = b""

        def adc_line_volts(self) -> float:
            return 48.0

        def set_relay(self, closed: bool) -> None: ...
        def set_fault_led(self, on: bool) -> None: ...

        def uart_read(self) -> bytes:
            data, self.rx = self.rx, b""
            return data

        def uart_write(self, data: bytes) -> None:
            self.out += data

        def ticks_ms(self) -> int:
            return 0

        def ticks_diff(self, new: int, old: int) -> int:
            return new - old

        def cid_poll(self) -> None:
            return None

    hal = Hal()
    mcu = Mcu(hal)
    hal.rx = b"".join(f for f in doc_frames() if f.startswith((b"$PING", b"$VER", b"$GET")))
    hal.rx += b"".join(f for f in doc_frames() if f.startswith((b"$RELAY", b"$LED")))
    mcu.step()
    replies = hp.FrameParser().feed(hal.out)
    assert not [r for r in replies if isinstance(r, hp.NakMsg)]
    assert hp.HelloMsg(1, mcu.fw_version) in replies
    assert any(isinstance(r, hp.StateMsg) for r in replies)
