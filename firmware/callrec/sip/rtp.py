"""RTP (RFC 3550) headers, and one direction of a call's audio turned into PCM for recording.

`parse_rtp` / `build_rtp`: the fixed header, CSRCs, header extension and padding, with every
length checked against the datagram (it comes from the network: untrusted).

`RtpReceiver` (pure: fed `(datagram, arrival time)`, returns events; no socket, no clock) turns
one direction of a call into a gap-free PCM16 stream at 8 kHz on the *call timeline*: sample n
of every direction of a call is wall time `epoch + n / 8000`, `epoch` being shared by the
call's receivers. That is what keeps the two channels of a recording aligned.

How a packet finds its place on the timeline:
  * Within a stream, by its RTP timestamp: position = extended timestamp + offset. Timestamps
    count samples at the sender, so jitter, reordering and loss do not move audio: a late
    packet goes where it belongs, a lost one leaves a hole of exactly its length (filled with
    silence), and silence suppression (DTX) skips ahead by exactly the silence.
  * The offset comes from the wall clock: the first packet of a source (SSRC) is placed where
    its arrival says (the arrival marks the end of its audio), and every later packet whose
    timestamp is the newest so far is checked against its own arrival. Timestamps alone cannot
    be trusted across a pause: on hold, one phone stops sending and its timestamps keep
    running (then they still agree with the clock and nothing changes), another freezes them
    or starts a new SSRC at a random timestamp on resume. Both disagree with the clock by the
    length of the pause, and the stream is re-anchored where the clock says (`Resync`), with
    the pause filled with silence. A packet *earlier* than the clock allows (it cannot arrive
    before it is captured) re-anchors too: timestamps that leapt ahead, or an anchor taken on
    a packet the network had delayed. A packet newer by sequence number but older by
    timestamp means the sender started its stream over with the same SSRC (some endpoints on
    resume, a replayed capture): it re-anchors whatever the difference.
  * Slow drift (the sender's 8 kHz crystal against this machine's clock, up to ~100 ppm:
    0.36 s an hour) is taken out every `DRIFT_WINDOW` packets: the least-delayed packet of the
    window shows how far the timestamps have drifted from the clock, and beyond
    `DRIFT_TOLERANCE` the offset moves by that much (a few ms of silence inserted, or of
    audio overlapped and dropped). The two channels stay within ~10 ms of each other for any
    call length, and to the sample when the senders' clocks agree with this one.
Both channels therefore align by wall clock to within the difference of their network delays
(the same LAN and trunk for both: a few ms) and, between resyncs, to the sample.

A side that sends nothing (hold, a one-way call) produces nothing until `advance(now)` is
called: it emits silence up to `now` minus the reorder window, so the recorder can keep both
channels in step during a hold without waiting for the resume. `finish()` ends the stream.

Reordering: packets are held until the audio before them has arrived or the newest audio is
`reorder_window_s` ahead (then the hole is declared lost). Duplicates (same SSRC and sequence
number, or audio for a position already played) are dropped. Sequence numbers give RFC 3550
A.3 loss statistics (with wrap-around); the interarrival jitter is RFC 3550 A.8's.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callrec.dsp.g711 import ALAW_DECODE, ULAW_DECODE
from callrec.sip.telephone_event import (
    TelephoneEventDecoder,
    TelephoneEventError,
    parse_event,
)

Int16Array = npt.NDArray[np.int16]

RATE = 8000
HEADER_BYTES = 12
# The largest datagram taken as RTP: G.711 at 240 ms (1920 bytes, the longest ptime phones
# offer) plus a header with extensions. Anything bigger is not a voice packet.
MAX_RTP_BYTES = 2048
MAX_SOURCES = 4  # SSRCs remembered per direction (a PBX may switch back to an earlier one)
MAX_DROPOUT = 3000  # RFC 3550 A.1: a sequence jump this big restarts the count
MAX_MISORDER = 100
DRIFT_WINDOW = 250  # packets (5 s at 20 ms)
DRIFT_TOLERANCE = 80  # samples (10 ms)
RESYNC_LATE_S = 1.0  # newest packet later than its timestamps say: frozen timestamps
RESYNC_EARLY_S = 0.12  # newest packet earlier than possible: timestamps leapt ahead

_HDR = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")
_DECODERS = {"PCMU": ULAW_DECODE, "PCMA": ALAW_DECODE}


class RtpError(ValueError):
    """Not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data): RFC 3550 §5.3.1
    padding: int = 0  # padding bytes that followed the payload (P bit)


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761 §4): packet types 200-204 read as marker
    + payload type 72-76, which RTP must not use."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 200 <= data[1] <= 204


def parse_rtp(data: bytes) -> RtpPacket:
    n = len(data)
    if n < HEADER_BYTES:
        raise RtpError(f"{n} bytes: shorter than an RTP header")
    if n > MAX_RTP_BYTES:
        raise RtpError(f"{n} bytes: larger than {MAX_RTP_BYTES}")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6}")
    cc = b0 & 0x0F
    off = HEADER_BYTES + 4 * cc
    if off > n:
        raise RtpError("CSRC list beyond the datagram")
    csrcs: tuple[int, ...] = struct.unpack_from(f"!{cc}I", data, HEADER_BYTES) if cc else ()
    ext = None
    if b0 & 0x10:
        if off + 4 > n:
            raise RtpError("extension header beyond the datagram")
        profile, words = _EXT.unpack_from(data, off)
        end = off + 4 + 4 * words
        if end > n:
            raise RtpError("extension beyond the datagram")
        ext = (profile, bytes(data[off + 4 : end]))
        off = end
    end = n
    pad = 0
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or off + pad > n:
            raise RtpError(f"bad padding count {pad}")
        end = n - pad
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bytes(data[off:end]), bool(b1 & 0x80), csrcs,
                     ext, pad)


def build_rtp(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes,
              marker: bool = False, csrcs: tuple[int, ...] = (),
              extension: tuple[int, bytes] | None = None, padding: int = 0) -> bytes:
    if not (0 <= payload_type <= 127 and 0 <= sequence <= 0xFFFF and 0 <= timestamp <= 0xFFFFFFFF
            and 0 <= ssrc <= 0xFFFFFFFF and len(csrcs) <= 15 and 0 <= padding <= 255):
        raise ValueError("RTP header field out of range")
    b0 = 0x80 | len(csrcs) | (0x10 if extension else 0) | (0x20 if padding else 0)
    out = bytearray(_HDR.pack(b0, (0x80 if marker else 0) | payload_type, sequence, timestamp,
                              ssrc))
    for c in csrcs:
        out += struct.pack("!I", c)
    if extension:
        profile, data = extension
        if len(data) % 4 or len(data) > 0x3FFFC:
            raise ValueError("extension data must be whole 32-bit words")
        out += _EXT.pack(profile, len(data) // 4) + data
    out += payload
    if padding:
        out += bytes(padding - 1) + bytes([padding])
    return bytes(out)


# -- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audio:
    """PCM16 at 8 kHz for positions [start, start + len(pcm)) of the call timeline. Events of
    one receiver are contiguous: each starts where the previous ended (from position 0)."""

    start: int
    pcm: Int16Array
    silence: bool = False  # filled in for loss, a pause or a hold

    @property
    def end(self) -> int:
        return self.start + len(self.pcm)


@dataclass(frozen=True, slots=True)
class KeyPress:
    key: str
    position: int  # the key's start on the call timeline, from its RTP timestamp
    ssrc: int

    @property
    def start_s(self) -> float:
        return self.position / RATE


@dataclass(frozen=True, slots=True)
class Resync:
    """The stream's timestamps were (re)mapped to the timeline: for the log and the bench."""

    ssrc: int
    position: int
    reason: str  # "first packet", "new SSRC", "timestamps behind clock", "...ahead of clock",
    #              "drift"
    shift: int = 0  # samples the mapping moved (0 for a new source)


Event = Audio | KeyPress | Resync


@dataclass
class ReceiverStats:
    packets: int = 0  # valid RTP packets of this stream
    invalid: int = 0  # datagrams that are not RTP
    rtcp: int = 0  # RTCP multiplexed on the port (counted, not decoded)
    ignored: int = 0  # payload types not negotiated (comfort noise included)
    duplicates: int = 0
    late: int = 0  # audio that came after its place was filled with silence
    reordered: int = 0  # came after a packet with a higher sequence number
    ssrc_changes: int = 0
    resyncs: int = 0
    silence_samples: int = 0  # filled in (loss, pauses, hold)
    audio_samples: int = 0  # decoded from packets


class _Source:
    """Per-SSRC state: timestamp mapping, sequence statistics, jitter."""

    __slots__ = ("base_seq", "cycles", "drift_count", "drift_min", "jitter", "last_ext",
                 "last_ts", "max_ext", "max_seq", "offset", "received", "recent", "ssrc",
                 "transit")

    def __init__(self, ssrc: int, timestamp: int, seq: int) -> None:
        self.ssrc = ssrc
        self.last_ts = timestamp  # raw, to unwrap the next one
        self.last_ext = timestamp  # extended (unwrapped) timestamp
        self.max_ext = -1 << 62  # newest audio timestamp seen
        self.offset = 0  # timeline position = extended timestamp + offset
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.received = 0
        self.recent: deque[int] = deque(maxlen=64)  # sequence numbers, for duplicates
        self.transit: float | None = None
        self.jitter = 0.0
        self.drift_min = 1 << 62
        self.drift_count = 0

    def unwrap(self, ts: int) -> int:
        d = (ts - self.last_ts) & 0xFFFFFFFF
        if d >= 0x80000000:
            d -= 0x100000000
        return self.last_ext + d

    def expected(self) -> int:
        return self.cycles + self.max_seq - self.base_seq + 1


class RtpReceiver:
    """One direction of one call. `codecs`: payload type → "PCMU" / "PCMA", as negotiated
    (`sdp.MediaState.codecs`); `telephone_event_pt` likewise; `epoch`: the call's time zero,
    the same for both directions, in the clock that gives the arrival times."""

    def __init__(self, codecs: Mapping[int, str], telephone_event_pt: int | None, epoch: float,
                 reorder_window_s: float = 0.1) -> None:
        self.epoch = epoch
        self.window = round(reorder_window_s * RATE)
        self.stats = ReceiverStats()
        self._tables: dict[int, npt.NDArray[np.int16]] = {}
        self._te_pt: int | None = None
        self.set_payload_types(codecs, telephone_event_pt)
        self._sources: dict[int, _Source] = {}
        self._active: _Source | None = None
        self._next = 0  # next timeline position to emit
        self._pending: dict[int, Int16Array] = {}
        self._pending_end = 0
        self._lost_retired = 0  # loss counted on sources forgotten
        self._longest = 160  # longest packet seen, samples
        self._keys = TelephoneEventDecoder()

    def set_payload_types(self, codecs: Mapping[int, str], telephone_event_pt: int | None) -> None:
        """After a re-INVITE renegotiated the payload types."""
        tables = {}
        for pt, name in codecs.items():
            if name.upper() not in _DECODERS or not 0 <= pt <= 127:
                raise ValueError(f"cannot record payload type {pt} ({name})")
            tables[pt] = _DECODERS[name.upper()]
        self._tables = tables
        self._te_pt = telephone_event_pt

    # -- statistics --

    @property
    def lost(self) -> int:
        """RFC 3550 A.3 cumulative loss, over every source of the stream."""
        return self._lost_retired + sum(max(0, s.expected() - s.received)
                                        for s in self._sources.values())

    @property
    def jitter_s(self) -> float:
        """RFC 3550 A.8 interarrival jitter of the current source, in seconds."""
        return self._active.jitter / RATE if self._active else 0.0

    @property
    def position(self) -> int:
        """Timeline position up to which audio has been emitted."""
        return self._next

    # -- input --

    def feed(self, datagram: bytes, arrival: float) -> list[Event]:
        st = self.stats
        if is_rtcp(datagram):
            st.rtcp += 1
            return []
        try:
            pkt = parse_rtp(datagram)
        except RtpError:
            st.invalid += 1
            return []
        pt = pkt.payload_type
        table = self._tables.get(pt)
        if table is None and pt != self._te_pt:
            st.ignored += 1
            return []
        wall = round((arrival - self.epoch) * RATE)  # timeline position of the arrival
        out: list[Event] = []
        src = self._sources.get(pkt.ssrc)
        if src is None:
            src = self._new_source(pkt, wall, table is None, out)
        # Sequence numbers (RFC 3550 A.1, without probation: the relay only accepts packets
        # from the negotiated peer address) for duplicates and loss statistics.
        seq = pkt.sequence
        if seq in src.recent:
            st.duplicates += 1
            return out
        src.recent.append(seq)
        udelta = (seq - src.max_seq) & 0xFFFF
        newest = True  # by its sequence number: sent after every packet seen so far
        if src.received == 0 or 0 < udelta < MAX_DROPOUT:
            if src.received and seq < src.max_seq:
                src.cycles += 0x10000
            src.max_seq = seq
        elif udelta <= 0x10000 - MAX_MISORDER:  # a jump: the sender restarted its numbering
            self._lost_retired += max(0, src.expected() - src.received)
            src.base_seq = src.max_seq = seq
            src.cycles = src.received = 0
        else:
            st.reordered += 1
            newest = False
        src.received += 1
        st.packets += 1
        ext = src.unwrap(pkt.timestamp)
        if table is None:
            self._telephone_event(src, pkt, ext, out)
            return out
        if ext > src.last_ext:
            src.last_ts, src.last_ext = pkt.timestamp, ext
        pcm = table[np.frombuffer(pkt.payload, dtype=np.uint8)]
        n = len(pcm)
        if n == 0:
            return out
        self._longest = max(self._longest, n)
        if ext > src.max_ext:
            src.max_ext = ext
            self._check_clock(src, ext, wall - n, out)
        elif newest and ext < src.max_ext:
            # Newer by sequence, older by timestamp: the sender started its stream over with
            # the same SSRC (some endpoints on resume, SIPp replaying a pcap). Left as it is,
            # everything it sends would land behind what was written and be dropped as late.
            src.max_ext = ext
            self._check_clock(src, ext, wall - n, out, restarted=True)
        # RFC 3550 A.8 jitter, in timestamp units, over packets in arrival order.
        transit = (arrival - self.epoch) * RATE - ext
        if src.transit is not None:
            src.jitter += (abs(transit - src.transit) - src.jitter) / 16
        src.transit = transit
        st.audio_samples += n
        self._place(ext + src.offset, pcm, out)
        return out

    def advance(self, now: float) -> list[Event]:
        """Emit what can no longer change by `now`: held audio whose holes are older than the
        reorder window, then silence up to there when the side sends nothing (hold)."""
        out: list[Event] = []
        horizon = round((now - self.epoch) * RATE) - self.window - self._longest
        while self._pending and min(self._pending) < horizon:
            self._emit_first(out)
        if not self._pending and self._next < horizon:
            self._silence(horizon, out)
        return out

    def finish(self, end: float | None = None) -> list[Event]:
        """End of the call: emit everything held, and silence up to `end` if given (so both
        channels of the recording end at the same sample)."""
        out: list[Event] = []
        while self._pending:
            self._emit_first(out)
        if end is not None:
            self._silence(round((end - self.epoch) * RATE), out)
        return out

    # -- internals --

    def _new_source(self, pkt: RtpPacket, wall: int, is_event: bool,
                    out: list[Event]) -> _Source:
        src = _Source(pkt.ssrc, pkt.timestamp, pkt.sequence)
        if is_event:
            # A telephone-event's timestamp is its start, its duration how long ago that was.
            try:
                back = parse_event(pkt.payload).duration
            except TelephoneEventError:
                back = 0
        else:
            back = len(pkt.payload)  # G.711: one byte per sample
        src.offset = wall - back - pkt.timestamp
        first = not self._sources
        if not first:
            self.stats.ssrc_changes += 1
        if len(self._sources) >= MAX_SOURCES:
            old = self._sources.pop(next(iter(self._sources)))
            self._lost_retired += max(0, old.expected() - old.received)
        self._sources[pkt.ssrc] = src
        self._active = src
        self.stats.resyncs += 1
        out.append(Resync(pkt.ssrc, wall - back, "first packet" if first else "new SSRC"))
        return src

    def _check_clock(self, src: _Source, ext: int, wall_start: int, out: list[Event],
                     restarted: bool = False) -> None:
        """The newest packet of a source against the clock (see the module's docstring);
        `restarted`: its timestamps went back, it is re-anchored whatever the difference."""
        self._active = src
        d = wall_start - (ext + src.offset)  # > 0: later than its timestamp says
        if restarted or d > RESYNC_LATE_S * RATE or d < -RESYNC_EARLY_S * RATE:
            reason = "timestamps behind clock" if d > 0 else "timestamps ahead of clock"
        else:
            src.drift_min = min(src.drift_min, d)
            src.drift_count += 1
            if src.drift_count < DRIFT_WINDOW:
                return
            d, src.drift_min, src.drift_count = src.drift_min, 1 << 62, 0
            if abs(d) <= DRIFT_TOLERANCE:
                return
            reason = "drift"
        if reason != "drift":
            src.transit = None  # the pause is not jitter: restart the estimate's reference
        src.offset += d
        self.stats.resyncs += 1
        src.drift_min, src.drift_count = 1 << 62, 0
        out.append(Resync(src.ssrc, ext + src.offset, reason, d))

    def _telephone_event(self, src: _Source, pkt: RtpPacket, ext: int, out: list[Event]) -> None:
        try:
            key = self._keys.feed(pkt.ssrc, pkt.timestamp, pkt.payload)
        except TelephoneEventError:
            self.stats.invalid += 1
            return
        if key is not None:
            out.append(KeyPress(key.key, max(0, ext + src.offset), pkt.ssrc))

    def _place(self, pos: int, pcm: Int16Array, out: list[Event]) -> None:
        end = pos + len(pcm)
        nxt = self._next
        if end <= nxt:
            self.stats.late += 1
            return
        if pos < nxt:  # partly played already (an overlap after a resync): keep the rest
            pcm = pcm[nxt - pos :]
            pos = nxt
        pending = self._pending
        if pos == nxt and not pending:  # the usual case: in order, nothing held
            out.append(Audio(pos, pcm))
            self._next = end
            return
        if pos in pending:
            self.stats.duplicates += 1
            return
        pending[pos] = pcm
        self._pending_end = max(self._pending_end, end)
        while pending:
            first = min(pending)
            if first > self._next and self._pending_end - self._next <= self.window:
                return  # a hole that may still be filled
            self._emit_first(out)

    def _emit_first(self, out: list[Event]) -> None:
        pos = min(self._pending)
        pcm = self._pending.pop(pos)
        if pos > self._next:
            self._silence(pos, out)
        elif pos < self._next:  # overlaps audio already emitted
            cut = self._next - pos
            if cut >= len(pcm):
                self.stats.late += 1
                return
            pcm, pos = pcm[cut:], self._next
        out.append(Audio(pos, pcm))
        self._next = pos + len(pcm)

    def _silence(self, until: int, out: list[Event]) -> None:
        n = until - self._next
        if n <= 0:
            return
        out.append(Audio(self._next, np.zeros(n, dtype=np.int16), silence=True))
        self.stats.silence_samples += n
        self._next = until
