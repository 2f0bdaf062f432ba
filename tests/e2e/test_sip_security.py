"""The running box as an attacker on the network sees it: SIPVicious scans, the RFC 4475
torture set, floods and oversized datagrams, and RTP injected into a call.

What the box promises (ARCHITECTURE.md, "SIP", Transport and Relay): it serves its two
configured peers only. A datagram from anyone else is dropped unparsed and unanswered, so a
scanner learns nothing, not even that a SIP element listens; a peer gets a stateless 400 for a
request it cannot parse, 200 to its OPTIONS keep-alives, and is rate limited (300/s, burst
1,000); a datagram over 16 KiB is dropped unread; RTP from anyone but a leg's peer is neither
forwarded nor recorded.

Addresses, as in `sip_box`: the box at 127.0.0.10 (office side) and 127.0.0.20 (provider
side), the office PBX at 127.0.0.1, the provider at 127.0.0.4. The stranger is 127.0.0.99.
Where a test plays a configured peer it binds a socket on that peer's host (any source port:
the box accepts a peer's host from any port, as a PBX sends from ephemeral ones), and where
the box forwards a call it stands in for the other side on that side's configured address.

The scans from the PBX's own host are the other half of the story: 127.0.0.1 IS a configured
peer, so the office side answers it (svmap finds a "callrec" there, by design: the PBX's
keep-alives need their 200). What matters there is that the answers do not tell users apart:
the box is no registrar (REGISTER: 405 whatever the user), answers every OPTIONS 200, and
routes every INVITE to the trunk, whatever its user, so only the provider's answer can differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiocheck import best_match
from callrec.dsp.g711 import alaw_encode
from callrec.sim.harness import Pulse
from callrec.sip.message import Request, SipParseError, parse_datagram
from sip_box import PBX_HOST, PROVIDER_HOST, SCENARIOS, SipBox, pcap_audio, start_sip_box
from sip_peers import PeerFactory, sdp_offer

pytestmark = pytest.mark.sip

STRANGER = "127.0.0.99"
TORTURE = Path(__file__).resolve().parents[1] / "data" / "sip" / "rfc4475"
BURST, RATE = 1_000, 300.0  # transport.Limits' defaults
MAX_DATAGRAM = 16_384
FLOOD_RATE = 5_000.0  # datagrams/s
WAIT = 5.0  # for an answer the box owes: generous, the machine is shared


# --- sockets and messages -------------------------------------------------------------------

def udp(host: str, port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    s.bind((host, port))
    return s


def request(method: str, sock: socket.socket, to: tuple[str, int], *, call_id: str = "",
            user: str = "100", extra: tuple[str, ...] = (), pad: int = 0) -> bytes:
    """A well-formed request from `sock` to the box at `to` (`pad`: a filler field)."""
    host, port = sock.getsockname()
    lines = [
        f"{method} sip:{user}@{to[0]}:{to[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport",
        "Max-Forwards: 70",
        f"From: <sip:security@{host}:{port}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{user}@{to[0]}>",
        f"Call-ID: {call_id or uuid.uuid4().hex}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:security@{host}:{port}>",
        *extra,
    ]
    if pad:
        lines.append("X-Padding: " + "a" * pad)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_response(data: bytes) -> tuple[int, dict[str, list[str]]]:
    """Status code and fields, read line by line: a 400 echoes malformed fields as received,
    which the strict parser would refuse."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ", lines[0] + " ")
    assert match, f"not a response: {lines[0]!r}"
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return int(match.group(1)), fields


def receive(sock: socket.socket, timeout: float) -> list[bytes]:
    """Everything that arrives on `sock` within `timeout` seconds."""
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recv(70_000))
        except TimeoutError:
            break
    return out


def options_round_trip(sock: socket.socket, to: tuple[str, int], timeout: float = WAIT) -> int:
    """Send an OPTIONS and return the status of its answer (0: none in time)."""
    call_id = uuid.uuid4().hex
    sock.sendto(request("OPTIONS", sock, to, call_id=call_id), to)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(70_000)
        except TimeoutError:
            break
        status, fields = raw_response(data)
        if fields.get("call-id") == [call_id]:
            return status
    return 0


def response_to(req: Request, status: int, reason: str) -> bytes:
    """A UAS's final answer to a request the box sent (RFC 3261 8.2.6)."""
    hd = req.headers
    to = hd.get("to") or ""
    if ";tag=" not in to:
        to += ";tag=peer" + uuid.uuid4().hex[:6]
    lines = [f"SIP/2.0 {status} {reason}", *(f"Via: {v}" for v in hd.get_all("via")),
             f"From: {hd.get('from')}", f"To: {to}", f"Call-ID: {hd.get('call-id')}",
             f"CSeq: {hd.get('cseq')}", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class PeerStandIn:
    """A UDP socket on a configured peer's address: records what the box sends there and, with
    `answer`, ends each INVITE the box sends at once with that final status (so that calls the
    tests cause do not linger), ACKs aside."""

    def __init__(self, address: tuple[str, int], answer: int | None = None) -> None:
        self.sock = udp(*address)
        self.answer = answer
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(70_000)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(data)
            try:
                msg = parse_datagram(data)
            except SipParseError:
                continue
            if self.answer and isinstance(msg, Request) and msg.method == "INVITE":
                with contextlib.suppress(OSError):
                    self.sock.sendto(response_to(msg, self.answer, "Busy Here"), source)
            elif self.answer and isinstance(msg, Request) and msg.method == "REGISTER":
                # A provider that knows none of these accounts (the box relays the PBX's).
                with contextlib.suppress(OSError):
                    self.sock.sendto(response_to(msg, 403, "Forbidden"), source)

    def requests(self, method: str | None = None) -> list[Request]:
        out = []
        for data in list(self.received):
            with contextlib.suppress(SipParseError):
                msg = parse_datagram(data)
                if isinstance(msg, Request) and method in (None, msg.method):
                    out.append(msg)
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def standing_in(address: tuple[str, int], answer: int | None = None) -> Iterator[PeerStandIn]:
    peer = PeerStandIn(address, answer)
    try:
        yield peer
    finally:
        peer.close()


# --- the box's state ------------------------------------------------------------------------

def refreshed(box: SipBox, provider: PeerStandIn) -> dict[str, Any]:
    """The SIP status as of now. The daemon rewrites its status file every 2 s while a SIP
    line runs, and at once when a call ends; to know that everything sent so far is counted,
    place a call from the PBX's host that the provider's stand-in (answer 486) refuses, ACK
    the 486, and wait for the status that counts it. The decision thread handles events in
    order, so everything the box received before is in the counters too."""
    assert provider.answer == 486
    busy = int((box.sip_status().get("outcomes") or {}).get("busy", 0))
    sock = udp(PBX_HOST)
    try:
        host, port = sock.getsockname()
        call_id, branch = uuid.uuid4().hex, "z9hG4bK-" + uuid.uuid4().hex
        body = sdp_offer(host, 4000)
        head = [f"INVITE sip:0100000000@{box.lan[0]}:{box.lan[1]} SIP/2.0",
                f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport", "Max-Forwards: 70",
                f"From: <sip:refresh@{host}:{port}>;tag=r{call_id[:6]}",
                f"To: <sip:0100000000@{box.lan[0]}>", f"Call-ID: {call_id}", "CSeq: 1 INVITE",
                f"Contact: <sip:refresh@{host}:{port}>", "Content-Type: application/sdp",
                f"Content-Length: {len(body)}"]
        sock.sendto(("\r\n".join(head) + "\r\n\r\n").encode() + body, box.lan)
        got: list[bytes] = []
        deadline = time.monotonic() + 15
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(70_000)
            except TimeoutError:
                raise AssertionError(f"refresh call: no final answer {got}\n"
                                     + box.daemon_log()) from None
            got.append(data)
            status, fields = raw_response(data)
            if status >= 200:
                break
        assert status == 486, got
        ack = [f"ACK sip:0100000000@{box.lan[0]}:{box.lan[1]} SIP/2.0", head[1],
               "Max-Forwards: 70", head[3], f"To: {fields['to'][0]}", head[5], "CSeq: 1 ACK",
               "Content-Length: 0"]
        sock.sendto(("\r\n".join(ack) + "\r\n\r\n").encode(), box.lan)
        while True:
            sip = box.sip_status()
            if int((sip.get("outcomes") or {}).get("busy", 0)) > busy:
                break
            assert time.monotonic() < deadline, f"status not published\n{box.daemon_log()}"
            time.sleep(0.05)
        return sip
    finally:
        sock.close()


def wait_for_status(box: SipBox) -> None:
    deadline = time.monotonic() + 30
    while not (box.app.status() or {}).get("sip"):
        assert time.monotonic() < deadline, box.daemon_log()
        time.sleep(0.1)


def daemon_alive(box: SipBox) -> None:
    proc = box.app.procs["daemon"]
    assert proc.poll() is None, f"daemon exited ({proc.returncode})\n{box.daemon_log()}"
    import urllib.request

    with urllib.request.urlopen(box.app.base_url + "/login", timeout=10) as page:
        assert page.status == 200


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def udp_ports_of(pid: int, hosts: tuple[str, ...]) -> set[tuple[str, int]]:
    """The UDP addresses process `pid` has bound on `hosts` (its sockets' inodes in
    /proc/<pid>/fd matched against /proc/net/udp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[9] not in inodes:
            continue
        hexip, hexport = cols[1].split(":")
        ip = socket.inet_ntoa(int(hexip, 16).to_bytes(4, "little"))
        if ip in hosts:
            out.add((ip, int(hexport, 16)))
    return out


# --- sipvicious -----------------------------------------------------------------------------

# sipvicious 0.3.8's svwar accepts -b/--bindingip but never passes it on (its main() builds
# TakeASip without it), so it sends from the default source, which on loopback is 127.0.0.1:
# the PBX's host. This runs svwar with the -b it was given.
SVWAR_BOUND = """
import sys
from sipvicious import svwar
bind = sys.argv[sys.argv.index("-b") + 1] if "-b" in sys.argv else ""
init = svwar.TakeASip.__init__
def bound(self, *args, **kw):
    kw.setdefault("bindingip", bind)
    init(self, *args, **kw)
svwar.TakeASip.__init__ = bound
sys.argv[0] = "sipvicious_svwar"
svwar.main()
"""


def sipvicious(tool: str, args: list[str], workdir: Path,
               timeout: float = 90.0) -> subprocess.Popen[str]:
    """Start one of SIPVicious' tools (`svmap`, `svwar`) as a process of its own; its HOME is
    `workdir` (it keeps sessions under ~/.sipvicious)."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        import sipvicious  # noqa: F401  # installed by the `test` extra
    except ImportError:
        pytest.fail("sipvicious is not installed: pip install '.[test]' "
                    "(./install.sh --dev --with-tests)")
    launcher = ["-c", SVWAR_BOUND, *args] if tool == "svwar" else ["-m", f"sipvicious.{tool}",
                                                                   *args]
    return subprocess.Popen([sys.executable, *launcher], cwd=workdir,
                            env={**os.environ, "HOME": str(workdir)}, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[str], timeout: float = 90.0) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"sipvicious still running after {timeout} s:\n{out}") from None
    args = proc.args if isinstance(proc.args, list) else [proc.args]
    return f"$ {' '.join(map(str, args))}\n(exit {proc.returncode})\n{out}"


def table_rows(output: str) -> list[str]:
    """The rows of the result table SIPVicious prints when it found something (svmap: "SIP
    Device | User Agent", svwar: "Extension | Authentication")."""
    rows = []
    for line in output.splitlines():
        if line.startswith("|") and not re.search(r"SIP Device|Extension", line):
            rows.append(line)
    return rows


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- the box --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, pulse: Pulse,
        media: dict[str, Path]) -> Iterator[SipBox]:
    b = start_sip_box(tmp_path_factory.mktemp("sipbox-security"), pulse, media["prompt"])
    try:
        wait_for_status(b)
        yield b
    finally:
        b.app.stop()


# --- 1. scanners ----------------------------------------------------------------------------

def only_refresh_traffic(t0: dict[str, Any], t1: dict[str, Any]) -> None:
    """Between two `refreshed` statuses, the box took in and sent only the second refresh
    call's messages (INVITE, the provider's 486, the caller's ACK; 100, INVITE, 486, ACK) and
    perhaps the first one's ACK, which may cross its status; a retransmission or two on a
    loaded machine. No stateless answer at all: nothing to a scanner."""
    assert t1["sent_400"] == t0["sent_400"] and \
        t1["sent_options_200"] == t0["sent_options_200"], (t0, t1)
    assert 2 <= t1["parsed"] - t0["parsed"] <= 4, (t0, t1)
    assert t1["delivered"] - t0["delivered"] == t1["parsed"] - t0["parsed"], (t0, t1)
    assert 4 <= t1["sent"] - t0["sent"] <= 8, (t0, t1)


def test_svmap_from_a_stranger_finds_nothing(box: SipBox, tmp_path: Path) -> None:
    """svmap (OPTIONS and INVITE) over both box addresses, their SIP ports and the ports
    around them, from an address that is no peer: no device found, no answer sent, nothing
    routed, every datagram counted as a stranger's."""
    ports = sorted({box.lan[1], box.trunk[1]})
    spread = ",".join(f"{p - 5}-{p + 5}" for p in ports)
    with standing_in(box.provider, answer=486) as provider, standing_in(box.pbx) as pbx:
        before = refreshed(box, provider)
        seen = len(provider.requests("INVITE"))
        runs = [sipvicious("svmap", ["-b", STRANGER, "-P", str(free_port(STRANGER)),
                                     "-p", spread, "-m", method, "-t", "0.01",
                                     box.lan[0], box.trunk[0]], tmp_path / method)
                for method in ("OPTIONS", "INVITE")]
        outputs = [finish(p) for p in runs]
        routed = provider.requests("INVITE")[seen:] + pbx.requests()
        after = refreshed(box, provider)
    for out in outputs:
        assert "found nothing" in out and not table_rows(out), out
        assert "callrec" not in out, out
    assert not routed, f"a stranger's scan reached a peer: {routed[:2]}"
    t0, t1 = before["transport"], after["transport"]
    only_refresh_traffic(t0, t1)
    # Each run sent (at least) one datagram to each of the box's two SIP sockets.
    assert t1["dropped"]["stranger"] - t0["dropped"]["stranger"] >= 2 * len(runs), (t0, t1)
    daemon_alive(box)


def test_svmap_from_the_pbx_host_finds_only_the_office_side(box: SipBox,
                                                            tmp_path: Path) -> None:
    """The peer case, documented: from 127.0.0.1 (the configured PBX's host) the office side
    answers OPTIONS 200 (the PBX's keep-alives), so svmap finds it, named "callrec"; the
    provider side treats 127.0.0.1 as a stranger and stays silent."""
    ports = sorted({box.lan[1], box.trunk[1]})
    with standing_in(box.provider) as provider:
        out = finish(sipvicious("svmap", ["-b", PBX_HOST, "-P", str(free_port(PBX_HOST)),
                                          "-p", ",".join(map(str, ports)), "-t", "0.01",
                                          box.lan[0], box.trunk[0]], tmp_path))
        time.sleep(0.5)
        assert not provider.received
    rows = table_rows(out)
    assert len(rows) == 1, out
    assert f"{box.lan[0]}:{box.lan[1]}" in rows[0] and "callrec" in rows[0], out


def test_svwar_from_a_stranger_learns_no_extension(box: SipBox, tmp_path: Path) -> None:
    """svwar with REGISTER, OPTIONS and INVITE against both sides from a stranger: no answer
    at all (svwar's first probe times out), no extension, nothing routed."""
    with standing_in(box.provider, answer=486) as provider, standing_in(box.pbx) as pbx:
        before = refreshed(box, provider)
        seen = len(provider.requests("INVITE"))
        runs = [sipvicious("svwar", ["-b", STRANGER, "-P", str(free_port(STRANGER)),
                                     "-m", method, "-e", "100-110,200,1000",
                                     f"udp://{host}:{port}"], tmp_path / f"{method}-{port}")
                for method in ("REGISTER", "OPTIONS", "INVITE")
                for host, port in (box.lan, box.trunk)]
        outputs = [finish(p) for p in runs]
        routed = provider.requests("INVITE")[seen:] + pbx.requests()
        after = refreshed(box, provider)
    for out in outputs:
        # svwar's first probe timed out: not a single answer.
        assert "timed out" in out and "found nothing" in out, out
        assert not table_rows(out), out
    assert not routed, f"a stranger's INVITE reached a peer: {routed[:1]}"
    t0, t1 = before["transport"], after["transport"]
    assert t1["dropped"]["stranger"] - t0["dropped"]["stranger"] >= len(runs)
    only_refresh_traffic(t0, t1)
    assert after["outcomes"].get("busy") == before["outcomes"].get("busy", 0) + 1


def test_svwar_from_the_pbx_host_cannot_tell_users_apart(box: SipBox, tmp_path: Path) -> None:
    """From the PBX's host (a peer): REGISTER is relayed to the provider, which answers
    every user alike here (403: it knows none), so nothing is learned from the box, and what
    reaches the provider names the box's address, not the scanner's; OPTIONS 200 for every
    user (all alike: nothing learned). An INVITE is an
    outgoing call for the box whatever the user: routed to the provider, where nobody answers
    here, so svwar's probe hears 100 Trying and nothing final within its 3 s and gives up
    (the box would answer 408 after 64*T1 = 32 s). The provider's stand-in then ends the
    call (480), as a provider would, and the box counts it unanswered."""
    for method in ("REGISTER", "OPTIONS"):
        with standing_in(box.provider, answer=486) as provider:
            out = finish(sipvicious("svwar", ["-b", PBX_HOST, "-P", str(free_port(PBX_HOST)),
                                              "-m", method, "-e", "100-120",
                                              f"udp://{box.lan[0]}:{box.lan[1]}"],
                                    tmp_path / method))
        assert "found nothing" in out and not table_rows(out), out
        registers = provider.requests("REGISTER")
        assert bool(registers) == (method == "REGISTER")
        for r in registers:  # relayed as the box's own: its Contact, its Via
            assert all(box.trunk[0] in c.uri.raw for c in r.contacts), r.headers.get("contact")
            assert r.vias[0].host == box.trunk[0]
    unanswered = int(box.sip_status()["outcomes"].get("unanswered", 0))
    with standing_in(box.provider) as provider:
        out = finish(sipvicious("svwar", ["-b", PBX_HOST, "-P", str(free_port(PBX_HOST)),
                                          "-m", "INVITE", "-e", "100-102",
                                          f"udp://{box.lan[0]}:{box.lan[1]}"],
                                tmp_path / "INVITE"))
        assert "found nothing" in out and not table_rows(out), out
        assert "timed out" in out, out  # svwar waited 3 s for a final answer
        invites = provider.requests("INVITE")
        # svwar's first probe (a random user) became one outgoing call; nothing more.
        assert len({i.call_id for i in invites}) == 1, [i.uri for i in invites]
        assert not any(i.uri.startswith(("sip:100@", "sip:101@", "sip:102@"))
                       for i in invites)
        provider.sock.sendto(response_to(invites[0], 480, "Temporarily Unavailable"),
                             box.trunk)
        deadline = time.monotonic() + 15
        while int(box.sip_status()["outcomes"].get("unanswered", 0)) == unanswered:
            assert time.monotonic() < deadline, box.sip_status()
            time.sleep(0.1)
    assert box.sip_status()["calls"] == 0


# --- 2. the RFC 4475 torture set from the peers ---------------------------------------------

def _expected_torture() -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = json.loads(
        (TORTURE / "expected.json").read_text())["files"]
    return files


def send_torture(box: SipBox, side: str, data: bytes) -> list[int]:
    """Send one message from the side's peer host (a fresh port), then an OPTIONS keep-alive
    from the same socket: the transport handles a socket's datagrams in order, so once the
    keep-alive's 200 is back, whatever the transport itself answers (400) or drops is done;
    the B2BUA's answers (its own thread) are waited for a moment longer. The statuses of the
    answers to the message, in order of arrival."""
    host, box_addr = (PBX_HOST, box.lan) if side == "lan" else (PROVIDER_HOST, box.trunk)
    sock = udp(host)
    try:
        sync_id = uuid.uuid4().hex
        sock.sendto(data, box_addr)
        sock.sendto(request("OPTIONS", sock, box_addr, call_id=sync_id), box_addr)
        codes: list[int] = []
        synced_at = None
        deadline = time.monotonic() + WAIT
        while True:
            now = time.monotonic()
            if synced_at is not None and (now > synced_at + 0.4 or any(c >= 200 for c in codes)):
                break
            assert now < deadline, f"no 200 to the keep-alive after the message: {codes}"
            sock.settimeout(max(0.01, min(deadline, (synced_at or deadline) + 0.4) - now))
            try:
                answer = sock.recv(70_000)
            except TimeoutError:
                continue
            status, fields = raw_response(answer)
            if fields.get("call-id") == [sync_id]:
                assert status == 200
                synced_at = time.monotonic()
            else:
                codes.append(status)
        return codes
    finally:
        sock.close()


# What the B2BUA answers each message the transport parsed and passed on, from either peer,
# and why (tests/data/sip/rfc4475/README.md has the RFC's expectations). The others are the
# transport's: a stateless 400 when the parser names a fault and the request names what a 400
# echoes, else dropped. []: nothing; the three responses answer nothing the box sent and are
# ignored. ROUTED: an INVITE the box took as a call and routed to the other side (answered 100
# Trying), refused there by the peer's stand-in (486), which the box relays.
ROUTED = [100, 486]
# From the PBX's side a REGISTER is relayed to the provider, whose stand-in refuses it (403);
# unksm2's To has no usable URI, which the relay refuses itself (400). From the trunk: 405.
FROM_PBX: dict[str, list[int]] = {
    "escnull.dat": [403], "dblreq.dat": [403], "regaut01.dat": [403], "cparam01.dat": [403],
    "cparam02.dat": [403], "regescrt.dat": [403], "unksm2.dat": [400],
}
B2BUA_ANSWERS: dict[str, list[int]] = {
    "wsinv.dat": [481],  # a To tag: a request in a dialog the box does not know (12.2.2)
    "intmeth.dat": [501], "esc02.dat": [501],  # unknown methods: 501 with Allow
    # Valid calls (their "a=rtpmap:31 LPC" without a clock rate only declines that video
    # stream; baddate's Date is not used, so not judged): routed.
    "esc01.dat": ROUTED, "longreq.dat": ROUTED, "baddate.dat": ROUTED,
    "sdp01.dat": [406],  # its Accept excludes application/sdp, which the answer would carry
    # REGISTER from the trunk (the box is no registrar) and MESSAGE: 405 with Allow.
    "escnull.dat": [405], "dblreq.dat": [405], "mpart01.dat": [405], "unksm2.dat": [405],
    "regaut01.dat": [405], "cparam01.dat": [405], "cparam02.dat": [405], "regescrt.dat": [405],
    # OPTIONS outside a dialog: the transport's keep-alive 200 (zeromf: an endpoint's answer;
    # badbranch: a stateless answer needs no transaction matching).
    "lwsdisp.dat": [200], "semiuri.dat": [200], "transports.dat": [200], "zeromf.dat": [200],
    "badbranch.dat": [200],
    "badvers.dat": [505], "unkscm.dat": [416], "novelsc.dat": [416], "bext01.dat": [420],
    "invut.dat": [415], "inv2543.dat": ROUTED,
    "unreason.dat": [], "noreason.dat": [], "bcast.dat": [],
}


def test_rfc4475_torture_set_from_both_peers(box: SipBox) -> None:
    """Each of the 50 messages sent to the running box by the office's PBX and by the
    provider: answered as documented, nothing routed but the one well-formed call, the daemon
    up and its status still updated, and an OPTIONS and a call handled right after."""
    expected_files = _expected_torture()
    expected: dict[str, list[int]] = {}
    for name in sorted(expected_files):
        try:
            parse_datagram((TORTURE / name).read_bytes())
        except SipParseError as exc:
            expected[name] = [400] if exc.answer is not None else []
            continue
        expected[name] = B2BUA_ANSWERS[name]
    assert set(B2BUA_ANSWERS) <= set(expected)
    observed: dict[tuple[str, str], list[int]] = {}
    with standing_in(box.provider, answer=486) as provider, \
            standing_in(box.pbx, answer=486) as pbx:
        before = refreshed(box, provider)
        seen = len(provider.requests("INVITE"))
        for name in sorted(expected):
            data = (TORTURE / name).read_bytes()
            for side in ("lan", "trunk"):
                observed[(name, side)] = send_torture(box, side, data)
        time.sleep(0.5)
        forwarded = {"trunk": provider.requests("INVITE")[seen:], "lan": pbx.requests("INVITE")}
        def wanted(name: str, side: str) -> list[int]:
            return FROM_PBX.get(name, expected[name]) if side == "lan" else expected[name]

        wrong = {k: (v, wanted(*k)) for k, v in observed.items() if v != wanted(*k)}
        assert not wrong, "\n".join(f"{n} from {s}: {v} (expected {e})"
                                     for (n, s), (v, e) in sorted(wrong.items()))
        routed = sorted(n for n in expected if expected[n] == ROUTED)
        uris = []
        for name in routed:
            message = parse_datagram((TORTURE / name).read_bytes())
            assert isinstance(message, Request)
            uris.append(message.uri)
        for side, invites in forwarded.items():  # each routed once, in the order sent
            assert [i.uri for i in invites] == uris, (side, invites)
        after = refreshed(box, provider)  # the status is still written: the daemon is fine
        with contextlib.closing(udp(PBX_HOST)) as sock:
            assert options_round_trip(sock, box.lan) == 200
        with contextlib.closing(udp(PROVIDER_HOST)) as sock:
            assert options_round_trip(sock, box.trunk) == 200
    daemon_alive(box)
    t0, t1 = before["transport"], after["transport"]
    stateless_400 = sum(1 for n in expected if expected[n] == [400] and n not in B2BUA_ANSWERS)
    dropped = sum(1 for n in expected if not expected[n] and n not in B2BUA_ANSWERS)
    assert (stateless_400, dropped) == (16, 5)  # as test_sip_torture.py counts them
    assert t1["sent_400"] - t0["sent_400"] == 2 * stateless_400
    assert t1["dropped"]["malformed"] - t0["dropped"]["malformed"] == 2 * dropped
    assert t1["dropped"]["rate"] == t0["dropped"]["rate"]
    busy = after["outcomes"].get("busy", 0) - before["outcomes"].get("busy", 0)
    assert busy == 2 * len(routed) + 1  # the routed ones from both sides, and refreshed()


# --- 3. limits ------------------------------------------------------------------------------

def test_oversize_and_unknown_methods(box: SipBox) -> None:
    """A datagram over 16 KiB is dropped unread, from a peer as from a stranger; a well-formed
    request of an unknown method gets 501 from a peer and nothing from a stranger."""
    with standing_in(box.provider, answer=486) as provider, \
            contextlib.closing(udp(PBX_HOST)) as peer, \
            contextlib.closing(udp(STRANGER)) as stranger:
        before = refreshed(box, provider)
        for sock in (peer, stranger):
            big = request("OPTIONS", sock, box.lan, pad=MAX_DATAGRAM)
            assert MAX_DATAGRAM < len(big) < 17_000 + 1_000
            sock.sendto(big, box.lan)
            sock.sendto(request("FOO", sock, box.lan), box.lan)
        answers = [raw_response(d) for d in receive(peer, 2.0)]
        assert [status for status, _ in answers] == [501], answers
        assert answers[0][1]["cseq"] == ["1 FOO"] and answers[0][1]["allow"]
        assert receive(stranger, 0.5) == []
        after = refreshed(box, provider)
    t0, t1 = before["transport"], after["transport"]
    assert t1["dropped"]["oversize"] - t0["dropped"]["oversize"] == 2
    assert t1["dropped"]["stranger"] - t0["dropped"]["stranger"] == 1


def test_flood_from_a_peer_is_rate_limited(box: SipBox) -> None:
    """5,000 OPTIONS and 5,000 datagrams of garbage from the PBX's host as fast as a socket
    sends them: past the burst the box drops them (counted "rate") without answering, its
    memory does not grow, and once the bucket refilled the PBX gets its OPTIONS answered and
    a call through."""
    pid = box.app.procs["daemon"].pid
    rng = np.random.default_rng(6)
    with standing_in(box.provider, answer=486) as provider, \
            contextlib.closing(udp(PBX_HOST)) as peer:
        before = refreshed(box, provider)
        rss_before = rss_kib(pid)
        flood = [request("OPTIONS", peer, box.lan) for _ in range(5_000)]
        flood += [rng.integers(0, 256, int(rng.integers(20, 1400)), dtype=np.uint8).tobytes()
                  for _ in range(5_000)]
        # 5,000 datagrams/s, 17 times the rate: sent faster, most of them would be shed by the
        # kernel (the box's receive buffer) before the box reads them, which tests nothing.
        start = time.monotonic()
        for i, data in enumerate(flood):
            peer.sendto(data, box.lan)
            if i % 50 == 49:
                time.sleep(max(0.0, start + (i + 1) / FLOOD_RATE - time.monotonic()))
        elapsed = time.monotonic() - start
        answered = receive(peer, 1.0)
        # The bucket refills at 300/s: after ~3.5 s the burst is back; an OPTIONS now works.
        deadline = time.monotonic() + 20
        while options_round_trip(peer, box.lan, timeout=0.5) != 200:
            assert time.monotonic() < deadline, box.daemon_log()
        after = refreshed(box, provider)  # a call from the flooded host goes through
        rss_after = rss_kib(pid)
    daemon_alive(box)
    t0, t1 = before["transport"], after["transport"]
    rate = t1["dropped"]["rate"] - t0["dropped"]["rate"]
    received = t1["received"] - t0["received"]
    answered_200 = t1["sent_options_200"] - t0["sent_options_200"]
    print(f"\nflood: sent {len(flood)} in {elapsed:.2f} s; the box received {received}, "
          f"answered {answered_200} OPTIONS, dropped {rate} over the rate; RSS "
          f"{rss_before} -> {rss_after} KiB")
    assert received > 5_000 and rate > received - BURST - RATE * (elapsed + 5.0), (t0, t1)
    # At most the burst plus what the rate let through while the flood lasted (and the
    # round trips after it); every answer went to the flooding peer.
    assert answered_200 <= BURST + RATE * (elapsed + 1.0) + 30, (t0, t1)
    assert len(answered) <= answered_200
    assert t1["dropped"]["queue_full"] == t0["dropped"]["queue_full"]
    assert after["dropped_events"] == before["dropped_events"]
    assert rss_after - rss_before < 20 * 1024, (rss_before, rss_after)


# --- 4. RTP injected into a call ------------------------------------------------------------

def tone_share(audio: np.ndarray, freq: float = 1000.0, width: float = 5.0) -> float:
    """The share of a signal's power within `width` Hz of `freq`."""
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    hz = np.fft.rfftfreq(len(audio), 1 / 8000)
    total = float(spectrum.sum())
    return float(spectrum[np.abs(hz - freq) <= width].sum()) / total if total else 0.0


def rtp_tone(seq: int, ssrc: int = 0x5EC0_0001) -> bytes:
    """One 20 ms PCMA packet of a loud 1 kHz tone."""
    n = np.arange(seq * 160, (seq + 1) * 160)
    pcm = (24_000 * np.sin(2 * np.pi * 1000 * n / 8000)).astype(np.int16)
    header = bytes([0x80, 8]) + (seq & 0xFFFF).to_bytes(2, "big") + \
        (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    return header + alaw_encode(pcm).tobytes()


def test_rtp_injected_by_a_stranger_is_neither_relayed_nor_recorded(
        box: SipBox, sip_peers: PeerFactory, tmp_path: Path) -> None:
    """During a call (the provider, SIPp, calls the office, baresip: the call of
    test_sip_calls), a stranger sends a loud 1 kHz tone to every media port the box opened for
    it, on both sides: the relay counts the packets as a stranger's, the recording holds the
    provider's speech bit for bit and the office's 440 Hz tone, and no 1 kHz."""
    pid = box.app.procs["daemon"].pid
    hosts = (box.lan[0], box.trunk[0])
    idle_ports = udp_ports_of(pid, hosts)
    before = box.sip_status()["relay"]
    box.mark()
    office = sip_peers.baresip(user="0140000000", host=box.pbx[0], port=box.pbx[1])
    caller = sip_peers.sipp(SCENARIOS / "uac_pcap_bye.xml", remote=box.trunk,
                            host=PROVIDER_HOST, extra=["-s", "0140000000"])
    office.wait_event("CALL_ESTABLISHED", timeout=20)
    deadline = time.monotonic() + 10
    while not (media := {a for a in udp_ports_of(pid, hosts) - idle_ports if a[1] % 2 == 0}):
        assert time.monotonic() < deadline, "no relay port opened"
        time.sleep(0.05)
    assert {host for host, _ in media} == set(hosts), media  # one leg on each side
    time.sleep(1.0)  # the peers' media flows (and latched) first
    injected = 0
    with contextlib.closing(udp(STRANGER)) as stranger:
        start = time.monotonic()
        for seq in range(150):  # 3 s, paced as a real stream
            for port in sorted(media):
                stranger.sendto(rtp_tone(seq), port)
                injected += 1
            time.sleep(max(0.0, start + (seq + 1) * 0.02 - time.monotonic()))
        assert receive(stranger, 0.3) == []
    caller.expect_success(timeout=40)
    office.wait_event("CALL_CLOSED")
    (meta,) = box.new_recordings()
    with standing_in(box.provider, answer=486) as provider:
        after = refreshed(box, provider)["relay"]
    stranger_ignored = after["ignored"]["stranger"] - before["ignored"]["stranger"]
    assert stranger_ignored >= injected, (before, after)
    audio = box.channels(meta["id"], tmp_path)
    r, _ = best_match(pcap_audio()[240:], audio[:, 1])
    assert r > 0.99, f"remote channel vs the speech SIPp sent: r = {r:.3f}"
    office_audio = audio[8000:-8000, 0]
    spectrum = abs(np.fft.rfft(audio[8000:16000, 0]))
    assert abs(int(spectrum.argmax()) - 440) <= 2  # 1 Hz bins: baresip's tone
    shares = (tone_share(office_audio), tone_share(audio[:, 1]),
              tone_share(pcap_audio()))
    print(f"\n1 kHz share: office {shares[0]:.4f}, remote {shares[1]:.4f}, "
          f"SIPp's speech itself {shares[2]:.4f}; stranger packets ignored {stranger_ignored}")
    assert shares[0] < 0.01
    assert shares[1] < 2 * shares[2] + 0.01
