"""The SIP UDP transport over real loopback sockets: peers only, stateless 400s, OPTIONS
keep-alives, rate limits, size limits, and the RFC 4475 torture set sent by a peer.

Loopback has all of 127.0.0.0/8, so the peers, the stranger and the transport each get their
own address. "Silence" is checked without sleeping: the transport handles one socket's
datagrams in order, so once the 200 to an OPTIONS probe sent after a datagram has arrived,
any answer to that datagram would have arrived before it.
"""

from __future__ import annotations

import json
import queue
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrec.sip.message import Request, Response, SipParseError, parse_datagram
from callrec.sip.transport import Limits, Peer, Received, Transport

REPO = Path(__file__).resolve().parents[2]
TORTURE = REPO / "tests/data/sip/rfc4475"
LAN_PEER = "127.0.0.2"  # the office's PBX
TRUNK_PEER = "127.0.0.3"  # the provider
STRANGER = "127.0.0.9"
BOX = "127.0.0.1"
TIMEOUT = 5.0

# Torture OPTIONS the transport answers itself (plain keep-alives: SIP/2.0, a sip: URI, no
# Require); the others go to the B2BUA for 505 (badvers), 420 (bext01), 416 (unkscm, novelsc).
KEEPALIVE_OPTIONS = {"lwsdisp.dat", "semiuri.dat", "transports.dat", "badbranch.dat",
                     "zeromf.dat"}


def options(n: int = 0, pad: int = 0) -> bytes:
    body = b"x" * pad
    head = (
        f"OPTIONS sip:{BOX} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LAN_PEER}:5060;branch=z9hG4bK-probe-{n}-{uuid.uuid4().hex[:8]}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:pbx@{LAN_PEER}>;tag=p{n}\r\n"
        f"To: <sip:{BOX}>\r\n"
        f"Call-ID: probe-{n}-{uuid.uuid4().hex}\r\n"
        f"CSeq: {n + 1} OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def udp(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(TIMEOUT)
    return s


def recv(s: socket.socket) -> Request | Response:
    data, _ = s.recvfrom(70_000)
    return parse_datagram(data)


def raw_response(data: bytes) -> tuple[str, dict[str, list[str]]]:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep and body == b""
    start, *lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        fields.setdefault(name.lower(), []).append(value)
    assert fields["content-length"] == ["0"]
    return start, fields


def nothing_waiting(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        s.recv(70_000)
    except BlockingIOError:
        return True
    finally:
        s.settimeout(TIMEOUT)
    return False


def sync(s: socket.socket, box: tuple[str, int]) -> None:
    """Send an OPTIONS probe and wait for its 200: everything sent before has been handled."""
    probe = options(999)
    s.sendto(probe, box)
    answer = recv(s)
    assert isinstance(answer, Response) and answer.status == 200, answer
    assert answer.call_id == parse_datagram(probe).call_id


class Box:
    def __init__(self, limits: Limits | None = None, same_socket: bool = False) -> None:
        self.inbox: queue.Queue[Received] = queue.Queue(maxsize=100)
        if same_socket:
            port = free_port(BOX)
            binds = {"lan": (BOX, port), "trunk": (BOX, port)}
        else:
            binds = {"lan": (BOX, 0), "trunk": (BOX, 0)}
        self.transport = Transport(
            binds, [Peer("lan", LAN_PEER), Peer("trunk", TRUNK_PEER)], self.inbox.put_nowait,
            limits)
        self.lan = self.transport.address("lan")
        self.trunk = self.transport.address("trunk")

    def delivered(self) -> list[Received]:
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def dropped(self) -> dict[str, int]:
        d = self.transport.counters()["dropped"]
        assert isinstance(d, dict)
        return d


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def box() -> Iterator[Box]:
    b = Box()
    b.transport.start()
    yield b
    b.transport.stop()


@pytest.fixture
def pbx() -> Iterator[socket.socket]:
    s = udp(LAN_PEER)
    yield s
    s.close()


def test_options_from_a_peer_gets_200_and_is_not_delivered(box: Box, pbx: socket.socket) -> None:
    probe = options(1)
    pbx.sendto(probe, box.lan)
    answer = recv(pbx)
    request = parse_datagram(probe)
    assert isinstance(answer, Response) and answer.status == 200
    assert answer.headers.get_all("via") == request.headers.get_all("via")
    assert answer.call_id == request.call_id and answer.cseq == request.cseq
    assert answer.from_.tag == "p1" and answer.to.tag
    assert "INVITE" in (answer.headers.get("allow") or "")
    assert box.delivered() == []
    assert box.transport.counters()["sent_options_200"] == 1


def test_stranger_gets_silence_whatever_it_sends(box: Box, pbx: socket.socket) -> None:
    stranger = udp(STRANGER)
    try:
        for data in (options(2), (TORTURE / "wsinv.dat").read_bytes(),
                     (TORTURE / "badinv01.dat").read_bytes(), b"garbage\r\n\r\n"):
            stranger.sendto(data, box.lan)
            stranger.sendto(data, box.trunk)
        sync(pbx, box.lan)
        trunk = udp(TRUNK_PEER)
        sync(trunk, box.trunk)
        trunk.close()
        assert nothing_waiting(stranger)
        assert box.delivered() == []
        assert box.dropped()["stranger"] == 8
        counters = box.transport.counters()
        assert counters["parsed"] == 2 and counters["sent_400"] == 0  # the two probes only
    finally:
        stranger.close()


def test_a_peer_on_the_other_sides_socket_is_a_stranger(box: Box, pbx: socket.socket) -> None:
    trunk = udp(TRUNK_PEER)
    try:
        trunk.sendto(options(3), box.lan)  # the provider talking to the office side
        pbx.sendto(options(4), box.trunk)
        sync(pbx, box.lan)
        sync(trunk, box.trunk)
        assert nothing_waiting(trunk) and nothing_waiting(pbx)
        assert box.dropped()["stranger"] == 2
    finally:
        trunk.close()


def test_one_socket_for_both_sides_tells_them_apart_by_peer() -> None:
    b = Box(same_socket=True)
    assert b.lan == b.trunk
    with b.transport:
        pbx, trunk, stranger = udp(LAN_PEER), udp(TRUNK_PEER), udp(STRANGER)
        try:
            invite = (TORTURE / "wsinv.dat").read_bytes()
            pbx.sendto(invite, b.lan)
            trunk.sendto(invite, b.lan)
            stranger.sendto(invite, b.lan)
            sync(pbx, b.lan)
            got = b.delivered()
            assert [(r.side, r.source[0]) for r in got] == [("lan", LAN_PEER),
                                                            ("trunk", TRUNK_PEER)]
            assert nothing_waiting(stranger)
            assert b.dropped()["stranger"] == 1
        finally:
            for s in (pbx, trunk, stranger):
                s.close()


def _torture() -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = json.loads(
        (TORTURE / "expected.json").read_text())["files"]
    return files


@pytest.mark.parametrize("name", sorted(_torture()))
def test_torture_message_from_a_peer(box: Box, pbx: socket.socket, name: str) -> None:
    data = (TORTURE / name).read_bytes()
    try:
        parsed: Request | Response | SipParseError = parse_datagram(data)
    except SipParseError as exc:
        parsed = exc
    pbx.sendto(data, box.lan)
    if isinstance(parsed, SipParseError) and parsed.answer is not None:
        # Documented as 400 (or 400 acceptable): a stateless 400 echoing the request.
        expected = _torture()[name]
        codes = [expected["expected_response"], *expected["also_acceptable"]]  # type: ignore[misc]
        assert 400 in codes
        # The 400 echoes the fields as received, malformed ones included (badaspec's To),
        # so it is read line by line rather than with the strict parser.
        status, fields = raw_response(pbx.recv(70_000))
        assert status.startswith("SIP/2.0 400 "), status
        assert fields["call-id"] == [parsed.answer.call_id]
        assert fields["via"] == list(parsed.answer.via)
        assert fields["cseq"] == [parsed.answer.cseq]
        assert fields["from"] == [parsed.answer.from_]
        assert ";tag=" in fields["to"][0]
        sync(pbx, box.lan)
        assert box.delivered() == []
        assert box.transport.counters()["sent_400"] == 1
        return
    if name in KEEPALIVE_OPTIONS:
        answer = recv(pbx)
        assert isinstance(answer, Response) and answer.status == 200
        assert not isinstance(parsed, SipParseError) and answer.call_id == parsed.call_id
        sync(pbx, box.lan)
        assert box.delivered() == []
        return
    sync(pbx, box.lan)
    if isinstance(parsed, SipParseError):  # a response, or nothing a 400 could echo
        assert nothing_waiting(pbx)
        assert box.delivered() == []
        assert box.dropped()["malformed"] == 1
        return
    # Valid (or odd, for the B2BUA to answer 4xx/5xx): delivered as parsed, nothing sent.
    assert nothing_waiting(pbx)
    (got,) = box.delivered()
    assert got.side == "lan" and got.source == pbx.getsockname()
    assert got.message == parsed


def test_a_retransmitted_bad_request_gets_the_same_to_tag(box: Box, pbx: socket.socket) -> None:
    data = (TORTURE / "badinv01.dat").read_bytes()
    pbx.sendto(data, box.lan)
    first = raw_response(pbx.recv(70_000))
    pbx.sendto(data, box.lan)
    second = raw_response(pbx.recv(70_000))
    assert first == second and ";tag=" in first[1]["to"][0]


def test_flood_from_one_peer_is_rate_limited_and_never_answered() -> None:
    b = Box(Limits(rate=5.0, burst=10.0))
    with b.transport:
        pbx, trunk = udp(LAN_PEER), udp(TRUNK_PEER)
        try:
            start = time.monotonic()
            n = 100
            for i in range(n):
                pbx.sendto(options(i), b.lan)
            deadline = time.monotonic() + TIMEOUT
            while b.transport.counters()["received"] != n:
                assert time.monotonic() < deadline, b.transport.counters()
                time.sleep(0.01)
            elapsed = time.monotonic() - start
            answered = 0
            while not nothing_waiting(pbx):
                answered += 1
            assert 10 <= answered <= 10 + 5 * elapsed + 1
            assert b.dropped()["rate"] == n - answered
            # The other peer is not affected by the flood.
            sync(trunk, b.trunk)
        finally:
            pbx.close()
            trunk.close()


def test_oversized_datagram_is_dropped_unread(box: Box, pbx: socket.socket) -> None:
    limit = box.transport.limits.max_datagram
    pad = limit - len(options(5))
    at_limit = options(5, pad=pad - (len(options(5, pad)) - limit))
    assert len(at_limit) == limit
    pbx.sendto(at_limit + b"x", box.lan)
    pbx.sendto(at_limit, box.lan)
    answer = recv(pbx)  # the one at the limit is parsed and answered
    assert isinstance(answer, Response) and answer.status == 200
    assert answer.call_id == parse_datagram(at_limit).call_id
    sync(pbx, box.lan)
    assert box.dropped()["oversize"] == 1


def test_full_queue_is_counted_and_the_loop_goes_on(pbx: socket.socket) -> None:
    b = Box()
    b.inbox = queue.Queue(maxsize=1)
    b.transport._on_message = b.inbox.put_nowait
    with b.transport:
        invite = (TORTURE / "wsinv.dat").read_bytes()
        pbx.sendto(invite, b.lan)
        pbx.sendto(invite, b.lan)
        sync(pbx, b.lan)
        assert len(b.delivered()) == 1
        assert b.dropped()["queue_full"] == 1


def test_send_and_counters(box: Box) -> None:
    trunk = udp(TRUNK_PEER)
    try:
        message = parse_datagram((TORTURE / "wsinv.dat").read_bytes())
        assert box.transport.send("trunk", message, trunk.getsockname())
        data, source = trunk.recvfrom(70_000)
        assert source == box.trunk
        assert parse_datagram(data) == parse_datagram(message.serialize())
        counters = box.transport.counters()
        assert counters["sent"] == 1 and counters["send_errors"] == 0
    finally:
        trunk.close()


def test_keepalive_crlf_is_ignored(box: Box, pbx: socket.socket) -> None:
    pbx.sendto(b"\r\n\r\n", box.lan)
    sync(pbx, box.lan)
    assert nothing_waiting(pbx)
    assert box.dropped() == dict.fromkeys(box.dropped(), 0)


def test_stop_closes_the_sockets() -> None:
    b = Box()
    b.transport.start()
    b.transport.stop()
    with pytest.raises(OSError):
        b.transport.address("lan")
