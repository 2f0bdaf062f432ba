"""SDP (RFC 4566) and the offer/answer steps (RFC 3264) of a media-anchoring SIP box.

Pure: text in, objects and text out, no I/O. What the box needs from SDP is narrow:
  1. `restrict_offer`: keep only what the box can record (PCMU 0, PCMA 8, telephone-event),
     on one audio stream, and refuse (`NotRecordableError`, the caller answers 488 Not
     Acceptable Here) an offer with none of it. A call whose media the box cannot decode would
     be connected and silently unrecorded: that must be impossible.
  2. `anchor_media`: point the audio at the box's relay (c= and port), so both directions pass
     through it and can be recorded, and drop what would let media bypass the relay (ICE
     candidates, a=rtcp with the peer's own address).
  3. `SdpOriginator.stamp`: the box presents its own session to each peer, so the o= line is the
     box's, and its version goes up by one exactly when what the box sends changes (RFC 3264
     §8), whatever the peers do with theirs.
  4. `read_media`: what an answer (or a re-INVITE's offer) settled: payload types and codec, the
     telephone-event payload type, the direction, and whether it puts the call on hold.

Parsing keeps every line in order (unknown ones too), so `serialize(parse(x))` gives back `x`
with CRLF line ends; only the o=, m= lines are held as objects, the rest are read on demand.
Malformed input raises `SdpError` (the signalling layer answers 400, or 488 for an offer).
Limits: a body comes from the network, so its size, line count and line length are capped,
as are the number of m= lines and of formats per m= line (`MAX_*` below; a desk phone's or
baresip's offer is 300-900 bytes and 10-25 lines, a video offer rarely over 3 KB).
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field

MAX_SDP_BYTES = 8192
MAX_LINES = 200
MAX_LINE_CHARS = 1000
MAX_MEDIA = 8
MAX_FORMATS = 32

RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"})  # plain RTP: SRTP (SAVP) cannot be recorded
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
HOLD_ADDRESSES = frozenset({"0.0.0.0"})  # noqa: S104 - RFC 2543 hold, not a bind address
RECORDABLE = frozenset({"PCMU", "PCMA"})
TELEPHONE_EVENT = "telephone-event"
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}  # RFC 3551: no rtpmap needed for these
# Attributes that would send media around the relay once the address is the box's.
_BYPASS_ATTRS = frozenset({"rtcp", "candidate", "remote-candidates", "ice-ufrag", "ice-pwd",
                           "ice-options", "ice-lite", "end-of-candidates"})
# Attributes tied to one payload type: dropped with it.
_PT_ATTRS = frozenset({"rtpmap", "fmtp", "rtcp-fb"})

_LINE = re.compile(r"([a-z])=(.*)")
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,20}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,252}")
# The clock rate is required by RFC 4566, yet old stacks (and RFC 4475's "esc01" and
# "longreq", valid messages) write "a=rtpmap:31 LPC": read as an unknown rate (0), which no
# recordable codec has, so such a format is never chosen but the offer is not refused for it.
_RTPMAP = re.compile(r"([0-9]{1,3}) +([^/ ]+)(?:/([0-9]{1,6})(?:/([0-9]{1,2}))?)? *")


class SdpError(ValueError):
    """Malformed or oversized SDP."""


class NotRecordableError(Exception):
    """The SDP offers no media the box can record: answer 488 Not Acceptable Here (RFC 3261
    §21.4.26), never connect the call unrecorded."""

    status = 488
    reason = "Not Acceptable Here"


@dataclass(frozen=True)
class Origin:
    username: str
    session_id: str
    version: int
    addrtype: str
    address: str

    def line(self) -> str:
        return f"{self.username} {self.session_id} {self.version} IN {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Connection:
    addrtype: str  # IP4 or IP6
    address: str  # as written: IP, FQDN, or multicast with /ttl

    @property
    def is_hold(self) -> bool:
        """c=IN IP4 0.0.0.0: RFC 2543's way to put a call on hold, still sent by old PBXs."""
        return self.address in HOLD_ADDRESSES

    def line(self) -> str:
        return f"IN {self.addrtype} {self.address}"


@dataclass(frozen=True)
class RtpMap:
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @property
    def recordable(self) -> bool:
        return (self.encoding.upper() in RECORDABLE and self.clock_rate == 8000
                and self.channels in (None, 1))

    @property
    def telephone_event(self) -> bool:
        return self.encoding.lower() == TELEPHONE_EVENT and self.clock_rate == 8000


Line = tuple[str, str]


class _Section:
    """Lines of the session part or of one m= section, in order, without v=/o=/m=."""

    lines: list[Line]

    def values(self, kind: str) -> list[str]:
        return [v for k, v in self.lines if k == kind]

    def attributes(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for k, v in self.lines:
            if k == "a":
                name, sep, value = v.partition(":")
                out.append((name, value if sep else None))
        return out

    def attribute(self, name: str) -> str | None:
        """Value of the first a=name:value (or "" for a flag a=name), None when absent."""
        for n, v in self.attributes():
            if n == name:
                return "" if v is None else v
        return None

    @property
    def connection(self) -> Connection | None:
        cs = self.values("c")
        return _parse_connection(cs[0]) if cs else None

    @connection.setter
    def connection(self, conn: Connection) -> None:
        for i, (k, _) in enumerate(self.lines):
            if k == "c":
                self.lines[i] = ("c", conn.line())
                return
        # RFC 4566 order: c= comes after i=/u=/e=/p= (session) or i= (media), before b=/t=/a=.
        at = next((i for i, (k, _) in enumerate(self.lines) if k not in "siuep"), len(self.lines))
        self.lines.insert(at, ("c", conn.line()))

    @property
    def direction(self) -> str | None:
        found = [n for n, v in self.attributes() if n in DIRECTIONS and v is None]
        return found[-1] if found else None

    def drop_attributes(self, names: frozenset[str]) -> None:
        self.lines = [(k, v) for k, v in self.lines
                      if not (k == "a" and v.partition(":")[0] in names)]


@dataclass
class Media(_Section):
    kind: str
    port: int
    port_count: int | None
    proto: str
    formats: list[str]
    lines: list[Line] = field(default_factory=list)

    def line(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        return " ".join([self.kind, port, self.proto, *self.formats])

    @property
    def is_rtp(self) -> bool:
        return self.proto in RTP_PROTOS

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type → encoding, for the formats of this m= line (static ones included)."""
        if not self.is_rtp:
            return {}
        maps = {pt: RtpMap(pt, *_STATIC[pt]) for pt in map(int, self.formats) if pt in _STATIC}
        for n, v in self.attributes():
            if n == "rtpmap" and v is not None:
                m = _parse_rtpmap(v)
                maps[m.payload_type] = m
        listed = {int(f) for f in self.formats}
        return {pt: m for pt, m in maps.items() if pt in listed}

    def fmtp(self, payload_type: int) -> str | None:
        for n, v in self.attributes():
            if n == "fmtp" and v is not None:
                pt, _, params = v.partition(" ")
                if pt == str(payload_type):
                    return params.strip()
        return None

    @property
    def ptime(self) -> int | None:
        v = self.attribute("ptime")
        if v is None:
            return None
        try:
            ms = round(float(v))  # "20" almost always; some stacks write "20.0"
        except ValueError:
            raise SdpError(f"bad a=ptime: {v!r}") from None
        if not 1 <= ms <= 1000:
            raise SdpError(f"bad a=ptime: {v!r}")
        return ms


@dataclass
class SessionDescription(_Section):
    origin: Origin
    lines: list[Line] = field(default_factory=list)  # session level, after o=
    media: list[Media] = field(default_factory=list)

    def serialize(self) -> str:
        out = ["v=0", f"o={self.origin.line()}"]
        out += [f"{k}={v}" for k, v in self.lines]
        for m in self.media:
            out.append(f"m={m.line()}")
            out += [f"{k}={v}" for k, v in m.lines]
        return "\r\n".join(out) + "\r\n"

    def copy(self) -> SessionDescription:
        return copy.deepcopy(self)

    def connection_of(self, media: Media) -> Connection | None:
        return media.connection or self.connection

    def direction_of(self, media: Media) -> str:
        """RFC 3264 §5.1: a media-level direction wins, then the session's, else sendrecv."""
        return media.direction or self.direction or "sendrecv"


# -- parsing ------------------------------------------------------------------------------


def parse(body: bytes | str) -> SessionDescription:
    """Parse an SDP body. CRLF or bare LF line ends (RFC 4566 §5 asks parsers to accept LF)."""
    if isinstance(body, bytes):
        if len(body) > MAX_SDP_BYTES:
            raise SdpError(f"SDP larger than {MAX_SDP_BYTES} bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8") from None
    else:
        text = body
        if len(text.encode("utf-8", "surrogatepass")) > MAX_SDP_BYTES:
            raise SdpError(f"SDP larger than {MAX_SDP_BYTES} bytes")
    raw = text.split("\n")
    if len(raw) > MAX_LINES + 2:  # + the empty strings after a final newline
        raise SdpError(f"SDP has more than {MAX_LINES} lines")
    lines = [r[:-1] if r.endswith("\r") else r for r in raw]
    while lines and lines[-1] == "":  # a trailing CRLF (or two) ends the body
        lines.pop()
    if len(lines) > MAX_LINES:
        raise SdpError(f"SDP has more than {MAX_LINES} lines")
    parsed: list[Line] = []
    for n, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise SdpError(f"line {n} longer than {MAX_LINE_CHARS} characters")
        m = _LINE.fullmatch(line)
        if m is None:
            raise SdpError(f"line {n} is not <type>=<value>: {line[:40]!r}")
        if _BAD_CHARS.search(m.group(2)):
            raise SdpError(f"control character in line {n}")
        parsed.append((m.group(1), m.group(2)))
    if not parsed or parsed[0] != ("v", "0"):
        raise SdpError("SDP must start with v=0")
    if len(parsed) < 3 or parsed[1][0] != "o":
        raise SdpError("o= must follow v=0")
    sdp = SessionDescription(origin=_parse_origin(parsed[1][1]))
    section: _Section = sdp
    for kind, value in parsed[2:]:
        if kind in "vo":
            raise SdpError(f"{kind}= may appear only once, at the top")
        if kind == "m":
            if len(sdp.media) >= MAX_MEDIA:
                raise SdpError(f"more than {MAX_MEDIA} m= lines")
            media = _parse_media(value)
            sdp.media.append(media)
            section = media
            continue
        if kind == "s" and section is not sdp:
            raise SdpError("s= in a media section")
        if kind == "c":
            _parse_connection(value)
            if section.values("c"):
                raise SdpError("two c= lines in one section")
        if kind == "a":
            _check_attribute(value)
        section.lines.append((kind, value))
    if len(sdp.values("s")) != 1:
        raise SdpError("exactly one s= line is required")
    for stream in sdp.media:
        if stream.port != 0 and sdp.connection_of(stream) is None:
            raise SdpError(f"no c= for the {stream.kind} stream (RFC 4566 §5.7)")
        if stream.is_rtp:
            stream.rtpmaps()  # validates every a=rtpmap of the section
    return sdp


def _parse_origin(value: str) -> Origin:
    f = value.split(" ")
    if len(f) != 6 or f[3] != "IN" or f[4] not in ("IP4", "IP6"):
        raise SdpError(f"bad o= line: {value[:80]!r}")
    if not _TOKEN.fullmatch(f[0]) or not _DIGITS.fullmatch(f[1]) or not _DIGITS.fullmatch(f[2]):
        raise SdpError(f"bad o= line: {value[:80]!r}")
    _check_address(f[4], f[5])
    return Origin(f[0], f[1], int(f[2]), f[4], f[5])


def _parse_connection(value: str) -> Connection:
    f = value.split(" ")
    if len(f) != 3 or f[0] != "IN" or f[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line: {value[:80]!r}")
    _check_address(f[1], f[2].split("/", 1)[0])
    return Connection(f[1], f[2])


def _check_address(addrtype: str, address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if not _HOST.fullmatch(address) or address.replace(".", "").isdigit():
            raise SdpError(f"bad address: {address[:60]!r}") from None
        return  # an FQDN (RFC 4566 allows it; resolving it is the signalling layer's job)
    if (ip.version == 4) != (addrtype == "IP4"):
        raise SdpError(f"{address} is not an {addrtype} address")


def _parse_media(value: str) -> Media:
    f = value.split(" ")
    if len(f) < 4 or not _TOKEN.fullmatch(f[0]) or not _TOKEN.fullmatch(f[2].replace("/", "")):
        raise SdpError(f"bad m= line: {value[:80]!r}")
    port_s, _, count_s = f[1].partition("/")
    if not port_s.isdigit() or len(port_s) > 5 or int(port_s) > 65535:
        raise SdpError(f"bad m= port: {f[1][:20]!r}")
    count = None
    if count_s:
        if not count_s.isdigit() or len(count_s) > 3 or int(count_s) == 0:
            raise SdpError(f"bad m= port count: {f[1][:20]!r}")
        count = int(count_s)
    formats = f[3:]
    if len(formats) > MAX_FORMATS:
        raise SdpError(f"more than {MAX_FORMATS} formats on an m= line")
    media = Media(kind=f[0], port=int(port_s), port_count=count, proto=f[2], formats=formats)
    for fmt in formats:
        if not _TOKEN.fullmatch(fmt):
            raise SdpError(f"bad format {fmt[:20]!r}")
        if media.is_rtp and not (fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127):
            raise SdpError(f"RTP payload type out of range: {fmt[:20]!r}")
    return media


def _check_attribute(value: str) -> None:
    name, sep, rest = value.partition(":")
    if not _TOKEN.fullmatch(name):
        raise SdpError(f"bad attribute name: {value[:40]!r}")
    if name in DIRECTIONS and sep:
        raise SdpError(f"a={name} takes no value")
    if name == "rtpmap":
        _parse_rtpmap(rest)
    elif name == "fmtp" and not re.fullmatch(r"[0-9]{1,3} .*", rest):
        raise SdpError(f"bad a=fmtp: {rest[:40]!r}")


def _parse_rtpmap(value: str) -> RtpMap:
    m = _RTPMAP.fullmatch(value)
    if m is None or int(m.group(1)) > 127 or (m.group(3) is not None and int(m.group(3)) == 0):
        raise SdpError(f"bad a=rtpmap: {value[:60]!r}")
    ch = m.group(4)
    return RtpMap(int(m.group(1)), m.group(2), int(m.group(3) or 0), int(ch) if ch else None)


# -- offer/answer -------------------------------------------------------------------------


def restrict_offer(offer: SessionDescription) -> SessionDescription:
    """A copy of `offer` with one audio stream left, holding only PCMU, PCMA and one
    telephone-event/8000 (its fmtp, e.g. 0-15 or 0-16, kept). Every other stream (a second
    audio, video, T.38 image, SRTP audio) gets port 0, RFC 3264's "declined", so the answer
    keeps the m= lines in step. Raises `NotRecordableError` when no audio stream offers
    PCMU or PCMA."""
    out = offer.copy()
    chosen: Media | None = None
    for m in out.media:
        if chosen is None and m.kind == "audio" and m.port != 0 and m.is_rtp:
            maps = m.rtpmaps()
            keep = [f for f in m.formats if int(f) in maps and maps[int(f)].recordable]
            events = [f for f in m.formats if int(f) in maps and maps[int(f)].telephone_event]
            if keep:
                keep += events[:1]
                kept = set(keep)
                m.formats = [f for f in m.formats if f in kept]  # the offerer's preference
                m.lines = [(k, v) for k, v in m.lines
                           if not (k == "a" and v.partition(":")[0] in _PT_ATTRS
                                   and v.partition(":")[2].split(" ", 1)[0] not in kept
                                   and not v.startswith("rtcp-fb:*"))]
                chosen = m
                continue
        m.port = 0
        m.port_count = None
    if chosen is None:
        raise NotRecordableError("no audio stream with PCMU or PCMA in the offer")
    return out


def box_offer(address: str, port: int) -> SessionDescription:
    """The box's own offer, for a caller that sent none (a late offer: its INVITE had no
    SDP): what the box records (PCMU, PCMA) and RFC 4733 keys, received at the relay."""
    family = "IP6" if ":" in address else "IP4"
    return parse(
        f"v=0\r\no=- 0 0 IN {family} {address}\r\ns=-\r\nc=IN {family} {address}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")


def anchor_media(sdp: SessionDescription, address: str, port: int) -> SessionDescription:
    """A copy of `sdp` whose active audio streams are received at the relay `address`:`port`.

    A hold address (c=0.0.0.0, RFC 2543) is kept as it is: it is the signal that the sender
    wants no media, and replacing it with the relay's address would undo the hold. ICE and
    a=rtcp lines go: they name the peer's own addresses, and media following them would
    bypass the relay (and the recording); RTCP then goes to port + 1, on the relay."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(f"relay address must be an IP address: {address!r}") from None
    if not 0 < port < 65536:
        raise SdpError(f"bad relay port {port}")
    relay = Connection("IP4" if ip.version == 4 else "IP6", str(ip))
    out = sdp.copy()
    session_c = out.connection
    if session_c is not None and not session_c.is_hold:
        out.connection = relay
    out.drop_attributes(_BYPASS_ATTRS)
    for m in out.media:
        if m.kind != "audio" or m.port == 0:
            continue
        m.port = port
        m.port_count = None
        m.drop_attributes(_BYPASS_ATTRS)
        own = m.connection
        if own is not None and not own.is_hold:
            m.connection = relay
        # Without its own c=, the stream uses the session's: the relay, or a hold address.
    return out


class SdpOriginator:
    """The o= line the box puts on the SDP it sends to one peer (one per call leg).

    The box is a party to each leg's SDP session, so the peer sees one originator, one
    session id and versions that follow RFC 3264 §8: + 1 when the description changes,
    the same version when it is sent again unchanged (a session-timer refresh, RFC 4028).
    Copying the other peer's o= would break that as soon as the box changes something on
    its own (a new relay port, hold, the announcement) or the peers number differently."""

    def __init__(self, session_id: int, address: str, username: str = "callrec",
                 first_version: int = 1) -> None:
        if not 0 <= session_id < 10**20 or first_version < 0:
            raise ValueError("session id and version are non-negative integers")
        ip = ipaddress.ip_address(address)
        self._origin = Origin(username, str(session_id), first_version,
                              "IP4" if ip.version == 4 else "IP6", str(ip))
        self._last: str | None = None

    @property
    def version(self) -> int:
        return self._origin.version

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        out = sdp.copy()
        body = out.serialize().split("\r\n", 2)[2]  # all but v= and o=
        if self._last is not None and body != self._last:
            self._origin = Origin(self._origin.username, self._origin.session_id,
                                  self._origin.version + 1, self._origin.addrtype,
                                  self._origin.address)
        self._last = body
        out.origin = self._origin
        return out


@dataclass(frozen=True)
class MediaState:
    """What one SDP (an answer, or an offer in a re-INVITE) says about the call's audio."""

    payload_type: int  # the first recordable format: what the answerer will send
    codec: str  # "PCMU" or "PCMA"
    codecs: dict[int, str]  # every recordable payload type listed (a sender may switch)
    telephone_event_pt: int | None
    direction: str  # sendrecv, sendonly, recvonly or inactive, as declared by this SDP
    on_hold: bool  # sendonly / inactive / c=0.0.0.0: the sender of this SDP holds the call
    address: str
    port: int
    ptime: int | None


def read_media(sdp: SessionDescription, offer: SessionDescription | None = None) -> MediaState:
    """The audio stream of an answer (or re-INVITE offer), restricted to what is recordable.
    `NotRecordableError` when the audio stream was declined (port 0) or carries no G.711.

    With the `offer` it answers, the answer is checked against RFC 3264 §6: as many m= lines,
    and no payload type that was not offered (`SdpError`). An answerer that lists G.729
    before PCMU where only PCMU was offered may well send G.729, which the box would receive
    as packets it cannot decode: better refused than recorded as silence."""
    if offer is not None:
        if len(offer.media) != len(sdp.media):
            raise SdpError("the answer's m= lines do not match the offer's")
        for o, a in zip(offer.media, sdp.media, strict=True):
            if a.port != 0 and a.is_rtp and not set(a.formats) <= set(o.formats):
                raise SdpError(f"the answer uses payload types not offered: {a.formats}")
    for m in sdp.media:
        if m.kind != "audio" or m.port == 0 or not m.is_rtp:
            continue
        maps = m.rtpmaps()
        codecs = {int(f): maps[int(f)].encoding.upper() for f in m.formats
                  if int(f) in maps and maps[int(f)].recordable}
        if not codecs:
            continue
        events = [int(f) for f in m.formats if int(f) in maps and maps[int(f)].telephone_event]
        conn = sdp.connection_of(m)
        assert conn is not None  # parse() refuses an active stream without c=
        direction = sdp.direction_of(m)
        pt = next(iter(codecs))
        return MediaState(
            payload_type=pt, codec=codecs[pt], codecs=codecs,
            telephone_event_pt=events[0] if events else None, direction=direction,
            on_hold=direction in ("sendonly", "inactive") or conn.is_hold,
            address=conn.address, port=m.port, ptime=m.ptime)
    raise NotRecordableError("no active audio stream with PCMU or PCMA")
