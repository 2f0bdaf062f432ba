"""The RTP relay: the box's media anchor for SIP calls (the I/O under `rtp.RtpReceiver`).

Per call, one UDP socket per leg (`lan` facing the PBX or phones, `trunk` facing the
provider), bound on the even port the B2BUA took from `rtp_ports` (`RelayLeg.local_port`).
What a leg's peer sends is forwarded, unchanged, out of the *other* leg's socket to the other
peer (symmetric RTP, RFC 4961: each socket both receives from and sends to its peer, which is
what peers behind NAT and "comedia" trunks expect).

Threads: one selector thread for every call's sockets. A packet costs a recvfrom, a dict
lookup, a sendto and (when recording) `RtpReceiver.feed` after the sendto, so forwarding never
waits for the decode; `bench/sip_relay.py` measures it (100 calls: well under the 2 ms p99
goal). More threads would not help: the GIL makes one process one core for Python work.

RTCP: port + 1 of each leg is bound and drained (read, counted, dropped), not relayed.
`sdp.anchor_media` removes a=rtcp, so peers send RTCP to port + 1; bound, it does not make the
kernel answer ICMP port-unreachable (which some stacks take as "media path dead"). Relaying it
would be wrong while the box injects the prompt (receiver reports about SSRCs the far end
never sent) and the recording does not need it: the receiver's own loss and jitter figures
are the box's view of each direction.

Latching: a leg's remote address is what its peer's SDP said. The first RTP packet from that
address's host, or from a configured peer host of that side (a PBX whose SDP names a phone
behind it, a NAT in front of the trunk), latches the remote to its actual source (address and
port) once; after that only that source is accepted. Everything else is ignored and counted
(`stranger`): never forwarded, never recorded, never latched, so an RTP injection or a scan
cannot redirect or feed a call. An update (re-INVITE) with a new address unlatches.

Recording: `start_recording(call)` makes one `RtpReceiver` per direction sharing one epoch;
their PCM goes to `on_audio(call, direction, pcm_bytes, start_sample)` (direction = the side
that sent it; start_sample on the call's timeline, both directions aligned). The relay does
not hold audio: the writer behind `on_audio` holds it until CommitRecording, as the analog
`Recorder.begin` holds capture frames during the prompt. Every 100 ms the loop calls
`advance`, so a silent side (hold) still produces silence in step with the other.

Events (`on_event`, called on the relay thread: it must only enqueue): `KeyPressed` for each
RFC 4733 key, `MediaTimeout` when a leg's peer, expected to send (not on hold, not recvonly or
inactive), sent nothing for `media_timeout_s` (repeated while it stays silent: the B2BUA
ignores it before the answer), `AnnouncementPlayed` (the proof: samples sent per leg) followed
by `AnnouncementFinished` when a prompt ends.

Announcement: `play(call, legs, pcm)` sends the prompt as RTP to each chosen leg's peer in its
negotiated codec and payload type: its own SSRC, sequence and timestamps (random starts, RFC
3550), marker bit on the first packet, 160 samples every 20 ms on the monotonic clock (the
schedule is absolute, so a late wake-up does not accumulate). While it plays, what the other
party sends is not forwarded to those legs: as on the analog line, where the announcement
relay disconnects the office side while the prompt plays, the parties hear the prompt, not
each other talking over it. Their audio is still recorded (held), and keys still decoded.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from callrec import events as ev
from callrec.dsp.g711 import alaw_encode, ulaw_encode
from callrec.sip.b2bua import AnnouncementFinished, KeyPressed, MediaTimeout, RelayLeg, Side
from callrec.sip.rtp import MAX_RTP_BYTES, Audio, Event, RtpReceiver, build_rtp
from callrec.sip.telephone_event import TelephoneEventDecoder, TelephoneEventError

__all__ = ["IGNORE_REASONS", "AnnouncementPlayed", "AudioSink", "MediaRelay"]

log = logging.getLogger(__name__)

Addr = tuple[str, int]
AudioSink = Callable[[str, str, bytes, int], None]  # (call, direction, pcm16 bytes, start)
EventSink = Callable[[ev.Event], None]

PTIME_SAMPLES = 160  # 20 ms at 8 kHz: what the prompt is sent in
PTIME_S = 0.02
TICK_S = 0.1  # recorder advance and media-timeout check period
_RECV_BUF = MAX_RTP_BYTES + 1  # one more byte tells an oversize datagram
_SIDES: tuple[Side, Side] = ("lan", "trunk")
_OTHER: dict[str, Side] = {"lan": "trunk", "trunk": "lan"}
_ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}

# Why a datagram was not forwarded (keys of counters()["ignored"]).
IGNORE_REASONS = (
    "stranger",  # not from the leg's peer (nor, before latching, its host)
    "oversize",  # larger than any RTP packet of a voice call
    "not_rtp",  # not RTP version 2
    "no_destination",  # the other leg's remote is not known yet (or on RFC 2543 hold)
    "announcement",  # the destination leg is hearing the prompt
    "send_error",  # sendto failed (network down, buffer full)
)


@dataclass(frozen=True)
class AnnouncementPlayed(ev.Event):
    """Proof of playback for the sidecar: samples of the prompt sent to each leg's peer."""

    call: str
    samples: dict[str, int]
    packets: dict[str, int]
    prompt_samples: int


@dataclass
class _LegState:
    side: Side
    sock: socket.socket
    rtcp: socket.socket | None
    spec: RelayLeg
    hosts: frozenset[str]  # sources accepted before latching
    remote: Addr | None = None
    latched: bool = False
    last_rx: float = 0.0
    keys: TelephoneEventDecoder = field(default_factory=TelephoneEventDecoder)


@dataclass
class _Prompt:
    legs: tuple[Side, ...]
    frames: dict[Side, list[bytes]]  # per leg: G.711 payloads of 160 bytes
    pt: dict[str, int]
    ssrc: int
    seq: int
    ts: int
    start: float
    index: int = 0
    samples: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    packets: dict[str, int] = field(default_factory=dict)


@dataclass
class _Call:
    id: str
    legs: dict[str, _LegState]
    receivers: dict[str, RtpReceiver] | None = None
    prompt: _Prompt | None = None


class MediaRelay:
    """`hosts`: per side, the host IPs whose packets may latch a leg besides the SDP's own
    (the configured PBX and trunk peers). `port_range`: where legs may bind (the B2BUA's
    `rtp_ports`), checked so a bad action cannot bind anywhere else."""

    def __init__(self, bind: dict[str, str], on_event: EventSink, on_audio: AudioSink | None = None,
                 hosts: dict[str, Iterable[str]] | None = None,
                 port_range: tuple[int, int] = (20000, 20999), media_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bind = bind
        self.on_event = on_event
        self.on_audio = on_audio
        self.hosts = {s: frozenset((hosts or {}).get(s, ())) for s in _SIDES}
        self.port_range = port_range
        self.media_timeout_s = media_timeout_s
        self.clock = clock
        self._calls: dict[str, _Call] = {}
        # Per socket fd: (call, leg, is_rtcp); looked up per packet, so a flat dict.
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buf = bytearray(_RECV_BUF)
        self._view = memoryview(self._buf)
        self.forwarded = 0
        self.forwarded_bytes = 0
        self.rtcp_drained = 0
        self.prompt_packets = 0
        self.ignored = dict.fromkeys(IGNORE_REASONS, 0)

    # -- lifecycle --

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sip-relay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop every call and the thread."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for cid in list(self._calls):
            self.stop_call(cid)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the B2BUA's actions (any thread) --

    def start_call(self, call: str, lan: RelayLeg, trunk: RelayLeg) -> None:
        """StartRelay: bind both legs (OSError if a port is taken: the call cannot be
        anchored, and the caller ends it)."""
        legs: dict[str, _LegState] = {}
        try:
            for spec in (lan, trunk):
                legs[spec.side] = self._open_leg(spec)
        except OSError:
            for leg in legs.values():
                self._close_leg(leg)
            raise
        now = self.clock()
        with self._lock:
            if call in self._calls:
                for leg in legs.values():
                    self._close_leg(leg)
                raise ValueError(f"call {call} already relayed")
            c = _Call(call, legs)
            self._calls[call] = c
            for leg in legs.values():
                leg.last_rx = now
                self._sel.register(leg.sock, selectors.EVENT_READ, (c, leg, False))
                if leg.rtcp is not None:
                    self._sel.register(leg.rtcp, selectors.EVENT_READ, (c, leg, True))
        self._wake()

    def update_call(self, call: str, lan: RelayLeg, trunk: RelayLeg) -> None:
        """UpdateRelay: a re-INVITE or the answer changed addresses, codecs or hold."""
        now = self.clock()
        with self._lock:
            c = self._calls.get(call)
            if c is None:
                return
            for spec in (lan, trunk):
                leg = c.legs[spec.side]
                if _sdp_addr(spec.remote) != _sdp_addr(leg.spec.remote):
                    leg.remote, leg.latched = _sdp_addr(spec.remote), False
                elif not leg.latched:
                    leg.remote = _sdp_addr(spec.remote)
                leg.hosts = self._hosts_for(spec)
                leg.last_rx = now  # new media terms (the answer, a resume): count from here
                leg.spec = spec
                if c.receivers is not None:
                    c.receivers[spec.side].set_payload_types(dict(spec.codecs),
                                                             spec.telephone_event_pt)

    def stop_call(self, call: str) -> None:
        """StopRelay: close the call's sockets (a playing prompt is dropped, unreported)."""
        with self._lock:
            c = self._calls.pop(call, None)
            if c is None:
                return
            for leg in c.legs.values():
                for s in (leg.sock, leg.rtcp):
                    if s is not None:
                        with contextlib.suppress(KeyError, ValueError):
                            self._sel.unregister(s)
                self._close_leg(leg)

    def start_recording(self, call: str) -> None:
        """StartRecording: decode both directions from now, on one timeline."""
        epoch = self.clock()
        with self._lock:
            c = self._calls.get(call)
            if c is None or c.receivers is not None:
                return
            c.receivers = {s: RtpReceiver(dict(leg.spec.codecs), leg.spec.telephone_event_pt,
                                          epoch) for s, leg in c.legs.items()}

    def stop_recording(self, call: str) -> None:
        """StopRecording / DiscardRecording: flush both directions to the same end sample."""
        end = self.clock()
        with self._lock:
            c = self._calls.get(call)
            if c is None or c.receivers is None:
                return
            receivers, c.receivers = c.receivers, None
        for side, r in receivers.items():
            self._deliver(call, side, r.finish(end))

    def play(self, call: str, legs: Iterable[Side], pcm: npt.ArrayLike) -> None:
        """StartAnnouncement: `pcm` is the prompt, PCM16 at 8 kHz."""
        samples = np.asarray(pcm, dtype=np.int16)
        n = len(samples)
        padded = np.zeros(-(-n // PTIME_SAMPLES) * PTIME_SAMPLES, dtype=np.int16)
        padded[:n] = samples
        with self._lock:
            c = self._calls.get(call)
            if c is None:
                raise KeyError(call)
            frames: dict[Side, list[bytes]] = {}
            pts: dict[str, int] = {}
            for side in legs:
                codecs = c.legs[side].spec.codecs
                if not codecs:
                    raise ValueError(f"no codec negotiated on the {side} leg")
                pt, name = codecs[0]  # the first of the answer: what the peer prefers
                codes = _ENCODERS[name.upper()](padded).tobytes()
                frames[side] = [codes[i:i + PTIME_SAMPLES]
                                for i in range(0, len(codes), PTIME_SAMPLES)]
                pts[side] = pt
            c.prompt = _Prompt(tuple(frames), frames, pts, secrets.randbits(32),
                               secrets.randbits(16), secrets.randbits(32), self.clock(),
                               samples=n, sent=dict.fromkeys(frames, 0),
                               packets=dict.fromkeys(frames, 0))
        self._wake()

    def stop_announcement(self, call: str) -> None:
        """StopAnnouncement (the refusal key): stop sending; forwarding resumes."""
        with self._lock:
            c = self._calls.get(call)
            if c is not None:
                c.prompt = None

    # -- status --

    def counters(self) -> dict[str, object]:
        with self._lock:
            calls = len(self._calls)
        return {"calls": calls, "forwarded": self.forwarded, "bytes": self.forwarded_bytes,
                "rtcp_drained": self.rtcp_drained, "prompt_packets": self.prompt_packets,
                "ignored": dict(self.ignored)}

    def remote(self, call: str, side: Side) -> Addr | None:
        """Where the leg sends now (after latching): for tests and the status page."""
        with self._lock:
            c = self._calls.get(call)
            return c.legs[side].remote if c is not None else None

    # -- internals --

    def _hosts_for(self, spec: RelayLeg) -> frozenset[str]:
        r = _sdp_addr(spec.remote)
        return self.hosts[spec.side] | ({r[0]} if r else set())

    def _open_leg(self, spec: RelayLeg) -> _LegState:
        port = spec.local_port
        first, last = self.port_range
        if port % 2 or not first <= port < last:
            raise ValueError(f"relay port {port} outside the even ports of {first}-{last}")
        host = self.bind[spec.side]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
            rtcp.bind((host, port + 1))
        except OSError:
            sock.close()
            rtcp.close()
            raise
        sock.setblocking(False)
        rtcp.setblocking(False)
        leg = _LegState(spec.side, sock, rtcp, spec, self._hosts_for(spec))
        leg.remote = _sdp_addr(spec.remote)
        return leg

    @staticmethod
    def _close_leg(leg: _LegState) -> None:
        leg.sock.close()
        if leg.rtcp is not None:
            leg.rtcp.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        next_tick = self.clock() + TICK_S
        while not self._stop.is_set():
            now = self.clock()
            deadline = next_tick
            with self._lock:
                for c in self._calls.values():
                    if c.prompt is not None:
                        deadline = min(deadline, c.prompt.start + c.prompt.index * PTIME_S)
            try:
                ready = self._sel.select(max(0.0, deadline - now))
            except (OSError, ValueError):  # a socket closed under select by stop_call
                continue
            with self._lock:
                for key, _ in ready:
                    if key.data is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    c, leg, is_rtcp = key.data
                    if c.id not in self._calls:
                        continue
                    if is_rtcp:
                        self._drain(key.fileobj)  # type: ignore[arg-type]
                    else:
                        self._receive(c, leg)
                now = self.clock()
                self._send_prompts(now)
                tick = now >= next_tick
                if tick:
                    next_tick = now + TICK_S
                    self._tick(now)

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                sock.recv_into(self._buf)
            except OSError:
                return
            self.rtcp_drained += 1

    def _receive(self, c: _Call, leg: _LegState) -> None:
        """Every datagram waiting on a leg's socket (batched: one wake-up, many packets)."""
        sock, buf, view, ign = leg.sock, self._buf, self._view, self.ignored
        out = c.legs[_OTHER[leg.side]]
        while True:
            try:
                n, src = sock.recvfrom_into(buf)
            except OSError:
                return
            if src != leg.remote:
                if leg.latched or src[0] not in leg.hosts:
                    ign["stranger"] += 1
                    continue
                leg.remote, leg.latched = src, True  # comedia: answer where it comes from
            if n > MAX_RTP_BYTES:
                ign["oversize"] += 1
                continue
            if buf[0] >> 6 != 2:
                ign["not_rtp"] += 1
                continue
            now = self.clock()
            leg.last_rx = now
            data = bytes(view[:n])
            dst = out.remote
            if dst is None:
                ign["no_destination"] += 1
            elif c.prompt is not None and out.side in c.prompt.frames:
                ign["announcement"] += 1
            else:
                try:
                    out.sock.sendto(data, dst)
                    self.forwarded += 1
                    self.forwarded_bytes += n
                except OSError:
                    ign["send_error"] += 1
            # After the send: decoding never delays the forwarded packet.
            te = leg.spec.telephone_event_pt
            if te is not None and n >= 16 and (data[1] & 0x7F) == te:
                self._key(c, leg, data)
            if c.receivers is not None:
                self._deliver(c.id, leg.side, c.receivers[leg.side].feed(data, now))

    def _key(self, c: _Call, leg: _LegState, data: bytes) -> None:
        cc = data[0] & 0x0F
        off = 12 + 4 * cc
        if data[0] & 0x10 and len(data) >= off + 4:  # header extension
            off += 4 + 4 * int.from_bytes(data[off + 2:off + 4], "big")
        ssrc = int.from_bytes(data[8:12], "big")
        ts = int.from_bytes(data[4:8], "big")
        try:
            key = leg.keys.feed(ssrc, ts, data[off:])
        except TelephoneEventError:
            return
        if key is not None:
            self.on_event(KeyPressed(c.id, leg.side, key.key))

    def _deliver(self, call: str, side: str, events: list[Event]) -> None:
        sink = self.on_audio
        if sink is None:
            return
        for e in events:
            if isinstance(e, Audio):
                sink(call, side, e.pcm.tobytes(), e.start)

    def _tick(self, now: float) -> None:
        timeout = self.media_timeout_s
        for c in self._calls.values():
            if c.receivers is not None:
                for side, r in c.receivers.items():
                    self._deliver(c.id, side, r.advance(now))
            for leg in c.legs.values():
                spec = leg.spec
                # The peer is expected to send unless it is on hold or said it will not.
                quiet = spec.on_hold or spec.direction in ("recvonly", "inactive")
                if not quiet and now - leg.last_rx > timeout:
                    # Again every timeout while silent: the B2BUA ignores it before the answer
                    # (early media may be absent), so a one-shot event could be lost there.
                    leg.last_rx = now
                    self.on_event(MediaTimeout(c.id, leg.side))

    def _send_prompts(self, now: float) -> None:
        done: list[_Call] = []
        for c in self._calls.values():
            p = c.prompt
            if p is None:
                continue
            total = len(next(iter(p.frames.values()))) if p.frames else 0
            # Every packet due by now (more than one only after a late wake-up).
            while p.index < total and p.start + p.index * PTIME_S <= now:
                i = p.index
                for side, frames in p.frames.items():
                    leg = c.legs[side]
                    if leg.remote is None:
                        continue
                    pkt = build_rtp(p.pt[side], (p.seq + i) & 0xFFFF,
                                    (p.ts + i * PTIME_SAMPLES) & 0xFFFFFFFF, p.ssrc, frames[i],
                                    marker=i == 0)
                    try:
                        leg.sock.sendto(pkt, leg.remote)
                    except OSError:
                        continue
                    p.packets[side] += 1
                    p.sent[side] += min(PTIME_SAMPLES, p.samples - i * PTIME_SAMPLES)
                    self.prompt_packets += 1
                p.index += 1
            if p.index >= total:
                done.append(c)
        for c in done:
            p = c.prompt
            assert p is not None
            c.prompt = None
            ok = all(v == p.samples for v in p.sent.values())
            self.on_event(AnnouncementPlayed(c.id, dict(p.sent), dict(p.packets), p.samples))
            short = [s for s, v in p.sent.items() if v != p.samples]
            self.on_event(AnnouncementFinished(c.id, ok, "" if ok else
                                               f"prompt not delivered to {', '.join(short)}"))


def _sdp_addr(remote: Addr | None) -> Addr | None:
    """None for unknown and for an RFC 2543 hold address (c=0.0.0.0): nowhere to send."""
    if remote is None or remote[0] == "0.0.0.0" or remote[1] == 0:  # noqa: S104
        return None
    return remote
