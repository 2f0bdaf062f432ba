"""MediaRelay over real loopback UDP: two fake endpoints (the PBX on the LAN side, the provider
on the trunk side) exchange RTP through the relay."""

from __future__ import annotations

import itertools
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from callrec import events as ev
from callrec.dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callrec.sip.b2bua import AnnouncementFinished, KeyPressed, MediaTimeout, RelayLeg
from callrec.sip.relay import AnnouncementPlayed, MediaRelay
from callrec.sip.rtp import build_rtp, parse_rtp
from callrec.sip.telephone_event import build_event

HOST = "127.0.0.1"
STRANGER_HOST = "127.0.0.2"  # all of 127/8 is loopback on Linux: another host for the relay
PCMU = ((0, "PCMU"),)
PCMA = ((8, "PCMA"),)


def free_even_port() -> int:
    """An even port whose odd neighbour is free too (RTP + RTCP)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(30000, 60000, 2)
        a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(
            socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((HOST, port))
            b.bind((HOST, port + 1))
            return port
        except OSError:
            continue
        finally:
            a.close()
            b.close()
    raise RuntimeError("no free port pair")


def endpoint(host: str = HOST) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(1.0)
    return s


@dataclass
class Sinks:
    events: queue.Queue[ev.Event] = field(default_factory=queue.Queue)
    audio: dict[str, list[tuple[int, bytes]]] = field(
        default_factory=lambda: {"lan": [], "trunk": []})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_audio(self, call: str, direction: str, pcm: bytes, start: int) -> None:
        with self.lock:
            self.audio[direction].append((start, pcm))

    def pcm(self, direction: str) -> np.ndarray:
        with self.lock:
            chunks = list(self.audio[direction])
        pos = 0
        for start, pcm in chunks:  # contiguous from 0, as RtpReceiver promises
            assert start == pos
            pos += len(pcm) // 2
        return np.frombuffer(b"".join(p for _, p in chunks), dtype=np.int16)

    def wait(self, kind: type, timeout: float = 2.0) -> ev.Event:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                e = self.events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(e, kind):
                return e
        raise AssertionError(f"no {kind.__name__}")


@dataclass
class Call:
    relay: MediaRelay
    sinks: Sinks
    pbx: socket.socket
    trunk: socket.socket
    lan_port: int
    trunk_port: int

    @property
    def lan_addr(self) -> tuple[str, int]:
        return (HOST, self.lan_port)

    @property
    def trunk_addr(self) -> tuple[str, int]:
        return (HOST, self.trunk_port)

    def legs(self, lan_hold: bool = False, trunk_codecs: tuple[tuple[int, str], ...] = PCMU,
             pbx_remote: tuple[str, int] | None = None) -> tuple[RelayLeg, RelayLeg]:
        return (RelayLeg("lan", self.lan_port, pbx_remote or self.pbx.getsockname(), PCMU, 101,
                         on_hold=lan_hold),
                RelayLeg("trunk", self.trunk_port, self.trunk.getsockname(), trunk_codecs, 101))


@pytest.fixture
def call() -> Iterator[Call]:
    sinks = Sinks()
    relay = MediaRelay({"lan": HOST, "trunk": HOST}, sinks.events.put, sinks.on_audio,
                       port_range=(30000, 60000), media_timeout_s=0.4)
    relay.start()
    pbx, trunk = endpoint(), endpoint()
    c = Call(relay, sinks, pbx, trunk, free_even_port(), 0)
    c.trunk_port = free_even_port()
    while c.trunk_port == c.lan_port:
        c.trunk_port = free_even_port()
    yield c
    relay.close()
    pbx.close()
    trunk.close()


def rtp(seq: int, payload: bytes, ssrc: int = 1, pt: int = 0, ts: int | None = None) -> bytes:
    return build_rtp(pt, seq & 0xFFFF, (seq * 160 if ts is None else ts) & 0xFFFFFFFF, ssrc,
                     payload)


def test_forwards_both_directions_byte_for_byte(call: Call) -> None:
    call.relay.start_call("c1", *call.legs())
    sent_up, sent_down = [], []
    for i in range(20):
        up = rtp(i, bytes([i]) * 160, ssrc=11)
        down = rtp(i, bytes([255 - i]) * 160, ssrc=22)
        call.pbx.sendto(up, call.lan_addr)
        call.trunk.sendto(down, call.trunk_addr)
        sent_up.append(up)
        sent_down.append(down)
    got_up = [call.trunk.recvfrom(4096) for _ in range(20)]
    got_down = [call.pbx.recvfrom(4096) for _ in range(20)]
    assert [d for d, _ in got_up] == sent_up
    assert [d for d, _ in got_down] == sent_down
    # Symmetric RTP: each peer hears from the port it sends to.
    assert {a for _, a in got_up} == {call.trunk_addr}
    assert {a for _, a in got_down} == {call.lan_addr}
    c = call.relay.counters()
    assert c["forwarded"] == 40 and c["bytes"] == 40 * 172
    call.relay.stop_call("c1")
    assert call.relay.counters()["calls"] == 0


def test_latches_to_the_peers_host_and_ignores_strangers(call: Call) -> None:
    # The PBX's SDP names one port, but it sends from another (a NAT, a PBX media proxy).
    sdp_port = endpoint()
    call.relay.start_call("c1", *call.legs(pbx_remote=sdp_port.getsockname()))
    stranger = endpoint(STRANGER_HOST)
    stranger.sendto(rtp(0, b"\xff" * 160, ssrc=666), call.lan_addr)
    stranger.sendto(rtp(0, b"\xff" * 160, ssrc=666), call.trunk_addr)
    call.pbx.sendto(rtp(1, b"\x01" * 160), call.lan_addr)  # the peer's host: latches
    assert call.trunk.recvfrom(4096)[0] == rtp(1, b"\x01" * 160)
    call.trunk.sendto(rtp(1, b"\x02" * 160, ssrc=2), call.trunk_addr)
    assert call.pbx.recvfrom(4096)[0] == rtp(1, b"\x02" * 160, ssrc=2)  # to the latched source
    assert call.relay.remote("c1", "lan") == call.pbx.getsockname()
    # Once latched, even the SDP's own address is not accepted any more: one source a leg.
    sdp_port.sendto(rtp(2, b"\x03" * 160), call.lan_addr)
    call.pbx.sendto(rtp(3, b"\x04" * 160), call.lan_addr)
    assert call.trunk.recvfrom(4096)[0] == rtp(3, b"\x04" * 160)
    time.sleep(0.05)
    call.trunk.settimeout(0.1)
    with pytest.raises(TimeoutError):
        call.trunk.recvfrom(4096)  # nothing from the stranger ever reached the other side
    call.pbx.settimeout(0.1)
    with pytest.raises(TimeoutError):
        call.pbx.recvfrom(4096)
    assert call.relay.counters()["ignored"]["stranger"] == 3  # type: ignore[index]
    assert call.relay.remote("c1", "trunk") == call.trunk.getsockname()
    stranger.close()
    sdp_port.close()


def tone(n: int, freq: float, amp: float = 8000) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / 8000)).astype(np.int16)


def first_loud(pcm: np.ndarray, start: int = 0) -> int:
    idx = np.flatnonzero(np.abs(pcm[start:].astype(np.int32)) > 2000)
    assert len(idx), "tone not found"
    return start + int(idx[0])


def test_recording_gets_both_directions_time_aligned(call: Call) -> None:
    call.relay.start_call("c1", *call.legs())
    call.relay.start_recording("c1")
    silence = ulaw_encode(np.zeros(160, dtype=np.int16)).tobytes()
    burst_up = ulaw_encode(tone(160, 1000)).tobytes()
    burst_down = ulaw_encode(tone(160, 1500)).tobytes()
    t0 = time.monotonic()
    bursts = (20, 60)
    for i in range(80):
        loud = any(b <= i < b + 5 for b in bursts)
        call.pbx.sendto(rtp(i, burst_up if loud else silence, ssrc=11, ts=1000 + i * 160),
                        call.lan_addr)
        # The trunk's timestamps start elsewhere: alignment must come from the clock.
        call.trunk.sendto(rtp(i, burst_down if loud else silence, ssrc=22, ts=987654 + i * 160),
                          call.trunk_addr)
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    time.sleep(0.05)
    call.relay.stop_recording("c1")
    up, down = call.sinks.pcm("lan"), call.sinks.pcm("trunk")
    assert len(up) == len(down)  # both end at the same sample
    a, b = first_loud(up), first_loud(down)
    assert abs(a - b) <= 40  # 5 ms: both sent together, so they line up on the timeline
    a2, b2 = first_loud(up, a + 800), first_loud(down, b + 800)
    assert a2 - a == 40 * 160 and b2 - b == 40 * 160  # to the sample within a stream
    # the burst itself, bit-exact (its first sample is 0, below the threshold)
    assert np.array_equal(up[a - 1:a + 799], ulaw_decode(np.frombuffer(burst_up * 5, np.uint8)))


def test_no_timeout_on_hold_and_timeout_when_a_side_stops(call: Call) -> None:
    call.relay.start_call("c1", *call.legs(lan_hold=True))
    end = time.monotonic() + 0.8
    i = 0
    while time.monotonic() < end:  # only the trunk sends: the LAN side is on hold
        call.trunk.sendto(rtp(i, b"\xff" * 160, ssrc=2), call.trunk_addr)
        i += 1
        time.sleep(0.02)
    assert call.sinks.events.empty()
    call.relay.update_call("c1", *call.legs(lan_hold=False))  # resumed, and still silent
    while time.monotonic() < end + 1.0:
        call.trunk.sendto(rtp(i, b"\xff" * 160, ssrc=2), call.trunk_addr)
        i += 1
        time.sleep(0.02)
    got = list(call.sinks.events.queue)
    # 0.4 s after the resume, then again every 0.4 s while the LAN side stays silent; never
    # for the trunk side, which kept sending.
    assert 1 <= len(got) <= 3
    assert all(isinstance(e, MediaTimeout) and (e.call, e.leg) == ("c1", "lan") for e in got)


def test_telephone_event_surfaces_as_a_key_press(call: Call) -> None:
    call.relay.start_call("c1", *call.legs())
    ts = 4000
    for k, (dur, end) in enumerate([(160, False), (320, False), (480, False), (640, True),
                                    (640, True), (640, True)]):
        call.trunk.sendto(build_rtp(101, 100 + k, ts, 7, build_event(9, dur, end),
                                    marker=k == 0), call.trunk_addr)
    e = call.sinks.wait(KeyPressed)
    assert e == KeyPressed("c1", "trunk", "9", at=e.at)
    time.sleep(0.1)
    assert not any(isinstance(x, KeyPressed) for x in list(call.sinks.events.queue))
    for _ in range(6):  # the key's packets are forwarded too (the PBX may want them)
        assert parse_rtp(call.pbx.recvfrom(4096)[0]).payload_type == 101


def test_announcement_is_paced_in_each_legs_codec_and_decodes_back(call: Call) -> None:
    call.relay.start_call("c1", *call.legs(trunk_codecs=PCMA))
    rng = np.random.default_rng(1)
    prompt = (tone(8000, 440) + rng.integers(-500, 500, 8000)).astype(np.int16)[:7930]
    call.relay.play("c1", ("trunk", "lan"), prompt)
    # Meanwhile the office talks: the far end hears the prompt, not the office.
    for i in range(5):
        call.pbx.sendto(rtp(i, b"\x11" * 160), call.lan_addr)
    got: dict[str, list[tuple[float, bytes]]] = {"lan": [], "trunk": []}
    for side, sock in (("trunk", call.trunk), ("lan", call.pbx)):
        for _ in range(50):
            data = sock.recvfrom(4096)[0]
            got[side].append((time.monotonic() if side == "trunk" else 0.0, data))
    played = call.sinks.wait(AnnouncementPlayed)
    assert isinstance(played, AnnouncementPlayed)
    assert played.samples == {"trunk": 7930, "lan": 7930} and played.prompt_samples == 7930
    fin = call.sinks.wait(AnnouncementFinished)
    assert fin == AnnouncementFinished("c1", True, at=fin.at)
    for side, pt, decode, encode in (("trunk", 8, alaw_decode, alaw_encode),
                                     ("lan", 0, ulaw_decode, ulaw_encode)):
        pkts = [parse_rtp(d) for _, d in got[side]]
        assert all(p.payload_type == pt and len(p.payload) == 160 for p in pkts)
        assert pkts[0].marker and not any(p.marker for p in pkts[1:])
        assert len({p.ssrc for p in pkts}) == 1
        assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in itertools.pairwise(pkts))
        assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
                   for a, b in itertools.pairwise(pkts))
        pcm = decode(b"".join(p.payload for p in pkts))
        assert np.array_equal(pcm[:7930], decode(encode(prompt)))  # G.711's quantiser only
        assert np.array_equal(pcm[7930:], decode(encode(np.zeros(70, np.int16))))  # padding
    # Paced by the clock: packet i leaves at start + 20 ms * i.
    times = np.array([t for t, _ in got["trunk"]])
    lag = (times - times[0]) - 0.02 * np.arange(len(times))
    assert np.abs(lag).max() < 0.015 and np.percentile(np.abs(lag), 90) < 0.005
    assert call.relay.counters()["ignored"]["announcement"] == 5  # type: ignore[index]
    # After the prompt, forwarding resumes.
    call.pbx.sendto(rtp(9, b"\x22" * 160), call.lan_addr)
    assert call.trunk.recvfrom(4096)[0] == rtp(9, b"\x22" * 160)


def test_rtcp_port_is_drained_and_ports_are_checked(call: Call) -> None:
    call.relay.start_call("c1", *call.legs())
    call.pbx.sendto(b"\x80\xc8" + bytes(26), (HOST, call.lan_port + 1))  # a sender report
    time.sleep(0.1)
    assert call.relay.counters()["rtcp_drained"] == 1
    call.trunk.settimeout(0.1)
    with pytest.raises(TimeoutError):
        call.trunk.recvfrom(4096)
    with pytest.raises(ValueError, match="outside"):
        call.relay.start_call("c2", RelayLeg("lan", 1001), RelayLeg("trunk", 1002))
    with pytest.raises(OSError):  # taken by c1
        call.relay.start_call("c3", RelayLeg("lan", call.lan_port), RelayLeg("trunk", 30000))
