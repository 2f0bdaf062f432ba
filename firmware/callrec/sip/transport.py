"""SIP over UDP: the box's sockets, and what happens to a datagram before any call logic sees it.

One bound socket per side (`lan`, `trunk`), or one socket for both when they share host:port;
one receive thread with a selector over them. Each datagram goes through, in this order:

1. **Size.** Larger than `Limits.max_datagram` (default 16 KiB): dropped unread. RFC 3261
   18.1.1 moves requests larger than the path MTU minus 200 bytes (about 1,300) to TCP; UDP
   INVITEs with long SDP reach a few KB through IP fragmentation. The parser itself accepts up
   to 64 KiB; this bound keeps a flood of maximum-size datagrams from costing 4x the parse time.
2. **Peers only.** A datagram whose source is not a configured peer of the socket's side is
   dropped unparsed and unanswered: not even a 403. The box serves its office's PBX or phones
   and its trunk, nobody else. An answer to a stranger (403, 404, even a 400 to garbage) tells
   a scanner such as svmap or svwar that a SIP element listens here and what it is, and any
   answer can be reflected at a spoofed source. Only counted, never logged per datagram (a
   scan would fill the SD card).
3. **Per-source rate limit** (token bucket per peer address, `Limits.rate` datagrams/s with a
   burst of `Limits.burst`): beyond it, datagrams are dropped and counted, never answered: a
   looping PBX or a compromised phone cannot make the box parse or reply without bound. The
   table holds only peers' addresses (strangers never reach it), so spoofed sources cannot
   grow it.
4. **Parse** (`message.parse_datagram`). A `SipParseError` with an `answer` gets a stateless
   400 (RFC 3261 8.2.6.2, 16.3: the Vias, From, To with a tag added, Call-ID and CSeq as
   received), sent to the datagram's source: only peers get here, and answering the source,
   not the Via's sent-by, is what RFC 3581 asks and never reflects a reply at a third party.
   Errors without an answer (malformed responses, requests missing what a 400 echoes) are
   dropped.
5. **OPTIONS** from a peer, outside a dialog: answered 200 here. Trunks and PBXes send them to
   their next hop as keep-alives, and the box is that hop whatever the B2BUA is doing; they
   are not forwarded (the trunk has no business probing the office's phones). An OPTIONS the
   box cannot answer 200 (another SIP version, a Require, a tel: URI) goes to the B2BUA.
6. Everything else (requests of any method, responses) is handed to `on_message` as a
   `Received`. That callback runs on the receive thread and must only enqueue (like the
   board's callbacks); the B2BUA answers unknown methods (501) and the rest on its own thread.

Counters (`Transport.counters()`) feed the status page: received, parsed, delivered, 400s and
200s (OPTIONS) sent, and drops by reason. Nothing here logs a message's content: From, To and
the Request-URI carry phone numbers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from callrec.sip.message import (
    BadRequest,
    Message,
    Request,
    Response,
    SipParseError,
    parse_datagram,
)

__all__ = [
    "DROP_REASONS",
    "Limits",
    "Peer",
    "RateLimiter",
    "Received",
    "Transport",
    "bad_request_response",
    "options_response",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]

# Why a datagram was dropped (keys of counters()["dropped"]).
DROP_REASONS = (
    "oversize",  # larger than Limits.max_datagram
    "stranger",  # source is not a configured peer of this socket's side
    "rate",  # over the source's rate limit
    "malformed",  # SipParseError without an answer (responses, requests missing Via...)
    "queue_full",  # on_message raised queue.Full: the consumer is behind
)

# What the B2BUA handles (it answers INFO, UPDATE, REFER in a dialog 501, REGISTER 405).
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
SERVER = "callrec"
# A datagram read per selector wake and socket: bounded, so one busy socket cannot starve the
# other side's.
_READS_PER_WAKE = 64


@dataclass(frozen=True)
class Limits:
    max_datagram: int = 16_384
    # A 30-line PBX at its busiest sends tens of datagrams a second; 100 calls set up within a
    # few seconds is ~1,000 datagrams: the burst absorbs that, the rate bounds a loop.
    rate: float = 300.0
    burst: float = 1_000.0


@dataclass(frozen=True)
class Peer:
    """A configured peer: `sip.pbx_peer` (side "lan") or `sip.trunk_peer` (side "trunk").
    `port` None accepts any source port from that host (phones on the LAN, a PBX that sends
    from an ephemeral port)."""

    side: str
    host: str
    port: int | None = None


@dataclass(frozen=True)
class Received:
    side: str  # the peer's side: "lan" or "trunk"
    source: Address  # where it came from, where a stateless answer goes
    message: Request | Response
    at: float  # time.monotonic() when read


class RateLimiter:
    """Token buckets keyed by source address. Not thread-safe: the receive thread owns it."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: str, now: float) -> bool:
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True


_TAG_RE = re.compile(r";\s*tag\s*=", re.IGNORECASE)
_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f]")


def _to_with_tag(to: str, seed: str) -> str:
    if _TAG_RE.search(to):
        return to
    # Same tag for a retransmission of the same request (RFC 3261 8.2.6.2), without state.
    tag = hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{to};tag={tag}"


def bad_request_response(answer: BadRequest, reason: str) -> bytes:
    """A stateless `400 <reason>` echoing what the request carried (RFC 3261 8.2.6.2)."""
    phrase = _UNSAFE_RE.sub(" ", reason).strip() or "Bad Request"
    lines = [f"SIP/2.0 400 {phrase}"]
    lines += [f"Via: {v}" for v in answer.via]
    seed = "\n".join((*answer.via, answer.from_, answer.call_id, answer.cseq))
    lines += [
        f"From: {answer.from_}",
        f"To: {_to_with_tag(answer.to, seed)}",
        f"Call-ID: {answer.call_id}",
        f"CSeq: {answer.cseq}",
        f"Server: {SERVER}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def options_response(request: Request) -> bytes:
    """200 to an OPTIONS keep-alive: the request's Vias, From, To (tagged), Call-ID, CSeq."""
    hd = request.headers
    answer = BadRequest(tuple(hd.get_all("via")), hd.get("from") or "", hd.get("to") or "",
                        hd.get("call-id") or "", hd.get("cseq") or "")
    seed = "\n".join((*answer.via, answer.from_, answer.call_id, answer.cseq))
    lines = ["SIP/2.0 200 OK"]
    lines += [f"Via: {v}" for v in answer.via]
    lines += [
        f"From: {answer.from_}",
        f"To: {_to_with_tag(answer.to, seed)}",
        f"Call-ID: {answer.call_id}",
        f"CSeq: {answer.cseq}",
        f"Allow: {ALLOW}",
        "Accept: application/sdp",
        f"Server: {SERVER}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _is_keepalive(request: Request) -> bool:
    """An OPTIONS the box answers itself: outside a dialog, SIP/2.0, a sip(s): Request-URI and
    no Require or Proxy-Require. Anything else (RFC 4475's badvers, bext01, unkscm) goes to the
    B2BUA, which answers 505, 420 or 416 as a UAS must."""
    hd = request.headers
    return (request.method == "OPTIONS" and request.version == "SIP/2.0"
            and request.uri[:4].lower() in ("sip:", "sips")
            and not hd.get_all("require") and not hd.get_all("proxy-require")
            and request.to.tag is None)


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, Address]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _canonical_ip(host: str) -> str:
    """One spelling per address, so "::ffff:10.0.0.1", "10.0.0.1" and a name resolved at start
    compare equal."""
    addr = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


class Transport:
    """The box's UDP sockets and their receive thread (see the module's docstring).

    `binds` maps each side to the host:port it listens on; two sides with the same host:port
    share a socket. Port 0 binds an ephemeral port (tests): `address(side)` says which.
    Peers' host names are resolved once, at construction.
    """

    def __init__(
        self,
        binds: Mapping[str, Address],
        peers: Iterable[Peer],
        on_message: Callable[[Received], None],
        limits: Limits | None = None,
    ) -> None:
        if not binds:
            raise ValueError("no side to listen on")
        self.limits = limits or Limits()
        self._on_message = on_message
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the selector with it
        self._sockets: dict[Address, socket.socket] = {}
        self._socket_of: dict[str, socket.socket] = {}
        self._sides_of: dict[int, set[str]] = {}  # fileno -> sides it serves
        for side, (host, port) in binds.items():
            family, key = _resolve(host, port)
            # Sides on the same host:port share its socket; port 0 is a new one each time.
            sock = self._sockets.get(key) if port else None
            if sock is None:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.bind(key)
                except OSError:
                    sock.close()
                    self.close()
                    raise
                sock.setblocking(False)
                self._sockets[key if port else (side, 0)] = sock
            self._socket_of[side] = sock
            self._sides_of.setdefault(sock.fileno(), set()).add(side)
        self._exact: dict[Address, str] = {}
        self._any_port: dict[str, str] = {}
        for peer in peers:
            if peer.side not in binds:
                raise ValueError(f"peer on side {peer.side!r}, which has no socket")
            _, (ip, port) = _resolve(peer.host, peer.port or 0)
            if peer.port is None:
                self._any_port[_canonical_ip(ip)] = peer.side
            else:
                self._exact[(_canonical_ip(ip), port)] = peer.side
        self._limiter = RateLimiter(self.limits.rate, self.limits.burst)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {
            "received": 0, "parsed": 0, "delivered": 0, "sent_400": 0, "sent_options_200": 0,
            "sent": 0, "send_errors": 0,
        }
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._limited: set[str] = set()  # sources currently over their limit (log once)

    # --- public API ------------------------------------------------------------------------

    def address(self, side: str) -> Address:
        """The host:port a side listens on (after binding port 0, the real port)."""
        name = self._socket_of[side].getsockname()
        return str(name[0]), int(name[1])

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("transport already started")
        self._thread = threading.Thread(target=self._run, name="sip-transport", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the receive thread and close the sockets."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("sip-transport thread did not stop")
        self.close()

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Transport:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(self, side: str, message: Message | bytes, dest: Address) -> bool:
        """Send from a side's socket (any thread: sendto on a datagram socket is atomic).
        False, counted, on an OS error (no route, buffer full): UDP gives no other signal, and
        retransmission is the transaction layer's business."""
        data = message if isinstance(message, bytes) else message.serialize()
        try:
            self._socket_of[side].sendto(data, dest)
        except OSError as exc:
            self._count("send_errors")
            log.warning("sip: send on %s side failed: %s", side, exc.strerror or exc)
            return False
        self._count("sent")
        return True

    def counters(self) -> dict[str, object]:
        """A snapshot for the status page."""
        with self._lock:
            out: dict[str, object] = dict(self._counts)
            out["dropped"] = dict(self._dropped)
        return out

    # --- the receive thread ----------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _drop(self, reason: str) -> None:
        with self._lock:
            self._dropped[reason] += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            for sock in {id(s): s for s in self._socket_of.values()}.values():
                sel.register(sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        continue
                    if isinstance(key.fileobj, socket.socket):
                        self._read(key.fileobj)

    def _read(self, sock: socket.socket) -> None:
        sides = self._sides_of[sock.fileno()]
        for _ in range(_READS_PER_WAKE):
            try:
                # One byte more than the limit: a datagram that fills it is too large (the
                # kernel truncates silently otherwise).
                data, source = sock.recvfrom(self.limits.max_datagram + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket: keep reading
                log.debug("sip: recvfrom: %s", exc)
                continue
            try:
                self._handle(sock, sides, data, (str(source[0]), int(source[1])))
            except Exception:  # one datagram never stops the loop
                log.exception("sip: unexpected error on a datagram (dropped)")

    def _peer_side(self, sides: set[str], source: Address) -> str | None:
        try:
            ip = _canonical_ip(source[0])
        except ValueError:
            return None
        side = self._exact.get((ip, source[1])) or self._any_port.get(ip)
        return side if side in sides else None

    def _handle(self, sock: socket.socket, sides: set[str], data: bytes, source: Address) -> None:
        now = time.monotonic()
        self._count("received")
        if len(data) > self.limits.max_datagram:
            self._drop("oversize")
            return
        side = self._peer_side(sides, source)
        if side is None:
            self._drop("stranger")
            return
        key = f"{source[0]}"
        if not self._limiter.allow(key, now):
            self._drop("rate")
            if key not in self._limited:
                self._limited.add(key)
                log.warning("sip: %s peer %s over %g datagrams/s: dropping", side, key,
                            self.limits.rate)
            return
        self._limited.discard(key)
        if data.strip(b"\r\n") == b"":
            # RFC 5626 keep-alive (CRLF or double CRLF): not a message, nothing to count.
            return
        try:
            message = parse_datagram(data)
        except SipParseError as exc:
            if exc.answer is None:
                self._drop("malformed")
                return
            self._reply(sock, bad_request_response(exc.answer, exc.reason), source, "sent_400")
            return
        self._count("parsed")
        if isinstance(message, Request) and _is_keepalive(message):
            self._reply(sock, options_response(message), source, "sent_options_200")
            return
        try:
            self._on_message(Received(side, source, message, now))
        except queue.Full:
            self._drop("queue_full")
            return
        self._count("delivered")  # after: a full queue is not a delivery

    def _reply(self, sock: socket.socket, data: bytes, dest: Address, counter: str) -> None:
        # Counted before sending, so that whoever receives the answer already sees it counted;
        # a failed send is counted in send_errors as well.
        self._count(counter)
        try:
            sock.sendto(data, dest)
        except OSError as exc:
            self._count("send_errors")
            log.debug("sip: reply failed: %s", exc)
