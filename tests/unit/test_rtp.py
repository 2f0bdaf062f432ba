"""RTP headers and the per-direction receiver (callrec.sip.rtp): loss, reordering, duplicates,
wrap-around, SSRC changes, hold, jitter, and two directions aligned to the sample."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

import numpy as np
import pytest

from callrec.dsp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callrec.sip.rtp import (
    MAX_RTP_BYTES,
    Audio,
    KeyPress,
    Resync,
    RtpError,
    RtpPacket,
    RtpReceiver,
    build_rtp,
    is_rtcp,
    parse_rtp,
)
from callrec.sip.telephone_event import build_event

RATE = 8000
EPOCH = 5000.0


# -- headers --


def test_parse_a_plain_pcmu_packet() -> None:
    # As SIPp's pcap player and most phones send: V=2, no P/X/CC, PT 0, 160 bytes.
    raw = bytes.fromhex("80 00 1a2b 0001e240 deadbeef") + b"\xff" * 160
    p = parse_rtp(raw)
    assert p == RtpPacket(0, 0x1A2B, 123456, 0xDEADBEEF, b"\xff" * 160)
    assert build_rtp(0, 0x1A2B, 123456, 0xDEADBEEF, b"\xff" * 160) == raw


def test_round_trip_with_every_field() -> None:
    raw = build_rtp(101, 65535, 0xFFFFFFFF, 1, b"\x01\x02\x03\x04", marker=True,
                    csrcs=(7, 8), extension=(0xBEDE, b"\x10\xaa\x00\x00"), padding=3)
    p = parse_rtp(raw)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (101, 65535,
                                                                          0xFFFFFFFF, 1, True)
    assert p.csrcs == (7, 8) and p.extension == (0xBEDE, b"\x10\xaa\x00\x00")
    assert p.payload == b"\x01\x02\x03\x04" and p.padding == 3
    assert raw[0] == 0x80 | 0x20 | 0x10 | 2 and len(raw) == 12 + 8 + 8 + 4 + 3


@pytest.mark.parametrize(("raw", "why"), [
    (b"", "shorter"),
    (b"\x80\x00" + b"\x00" * 9, "shorter"),
    (b"\x80\x00" + b"\x00" * (MAX_RTP_BYTES - 1), "larger"),
    (b"\x40\x00" + b"\x00" * 10, "version 1"),
    (b"\x00\x00" + b"\x00" * 10, "version 0"),
    (b"\x8f\x00" + b"\x00" * 10 + b"\x00" * 56, "CSRC"),
    (b"\x90\x00" + b"\x00" * 10 + b"\x00\x00", "extension header"),
    (b"\x90\x00" + b"\x00" * 10 + b"\xbe\xde\x00\x02" + b"\x00" * 4, "extension beyond"),
    (b"\xa0\x00" + b"\x00" * 10 + b"\x00", "padding count 0"),
    (b"\xa0\x00" + b"\x00" * 10 + b"\x01\x02\x09", "padding count 9"),
])
def test_malformed_packets(raw: bytes, why: str) -> None:
    with pytest.raises(RtpError, match=why):
        parse_rtp(raw)


def test_build_refuses_out_of_range() -> None:
    for kwargs in ({"payload_type": 128}, {"sequence": 65536}, {"timestamp": -1},
                   {"ssrc": 1 << 32}, {"csrcs": tuple(range(16))}, {"padding": 256}):
        args = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, "payload": b""}
        with pytest.raises(ValueError):
            build_rtp(**(args | kwargs))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_rtp(0, 0, 0, 0, b"", extension=(1, b"abc"))


def test_rtcp_on_the_rtp_port_is_recognised() -> None:
    sender_report = struct.pack("!BBHI", 0x80, 200, 6, 0x1234) + b"\x00" * 20
    assert is_rtcp(sender_report) and not is_rtcp(build_rtp(0, 1, 2, 3, b"x"))
    assert not is_rtcp(b"\x80")


# -- one direction --


def tone(n: int, freq: float, start: int = 0, level: float = 8000) -> np.ndarray:
    t = np.arange(start, start + n)
    return np.round(level * np.sin(2 * np.pi * freq * t / RATE)).astype(np.int16)


@dataclass
class Sender:
    """A phone sending 20 ms G.711 packets."""

    ssrc: int
    seq: int
    ts: int
    pt: int = 0
    packets: list[tuple[float, bytes]] = field(default_factory=list)

    def send(self, payload: bytes, arrival: float, pt: int | None = None,
             ts: int | None = None) -> bytes:
        raw = build_rtp(self.pt if pt is None else pt, self.seq & 0xFFFF,
                        (self.ts if ts is None else ts) & 0xFFFFFFFF, self.ssrc, payload)
        self.seq += 1
        self.packets.append((arrival, raw))
        return raw


def run(rx: RtpReceiver, packets: list[tuple[float, bytes]], end: float | None = None
        ) -> tuple[np.ndarray, list[object]]:
    events: list[object] = []
    for arrival, raw in sorted(packets, key=lambda p: p[0]):
        events += rx.feed(raw, arrival)
    events += rx.finish(end)
    audio = [e for e in events if isinstance(e, Audio)]
    pos = 0
    for a in audio:  # contiguous from position 0
        assert a.start == pos, (a.start, pos)
        pos = a.end
    pcm = np.concatenate([a.pcm for a in audio]) if audio else np.zeros(0, np.int16)
    return pcm, [e for e in events if not isinstance(e, Audio)]


def stream(n_packets: int, skip: tuple[int, ...] = (), ts0: int = 1000, seq0: int = 100,
           start_s: float = 0.0, delays: dict[int, float] | None = None) -> tuple[
               list[tuple[float, bytes]], np.ndarray]:
    """Packets of a 440 Hz tone, packet k covering timeline [k*160, (k+1)*160) from start_s,
    arriving at the end of its audio (+ any delay); and the PCM the receiver should give."""
    s = Sender(ssrc=0xA, seq=seq0, ts=ts0)
    pcm = tone(n_packets * 160, 440)
    codes = ulaw_encode(pcm)
    for k in range(n_packets):
        arrival = EPOCH + start_s + (k + 1) * 0.02 + (delays or {}).get(k, 0.0)
        if k not in skip:
            s.send(codes[k * 160 : (k + 1) * 160].tobytes(), arrival)
        else:
            s.seq += 1
        s.ts += 160
    expected = ulaw_decode(codes)
    for k in skip:
        expected[k * 160 : (k + 1) * 160] = 0
    lead = np.zeros(round(start_s * RATE), np.int16)
    return s.packets, np.concatenate([lead, expected])


def test_in_order_stream_is_decoded_contiguously() -> None:
    packets, expected = stream(50)
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, packets)
    assert np.array_equal(pcm, expected)
    assert other == [Resync(0xA, 0, "first packet")]
    assert rx.stats.packets == 50 and rx.lost == 0 and rx.stats.silence_samples == 0
    assert rx.jitter_s < 1e-9


def test_a_late_start_is_preceded_by_silence() -> None:
    packets, expected = stream(10, start_s=1.5)
    pcm, _ = run(RtpReceiver({0: "PCMU"}, None, EPOCH), packets)
    assert np.array_equal(pcm, expected) and not pcm[:12000].any()


def test_loss_leaves_silence_of_exactly_the_lost_packets() -> None:
    packets, expected = stream(50, skip=(10, 11, 30))
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, _ = run(rx, packets)
    assert np.array_equal(pcm, expected)
    assert rx.lost == 3 and rx.stats.silence_samples == 480


def test_reordering_within_the_window_is_undone() -> None:
    packets, expected = stream(50, delays={5: 0.05, 20: 0.03, 21: 0.03})
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, _ = run(rx, packets)
    assert np.array_equal(pcm, expected)
    assert rx.stats.reordered == 2 and rx.lost == 0 and rx.stats.late == 0


def test_a_packet_later_than_the_window_is_dropped_as_late() -> None:
    packets, expected = stream(50, delays={5: 0.3})
    expected[5 * 160 : 6 * 160] = 0
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, _ = run(rx, packets)
    assert np.array_equal(pcm, expected) and rx.stats.late == 1


def test_duplicates_are_dropped() -> None:
    packets, expected = stream(20)
    packets = packets + [(t + 0.001, raw) for t, raw in packets[3:6]]
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, _ = run(rx, packets)
    assert np.array_equal(pcm, expected) and rx.stats.duplicates == 3 and rx.lost == 0


def test_sequence_and_timestamp_wrap_around() -> None:
    packets, expected = stream(60, ts0=0xFFFFFFFF - 2000, seq0=65510, skip=(40,))
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, packets)
    assert np.array_equal(pcm, expected)
    assert rx.lost == 1 and len(other) == 1  # no resync at the wrap


def test_sequence_restart_is_not_counted_as_loss() -> None:
    s = Sender(ssrc=1, seq=100, ts=0)
    for k in range(10):
        if k == 5:
            s.seq = 40000
        s.send(b"\xff" * 160, EPOCH + (k + 1) * 0.02)
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    run(rx, s.packets)
    assert rx.lost == 0 and rx.stats.packets == 10


def test_what_is_not_audio_is_counted_and_ignored() -> None:
    rx = RtpReceiver({8: "PCMA"}, 101, EPOCH)
    assert rx.feed(b"junk", EPOCH) == []
    assert rx.feed(struct.pack("!BBHI", 0x80, 201, 1, 5), EPOCH) == []
    assert rx.feed(build_rtp(13, 1, 0, 5, b"\x40"), EPOCH) == []  # comfort noise
    assert rx.feed(build_rtp(0, 2, 0, 5, b"\xff" * 160), EPOCH) == []  # not negotiated
    assert rx.feed(build_rtp(101, 3, 0, 5, b"\x01"), EPOCH) != []  # new source, bad event
    assert rx.feed(build_rtp(8, 4, 0, 5, b""), EPOCH) == []  # empty payload
    st = rx.stats
    assert (st.invalid, st.rtcp, st.ignored, st.packets) == (2, 1, 2, 2)


def test_payload_types_are_checked_and_can_change() -> None:
    with pytest.raises(ValueError):
        RtpReceiver({18: "G729"}, None, EPOCH)
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    rx.set_payload_types({8: "PCMA"}, None)
    pcm = tone(160, 1000)
    ev = rx.feed(build_rtp(8, 1, 0, 1, alaw_encode(pcm).tobytes()), EPOCH + 0.02)
    assert np.array_equal(ev[-1].pcm, alaw_decode(alaw_encode(pcm)))  # type: ignore[union-attr]


def test_new_ssrc_is_placed_by_the_clock() -> None:
    first, _ = stream(25)
    s = Sender(ssrc=0xB, seq=9, ts=777_777)
    for k in range(25):
        s.send(b"\x00" * 160, EPOCH + 0.5 + 0.3 + (k + 1) * 0.02)  # 0.3 s after the first
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, first + s.packets)
    assert other[1] == Resync(0xB, 6400, "new SSRC")
    assert not pcm[4000:6400].any() and pcm[6400:].all()
    assert rx.stats.ssrc_changes == 1 and len(pcm) == 6400 + 4000


def test_advance_emits_silence_for_a_silent_side_and_finish_pads() -> None:
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH, reorder_window_s=0.1)
    assert rx.advance(EPOCH + 0.05) == []
    ev = rx.advance(EPOCH + 1.0)
    assert [(a.start, len(a.pcm), a.silence) for a in ev] == [(0, 8000 - 800 - 160, True)]
    assert rx.position == 7040
    ev = rx.finish(EPOCH + 2.0)
    assert [(a.start, a.end) for a in ev] == [(7040, 16000)]  # type: ignore[union-attr]


def test_advance_flushes_audio_held_behind_a_hole() -> None:
    packets, _ = stream(10, skip=(3,))
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    for arrival, raw in packets[:4]:  # packets 0, 1, 2, 4
        rx.feed(raw, arrival)
    assert rx.position == 480
    ev = rx.advance(EPOCH + 0.5)
    assert [(a.start, a.silence) for a in ev if isinstance(a, Audio)][:2] == [(480, True),
                                                                             (640, False)]


def test_jitter_follows_rfc3550() -> None:
    """Transit alternating between 0 and 10 ms: |D| is 80 samples every packet, so the
    estimate J += (|D| - J) / 16 converges to 80 samples (10 ms)."""
    packets, _ = stream(400, delays={k: 0.01 for k in range(1, 400, 2)})
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    run(rx, packets)
    assert rx.jitter_s == pytest.approx(0.010, rel=1e-3)


def test_slow_drift_is_taken_out() -> None:
    """A sender whose clock runs 0.5 % slow (its 20 ms of timestamps take 20.1 ms): without
    correction its audio would lag the clock by 50 ms after 10 s."""
    s = Sender(ssrc=1, seq=0, ts=0)
    for k in range(500):
        s.send(b"\xff" * 160, EPOCH + (k + 1) * 0.0201)
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, s.packets)
    drift = [e for e in other if isinstance(e, Resync) and e.reason == "drift"]
    assert len(drift) == 1 and 100 <= drift[0].shift <= 200
    # What is left: the tolerance plus the drift of one window (the correction lags it).
    assert abs(len(pcm) - round(500 * 0.0201 * RATE)) <= 80 + 250 * 0.0001 * RATE


def test_timestamps_frozen_on_hold_are_re_anchored() -> None:
    s = Sender(ssrc=1, seq=0, ts=0)
    for k in range(10):
        s.send(b"\xff" * 160, EPOCH + (k + 1) * 0.02)
        s.ts += 160
    for k in range(10):  # 5 s later, timestamps continue as if no time had passed
        s.send(b"\x00" * 160, EPOCH + 5.2 + (k + 1) * 0.02)
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, s.packets)
    assert other[1] == Resync(1, 5.2 * RATE, "timestamps behind clock", 5.0 * RATE)
    assert len(pcm) == 5.4 * RATE and pcm[41600:].all() and not pcm[1600:41600].any()


@pytest.mark.parametrize("sequence", ["restarted", "continued"])
def test_timestamps_restarted_on_resume_are_re_anchored(sequence: str) -> None:
    """A sender that starts its stream over on resume with the same SSRC: timestamps back to
    where they began (as SIPp replaying its pcap does, and endpoints that rebuild their RTP
    session after a re-INVITE), its sequence numbers restarted too or going on. The new
    audio is placed by the clock, not dropped as late for being behind the old timestamps."""
    s = Sender(ssrc=1, seq=59133, ts=240)
    for k in range(250):  # 5 s: the restart is not mistaken for reordering or duplicates
        s.send(b"\xff" * 160, EPOCH + (k + 1) * 0.02)
        s.ts += 160
    s.ts = 240
    if sequence == "restarted":
        s.seq = 59133
    for k in range(10):  # 3 s later
        s.send(b"\x00" * 160, EPOCH + 8.2 + (k + 1) * 0.02)
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, s.packets)
    assert other[1] == Resync(1, 8.2 * RATE, "timestamps behind clock", 8.2 * RATE)
    assert len(pcm) == 8.4 * RATE and pcm[65600:].all() and not pcm[:65600].any()
    assert rx.stats.late == 0


def test_timestamps_leaping_ahead_are_re_anchored() -> None:
    s = Sender(ssrc=1, seq=0, ts=0)
    for k in range(20):
        s.send(b"\x00" * 160, EPOCH + (k + 1) * 0.02, ts=s.ts + (10**9 if k >= 10 else 0))
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, None, EPOCH)
    pcm, other = run(rx, s.packets)
    assert [e.reason for e in other] == ["first packet", "timestamps ahead of clock"]  # type: ignore[attr-defined]
    assert len(pcm) == 3200 and pcm.all()


def test_keys_are_placed_on_the_timeline() -> None:
    s = Sender(ssrc=3, seq=0, ts=50_000)
    for k in range(50):
        s.send(b"\xff" * 160, EPOCH + (k + 1) * 0.02)
        if 20 <= k < 26:  # a key starting at the timestamp of packet 20, 6 packets long
            dur = (k - 19) * 160
            s.send(build_event(9, dur, end=k == 25), EPOCH + (k + 1) * 0.02 + 0.001, pt=101,
                   ts=50_000 + 20 * 160)
        s.ts += 160
    rx = RtpReceiver({0: "PCMU"}, 101, EPOCH)
    _, other = run(rx, s.packets)
    keys = [e for e in other if isinstance(e, KeyPress)]
    assert keys == [KeyPress("9", 3200, 3)] and keys[0].start_s == 0.4


def test_a_stream_that_starts_with_a_key_is_anchored_by_it() -> None:
    rx = RtpReceiver({0: "PCMU"}, 101, EPOCH)
    ev = rx.feed(build_rtp(101, 0, 1000, 3, build_event(1, 800)), EPOCH + 1.0)
    assert ev == [Resync(3, 7200, "first packet"), KeyPress("1", 7200, 3)]


# -- both directions of a call --


@pytest.mark.parametrize("resume", ["clock ran", "frozen", "new SSRC"])
def test_two_directions_line_up_to_the_sample(resume: str) -> None:
    """Office (PCMU) and trunk (PCMA) sides with their own SSRCs and random timestamp bases,
    the same 30 ms network delay, up to 8 ms of jitter, losses, reordering, duplicates, and a
    hold: the trunk side sends nothing from 10 s to 20 s, then resumes in one of the three
    ways phones do. A 1 kHz tone burst every second in both directions, each at a known
    sample of the call: the two recorded channels must hold every burst at the same sample,
    and equal the sent audio (silence where packets were lost or not sent)."""
    rng = random.Random(6)
    seconds, delay = 30, 0.030
    n = seconds * RATE
    shift = round(delay * RATE)  # both channels lag the senders by the network delay
    bursts = [s * RATE + 1234 for s in range(1, seconds)]
    sig = {side: np.zeros(n, np.int16) for side in "ot"}
    for b in bursts:
        sig["o"][b : b + 800] = tone(800, 1000, level=9000)
        sig["t"][b : b + 800] = tone(800, 1000, level=5000)
    hold = range(500, 1000)  # packets of the trunk side not sent (10 s to 20 s)
    lost = {"o": {7, 8, 300, 1234}, "t": {42, 1300}}
    encode = {"o": ulaw_encode, "t": alaw_encode}
    decode = {"o": ulaw_decode, "t": alaw_decode}
    expected = {side: decode[side](encode[side](sig[side])) for side in "ot"}
    for k in lost["o"]:
        expected["o"][k * 160 : (k + 1) * 160] = 0
    for k in [*lost["t"], *hold]:
        expected["t"][k * 160 : (k + 1) * 160] = 0
    flows: list[tuple[float, str, bytes]] = []
    for side, pt, ssrc, ts0, seq0 in (("o", 0, 0x0FF1CE, 4_294_000_000, 65_000),
                                      ("t", 8, 0x7E1C0, 123_456, 7)):
        codes = encode[side](sig[side])
        snd = Sender(ssrc=ssrc, seq=seq0, ts=ts0, pt=pt)
        anchor = True  # the packet that (re)anchors a stream is not jittered: see the module
        for k in range(n // 160):
            ts = snd.ts + k * 160
            if side == "t" and k in hold:
                anchor = True
                continue
            if side == "t" and k >= hold.stop:
                if resume == "frozen":
                    ts -= len(hold) * 160
                elif resume == "new SSRC":
                    snd.ssrc, ts = 0x5EC0D, 987_654 + (k - hold.stop) * 160
            arrival = EPOCH + (k + 1) * 0.02 + delay
            if not anchor:
                arrival += rng.uniform(0, 0.008)
            if k % 97 == 5:
                arrival += 0.045  # arrives after the next packet: reordered
            anchor = False
            if k in lost[side]:
                snd.seq += 1
                continue
            raw = snd.send(codes[k * 160 : (k + 1) * 160].tobytes(), arrival, ts=ts)
            flows.append((arrival, side, raw))
            if k % 211 == 0:
                flows.append((arrival + 0.002, side, raw))  # duplicated by the network
    flows.sort(key=lambda f: f[0])
    rx = {"o": RtpReceiver({0: "PCMU"}, None, EPOCH),
          "t": RtpReceiver({8: "PCMA", 0: "PCMU"}, 101, EPOCH)}
    out: dict[str, list[Audio]] = {"o": [], "t": []}
    tick = EPOCH
    for arrival, side, raw in flows:
        while tick + 0.1 <= arrival:  # the recorder's clock: both channels kept in step
            tick += 0.1
            for s in "ot":
                out[s] += [e for e in rx[s].advance(tick) if isinstance(e, Audio)]
        out[side] += [e for e in rx[side].feed(raw, arrival) if isinstance(e, Audio)]
    end = EPOCH + seconds + delay
    for s in "ot":
        out[s] += [e for e in rx[s].finish(end) if isinstance(e, Audio)]
    chan = {}
    for s in "ot":
        assert [a.start for a in out[s]] == [0] + [a.end for a in out[s][:-1]]
        chan[s] = np.concatenate([a.pcm for a in out[s]])
        assert len(chan[s]) == n + shift
        assert not chan[s][:shift].any()
        assert np.array_equal(chan[s][shift:], expected[s]), s
    for b in bursts:  # the same burst starts at the same sample in both channels
        hold_span = range(hold.start * 160, hold.stop * 160)
        if b in hold_span:
            continue
        onset = {s: b + shift - 50 + int(np.argmax(np.abs(chan[s][b + shift - 50 :]) > 100))
                 for s in "ot"}
        assert onset["o"] == onset["t"] == b + shift + 1  # sin(0) = 0, sin(pi/4) > 0
    assert rx["o"].lost == 4 and rx["o"].stats.duplicates >= 1
    assert rx["o"].stats.reordered > 0 and rx["t"].stats.late == 0
    assert rx["t"].stats.resyncs == (1 if resume == "clock ran" else 2)

