"""Real SIP peers for the tests: SIPp (Debian's sip-tester) and baresip (baresip-core), started
on loopback with free ports, each in a folder of its own, stopped by pid.

`Sipp` runs a built-in scenario ("uas", "uac") or a scenario file; `Baresip` runs a headless
user agent (a sine or a WAV file as its microphone, the `aubridge` null player as its speaker,
no sound card) and is driven through its `ctrl_tcp` module (JSON in netstrings): dial, accept,
hang up, read its events. `SipClient` is a tiny UA on `callrec.sip.transport` for the harness's
own checks. Everything fails with what went wrong and the tail of the tool's log: a missing tool
fails the test (need_tool), never skips it.

Why loopback and pids: these machines have no other network to spare, and PID 1 reaps nothing
promptly (../shared/recipes/README.md), so each process is waited for by whoever started it.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callrec.sip.message import Request, Response, parse_datagram
from callrec.sip.transport import Peer, Received, Transport
from support import need_tool

HOST = "127.0.0.1"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")
SIPP_PCAPS = Path("/usr/share/sip-tester")  # G.711 and RFC 2833 pcaps for play_pcap_audio
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class PeerError(AssertionError):
    """A peer did not start, answer or stop: the message carries its log's tail."""


def free_port(kind: int = socket.SOCK_DGRAM, host: str = HOST) -> int:
    """A port free right now (the tool binds it a moment later: starts retry on a clash)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def udp_bound(port: int, host: str = HOST) -> bool:
    """Whether some socket is bound to host:port/udp, from /proc (binding it ourselves to find
    out could take the port from the tool that is about to bind it)."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{port:04X}"
    any_ = f"00000000:{port:04X}"
    text = Path("/proc/net/udp").read_text()
    return any(line.split()[1] in (want, any_) for line in text.splitlines()[1:])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "output.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as out:
            out.write(("$ " + " ".join(argv) + "\n").encode())
            out.flush()
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)

    def fail(self, what: str) -> PeerError:
        return PeerError(f"{self.name}: {what}\n--- {self.log}:\n{_tail(self.log)}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self.fail(f"still running after {timeout} s") from None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; always reaped. The exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def _wait_until(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if not self.running:
                raise self.fail(f"exited (status {self.proc.returncode if self.proc else '?'})"
                                f" before {what}")
            if time.monotonic() > deadline:
                raise self.fail(f"not {what} after {START_TIMEOUT} s")
            time.sleep(0.02)


class Sipp(_Process):
    """One SIPp process. Exit status (SIPp's own): 0 every call succeeded, 1 some failed,
    97 stopped by a signal or the global timeout, 99 ended without a call, 255 fatal error."""

    name = "sipp"

    def __init__(self, workdir: Path, scenario: str | Path, remote: tuple[str, int] | None = None,
                 calls: int = 1, timeout_s: float = 30.0, extra: list[str] | None = None,
                 host: str = HOST, port: int = 0) -> None:
        """`host`, `port`: where it listens (port 0: a free one; a fixed one is a peer the
        box was configured with)."""
        super().__init__(workdir)
        need_tool("sipp")
        self.scenario = scenario
        self.remote = remote
        self.calls = calls
        self.timeout_s = timeout_s
        self.extra = list(extra or [])
        self.host = host
        self.fixed_port = port
        self.port = 0
        self.media_port = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def argv(self) -> list[str]:
        scen = ["-sn", self.scenario] if self.scenario in ("uas", "uac") else [
            "-sf", str(self.scenario)]
        argv = ["sipp", *scen, "-i", self.host, "-p", str(self.port),
                "-mp", str(self.media_port),
                "-m", str(self.calls), "-nostdin", "-aa",
                "-timeout", f"{self.timeout_s}s", "-timeout_error",
                "-trace_err", "-error_file", str(self.workdir / "errors.log"),
                "-trace_msg", "-message_file", str(self.workdir / "messages.log"),
                *self.extra]
        if self.remote is not None:
            argv.append(f"{self.remote[0]}:{self.remote[1]}")
        return argv

    def start(self) -> Sipp:
        for _attempt in range(3):  # a port taken between free_port() and SIPp's bind
            self.port = self.fixed_port or free_port(host=self.host)
            self.media_port = free_port(host=self.host)
            self._spawn(self.argv())
            try:
                self._wait_until(lambda: udp_bound(self.port, self.host) or not self.running,
                                 f"listening on udp {self.port}")
            except PeerError:
                self.stop()
                raise
            if self.running:
                return self
            if "in use" not in _tail(self.log):
                break
        raise self.fail(f"exited at start (status {self.proc.returncode if self.proc else '?'})")

    def messages(self) -> str:
        """SIPp's trace of every message it sent and received."""
        return _tail(self.workdir / "messages.log", 100_000)

    def errors(self) -> str:
        return _tail(self.workdir / "errors.log", 200)

    def expect_success(self, timeout: float = 30.0) -> None:
        rc = self.wait(timeout)
        if rc != 0:
            raise self.fail(f"exit status {rc} (0 = every call succeeded)\n--- errors:\n"
                            f"{self.errors()}")


BARESIP_CONFIG = """\
# Written by tests/sip_peers.py: loopback only, no sound card, driven through ctrl_tcp.
poll_method epoll
sip_listen {host}:{sip_port}
# Bound to loopback, so SDP offers 127.0.0.1 (the default interface would be eth0).
net_interface {host}
call_local_timeout 120
call_max_calls 4
rtp_ports {rtp_low}-{rtp_high}
audio_player aubridge,nil
audio_alert aubridge,nil
audio_source {source}
# ausine makes 48 kHz stereo only; baresip resamples and downmixes to the codec's 8 kHz mono.
ausrc_srate 48000
ausrc_channels 2
auplay_srate 48000
module_path {modules}
module g711.so
module ausine.so
module aufile.so
module aubridge.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen {host}:{ctrl_port}
{dump}"""


class Baresip(_Process):
    """A headless baresip. `source`: "ausine,440" (a tone) or "aufile,<wav>" (speech);
    `answer`: "auto" answers incoming calls, "manual" waits for `command("accept")`."""

    name = "baresip"

    def __init__(self, workdir: Path, user: str = "callrec-test", source: str = "ausine,440",
                 answer: str = "auto", host: str = HOST, port: int = 0,
                 auth_pass: str = "", dump_audio: bool = False, registrar: str = "",
                 regint: int = 60) -> None:
        """`dump_audio`: baresip's sndfile module writes what it sends and what it hears in
        each call to `workdir`/dump-*-enc.wav and dump-*-dec.wav (`heard()`). `registrar`
        ("host:port"): the account's domain, where it REGISTERs every `regint` seconds
        (events REGISTER_OK / REGISTER_FAIL); "" registers nowhere."""
        self.registrar = registrar
        self.regint = regint
        super().__init__(workdir)
        need_tool("baresip")
        self.dump_audio = dump_audio
        self.host = host
        self.fixed_port = port
        self.auth_pass = auth_pass  # answers digest challenges itself when set
        if not (BARESIP_MODULES / "ctrl_tcp.so").is_file():
            pytest.fail(f"baresip modules not in {BARESIP_MODULES}: install baresip-core "
                        "(./install.sh --dev --with-tests)")
        self.user = user
        self.source = source
        self.answer = answer
        self.port = 0
        self.ctrl_port = 0
        self._ctrl: socket.socket | None = None
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.host}:{self.port}"

    def _write_config(self) -> None:
        rtp = free_port(host=self.host)
        (self.workdir / "config").write_text(BARESIP_CONFIG.format(
            host=self.host, sip_port=self.port, ctrl_port=self.ctrl_port, source=self.source,
            modules=BARESIP_MODULES, rtp_low=rtp - rtp % 2, rtp_high=rtp - rtp % 2 + 9,
            dump=f"module sndfile.so\nsnd_path {self.workdir}\n" if self.dump_audio else ""))
        # regint=0: register nowhere; the account only names the UA and its answer mode.
        # With a registrar, the account's domain is the registrar (its REGISTER goes there).
        auth = f";auth_pass={self.auth_pass}" if self.auth_pass else ""
        domain, regint = (self.registrar, self.regint) if self.registrar else (self.host, 0)
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@{domain}>;regint={regint};answermode={self.answer}{auth}\n")

    def start(self) -> Baresip:
        for _attempt in range(3):
            self.port = self.fixed_port or free_port(host=self.host)
            self.ctrl_port = free_port(socket.SOCK_STREAM)
            self._write_config()
            self._spawn(["baresip", "-f", str(self.workdir)])
            try:
                self._wait_until(lambda: self._connect() or not self.running,
                                 f"answering on ctrl_tcp {self.ctrl_port}")
            except PeerError:
                self.stop()
                raise
            if self.running and udp_bound(self.port, self.host):
                return self
            self.stop()
            if "in use" not in _tail(self.log):
                break
        raise self.fail("did not start")

    def heard(self) -> list[Path]:
        """The audio it decoded in each call so far (with dump_audio), oldest first."""
        return sorted(self.workdir.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)

    def _connect(self) -> bool:
        try:
            self._ctrl = socket.create_connection((self.host, self.ctrl_port), timeout=1.0)
        except OSError:
            return False
        return True

    def _read_netstring(self, deadline: float, what: str = "an answer") -> dict[str, Any]:
        assert self._ctrl is not None
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if colon and len(rest) > int(head or b"0"):
                n = int(head)
                body, self._buffer = rest[:n], rest[n + 1 :]  # drop the ','
                value: dict[str, Any] = json.loads(body)
                return value
            self._ctrl.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self._ctrl.recv(65536)
            except TimeoutError:
                raise self.fail(f"ctrl_tcp: no {what} in time; events so far: "
                                f"{[e.get('type') for e in self.events]}") from None
            if not chunk:
                raise self.fail("ctrl_tcp: connection closed")
            self._buffer += chunk

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a menu command ("dial", "accept", "hangup", "reginfo"...): its response;
        events read meanwhile are kept in `events`."""
        assert self._ctrl is not None, "not started"
        token = uuid.uuid4().hex[:8]
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._ctrl.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_netstring(deadline)
            if msg.get("response") and msg.get("token") == token:
                if not msg.get("ok"):
                    raise self.fail(f"command {command} failed: {msg}")
                return msg
            self.events.append(msg)

    def wait_event(self, type_: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first event of that type ("CALL_ESTABLISHED", "CALL_CLOSED"...), seen or to come."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("event") and event.get("type") == type_:
                    self.events.remove(event)
                    return event
            msg = self._read_netstring(deadline, f"event {type_}")
            self.events.append(msg)

    def stop(self) -> int | None:
        if self._ctrl is not None:
            try:
                self._ctrl.close()
            finally:
                self._ctrl = None
        return super().stop()


class SipClient:
    """A tiny UA on the box's own transport: sends requests to one peer, collects what comes
    back in a queue. Enough to check what a peer answers; not a transaction layer."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.transport = Transport({"trunk": (HOST, 0)}, [Peer("trunk", peer[0], peer[1])],
                                   self.inbox.put_nowait)
        self.address = self.transport.address("trunk")
        self.tag = uuid.uuid4().hex[:10]
        self.transport.start()

    def close(self) -> None:
        self.transport.stop()

    def request(self, method: str, uri: str, call_id: str, cseq: int, to: str,
                extra: list[str] | None = None, body: bytes = b"") -> Request:
        host, port = self.address
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport",
            "Max-Forwards: 70",
            f"From: <sip:callrec@{host}:{port}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:callrec@{host}:{port}>",
            *(extra or []),
            f"Content-Length: {len(body)}",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        request = parse_datagram(data)  # what we send must be what we accept
        assert isinstance(request, Request)
        assert self.transport.send("trunk", request, self.peer)
        return request

    def response(self, call_id: str, method: str, final: bool = True,
                 timeout: float = 5.0) -> Response:
        """The next (final, by default) response to that Call-ID and method."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise PeerError(f"no {'final ' if final else ''}response to {method} "
                                f"from {self.peer} in {timeout} s") from None
            m = got.message
            if isinstance(m, Response) and m.call_id == call_id and m.cseq.method == method \
                    and (m.status >= 200 or not final):
                return m


def sdp_offer(host: str, port: int) -> bytes:
    return (f"v=0\r\no=callrec 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=sendrecv\r\n").encode()


@pytest.fixture
def sip_peers(tmp_path: Path) -> Iterator[PeerFactory]:
    """Start SIPp and baresip processes; every one is stopped (and reaped) at the end."""
    factory = PeerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


class PeerFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[_Process | SipClient] = []

    def _dir(self, name: str) -> Path:
        return self.base / f"{len(self.started):02d}-{name}"

    def sipp(self, scenario: str | Path, remote: tuple[str, int] | None = None,
             **kw: Any) -> Sipp:
        s = Sipp(self._dir(f"sipp-{Path(str(scenario)).stem}"), scenario, remote, **kw)
        self.started.append(s)
        return s.start()

    def baresip(self, **kw: Any) -> Baresip:
        b = Baresip(self._dir("baresip"), **kw)
        self.started.append(b)
        return b.start()

    def client(self, peer: tuple[str, int]) -> SipClient:
        c = SipClient(peer)
        self.started.append(c)
        return c

    def stop_all(self) -> None:
        for p in reversed(self.started):
            if isinstance(p, SipClient):
                p.close()
            else:
                p.stop()


__all__ = ["SIPP_PCAPS", "Baresip", "PeerError", "PeerFactory", "SipClient", "Sipp",
           "free_port", "sdp_offer", "sip_peers", "udp_bound"]
