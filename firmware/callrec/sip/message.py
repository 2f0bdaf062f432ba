"""SIP messages (RFC 3261 7, 18.3, 25): one UDP datagram in, a Request or Response out. Pure.

`parse_datagram` frames and checks what every SIP element must check before acting: the start
line, the header fields the transaction layer reads (Via, From, To, Call-ID, CSeq, Max-Forwards,
Content-Length), and Content-Length against the datagram. Every other header is kept exactly as
received (unfolded), in order, so a forwarded message carries what the office's phone or the
provider sent. Anything wrong raises `SipParseError`; nothing else escapes, whatever the bytes.

The error says what to do: when the datagram was a request that still names everything a
stateless 400 must echo (RFC 3261 8.2.6.2: Via, From, To, Call-ID, CSeq), `error.answer` holds
those values and the caller answers "400 <reason>"; otherwise (`answer is None`) the datagram is
dropped: a malformed response is never answered (RFC 3261 18.1.2), and a 400 that cannot be
routed back or matched is noise, or the reflection a flood wants.

Limits (why these numbers):
- MAX_DATAGRAM, 65,535 bytes: the largest UDP payload. RFC 3261 18.1.1 sends anything near the
  path MTU over TCP, so real requests are 1-4 KB; the limit only bounds memory and time.
- MAX_HEADERS, 200 fields; MAX_LINE, 8 KiB per unfolded field or start line. RFC 4475's long
  message ("longreq") has 47 fields and 600-byte lines; a real INVITE has 10-30 fields.
- MAX_LIST_VALUES, 100 values of Via/Contact/Route/Record-Route together: a loop or an attack
  beyond that, and each value is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from callrec.sip import headers as h
from callrec.sip.uri import SipUri, Uri, UriError, number_of_uri, parse_uri

__all__ = [
    "MAX_DATAGRAM",
    "MAX_HEADERS",
    "MAX_LINE",
    "MAX_LIST_VALUES",
    "BadRequest",
    "Header",
    "Headers",
    "Message",
    "Request",
    "Response",
    "SipParseError",
    "called_number",
    "caller_number",
    "canonical_name",
    "number_of_header",
    "parse_datagram",
]

MAX_DATAGRAM = 65_535
MAX_HEADERS = 200
MAX_LINE = 8_192
MAX_LIST_VALUES = 100

# RFC 3261 7.3.3 and the extensions' compact forms (IANA "Header Fields" registry).
COMPACT = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact",
    "k": "supported", "l": "content-length", "m": "contact", "n": "identity-info",
    "o": "event", "r": "refer-to", "s": "subject", "t": "to", "u": "allow-events", "v": "via",
    "x": "session-expires", "y": "identity",
}
# How the serializer writes the fields it knows; unknown ones keep the name as received.
_CANONICAL = {name.lower(): name for name in (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "MIME-Version",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route",
    "Refer-To", "Referred-By", "Reject-Contact", "Remote-Party-ID", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "RAck", "Server",
    "Session-Expires", "Subject", "Supported", "Timestamp", "To", "Unsupported", "User-Agent",
    "Via", "Warning", "WWW-Authenticate",
)}
_LIST_HEADERS = ("via", "contact", "route", "record-route")
_SINGLE = ("from", "to", "call-id", "cseq", "max-forwards", "content-length")
_REQUIRED = ("via", "from", "to", "call-id", "cseq")

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_VERSION_RE = re.compile(r"SIP/[0-9]{1,3}\.[0-9]{1,3}", re.IGNORECASE)
_STATUS_RE = re.compile(r"(SIP/[0-9]{1,3}\.[0-9]{1,3}) ([0-9]{3}) (.*)", re.IGNORECASE | re.DOTALL)
_HEADER_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:(.*)", re.DOTALL)
# Bytes that may not appear in a start line or header field outside a body: CTLs except HT.
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def canonical_name(name: str) -> str:
    """The comparison key of a header name: lower case, compact form expanded."""
    lower = name.lower()
    return COMPACT.get(lower, lower)


@dataclass(frozen=True)
class BadRequest:
    """What a stateless 400 to a malformed request echoes (RFC 3261 8.2.6.2), as received."""

    via: tuple[str, ...]
    from_: str
    to: str
    call_id: str
    cseq: str


class SipParseError(ValueError):
    """A datagram that is not a usable SIP message. `answer` is None: drop it; otherwise
    answer 400 (`reason` makes a fine reason phrase: it never quotes the message)."""

    def __init__(self, reason: str, answer: BadRequest | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer

    @property
    def action(self) -> str:
        return "drop" if self.answer is None else "answer 400"


@dataclass(frozen=True)
class Header:
    name: str  # as received (or as set)
    value: str  # folding replaced by one space, outer whitespace removed


class Headers:
    """An ordered multi-map of header fields, looked up by case-insensitive name with compact
    forms expanded ("v" is "Via")."""

    def __init__(self, fields: list[Header] | None = None) -> None:
        self._fields: list[Header] = list(fields or [])

    def __iter__(self) -> Iterator[Header]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._keyed() == other._keyed()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _keyed(self) -> list[tuple[str, str]]:
        return [(canonical_name(f.name), f.value) for f in self._fields]

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [f.value for f in self._fields if canonical_name(f.name) == key]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def values(self, name: str) -> list[str]:
        """Every value of a list header, comma-separated ones split (Via, Contact, Route)."""
        return [v for raw in self.get_all(name) for v in h.split_list(raw)]

    def add(self, name: str, value: str) -> None:
        self._fields.append(Header(name, value))

    def prepend(self, name: str, value: str) -> None:
        self._fields.insert(0, Header(name, value))

    def remove(self, name: str) -> int:
        key = canonical_name(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if canonical_name(f.name) != key]
        return before - len(self._fields)

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, where the first one was (else at the end)."""
        key = canonical_name(name)
        for n, f in enumerate(self._fields):
            if canonical_name(f.name) == key:
                self._fields[n] = Header(name, value)
                self._fields[n + 1 :] = [
                    g for g in self._fields[n + 1 :] if canonical_name(g.name) != key
                ]
                return
        self.add(name, value)


@dataclass(eq=True)
class Message:
    version: str
    headers: Headers
    body: bytes = field(default=b"")

    # Typed views of the fields the parser checked; they raise h.HeaderError if the headers
    # were changed into something invalid after parsing.
    @property
    def vias(self) -> list[h.Via]:
        return [h.parse_via(v) for v in self.headers.values("via")]

    @property
    def from_(self) -> h.NameAddr:
        return h.parse_name_addr(self.headers.get("from") or "")

    @property
    def to(self) -> h.NameAddr:
        return h.parse_name_addr(self.headers.get("to") or "")

    @property
    def call_id(self) -> str:
        return h.parse_call_id(self.headers.get("call-id") or "")

    @property
    def cseq(self) -> h.CSeq:
        return h.parse_cseq(self.headers.get("cseq") or "")

    @property
    def max_forwards(self) -> int | None:
        raw = self.headers.get("max-forwards")
        return None if raw is None else h.parse_max_forwards(raw)

    @property
    def contacts(self) -> list[h.NameAddr]:
        return [h.parse_name_addr(v) for v in self.headers.values("contact") if v != "*"]

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Canonical bytes: CRLF line ends, one field per line (no folding), known names in
        their long canonical spelling, unknown fields as received, and a Content-Length that
        is the body's length (added if absent: RFC 3261 20.14 makes it a SHOULD on UDP)."""
        lines = [self._start_line()]
        has_length = False
        for f in self.headers:
            key = canonical_name(f.name)
            name = _CANONICAL.get(key, f.name)
            value = f.value
            if key == "content-length":
                if has_length:
                    continue
                has_length, value = True, str(len(self.body))
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=True)
class Request(Message):
    method: str = ""
    uri: str = ""  # the Request-URI as received

    @property
    def request_uri(self) -> Uri:
        return parse_uri(self.uri)

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(eq=True)
class Response(Message):
    status: int = 0
    reason: str = ""

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    """Start line + unfolded header lines, and the bytes after the empty line."""
    # RFC 3261 7.5: CRLFs before the start line are ignored (keep-alives, stream leftovers).
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("no end of header section")
    head = data[start:end].decode("utf-8", "surrogateescape")
    rest = data[end + 4 :]
    lines: list[str] = []
    for physical in head.split("\r\n"):
        if physical[:1] in (" ", "\t") and lines:
            # Folding: CRLF followed by whitespace is one space (RFC 3261 7.3.1).
            lines[-1] = lines[-1].rstrip(" \t") + " " + physical.lstrip(" \t")
        else:
            lines.append(physical)
        if len(lines[-1]) > MAX_LINE:
            raise SipParseError("header field too long")
        if len(lines) > MAX_HEADERS + 1:
            raise SipParseError("too many header fields")
    return lines, rest


def _parse_headers(lines: list[str]) -> Headers:
    fields: list[Header] = []
    for line in lines:
        m = _HEADER_RE.fullmatch(line)
        if not m:
            raise SipParseError("header field without a name and ':'")
        value = m.group(2).strip(" \t")
        if _CTL_RE.search(value) and not _ctl_only_quoted(value):
            raise SipParseError("control character in a header field")
        fields.append(Header(m.group(1), value))
    return Headers(fields)


def _ctl_only_quoted(value: str) -> bool:
    """True if every control character is inside a quoted-pair of a quoted string, where RFC
    3261 25.1 allows them (RFC 4475 "intmeth" quotes a NUL, a BEL and a DEL)."""
    inside = False
    i = 0
    while i < len(value):
        c = value[i]
        if inside and c == "\\" and i + 1 < len(value):
            i += 2
            continue
        if c == '"':
            inside = not inside
        elif _CTL_RE.match(c):
            return False
        i += 1
    return True


def _answer_for(lines: list[str]) -> BadRequest | None:
    """What a 400 needs, read leniently from header lines of a request that failed a check."""
    found: dict[str, list[str]] = {k: [] for k in _REQUIRED}
    for line in lines[1:]:
        m = _HEADER_RE.fullmatch(line)
        if m and canonical_name(m.group(1)) in found:
            found[canonical_name(m.group(1))].append(m.group(2).strip(" \t"))
    if any(not values for values in found.values()):
        return None
    return BadRequest(tuple(found["via"]), found["from"][0], found["to"][0],
                      found["call-id"][0], found["cseq"][0])


def _body(headers: Headers, rest: bytes) -> bytes:
    lengths = headers.get_all("content-length")
    if len(lengths) > 1:  # RFC 4475 "mcl01"
        raise h.HeaderError("more than one Content-Length")
    if not lengths:
        return rest  # RFC 3261 18.3: on UDP, the body runs to the end of the datagram
    length = h.parse_content_length(lengths[0])
    if length > len(rest):  # "clerr": the rest was lost; never guess
        raise h.HeaderError("Content-Length larger than the datagram")
    return rest[:length]  # extra octets are discarded (18.3; "dblreq")


def _check(message: Message) -> None:
    """The header checks every element needs before a transaction can exist."""
    hd = message.headers
    for key in _SINGLE:
        if len(hd.get_all(key)) > 1:
            raise h.HeaderError(f"more than one {_CANONICAL[key]}")
    for key in _REQUIRED:
        if not hd.get_all(key):
            raise h.HeaderError(f"missing {_CANONICAL[key]}")
    if sum(len(hd.values(k)) for k in _LIST_HEADERS) > MAX_LIST_VALUES:
        raise h.HeaderError("too many Via/Contact/Route values")
    # CSeq first: it is the field RFC 4475 "scalar02" is refused for (its Max-Forwards is
    # overlarge too), so the reason phrase names it.
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise h.HeaderError("CSeq method differs from the request's")  # "mismatch01/02"
    message.vias  # noqa: B018  # each property parses (and so checks) its field
    message.from_  # noqa: B018
    message.to  # noqa: B018
    message.call_id  # noqa: B018
    message.max_forwards  # noqa: B018
    contacts = hd.values("contact")
    if contacts != ["*"]:
        message.contacts  # noqa: B018
    for key in ("route", "record-route"):
        for value in hd.values(key):
            if not h.parse_name_addr(value).bracketed:
                raise h.HeaderError(f"{_CANONICAL[key]} without <>")  # RFC 3261 20.30, 20.34


def parse_datagram(data: bytes) -> Request | Response:
    """Parse one UDP datagram. Raises SipParseError, and nothing else, on any input."""
    if len(data) > MAX_DATAGRAM:
        raise SipParseError("message too large")
    lines, rest = _split_head(data)
    start = lines[0]
    is_response = start[:4].upper() == "SIP/"
    try:
        if _CTL_RE.search(start):
            raise SipParseError("control character in the start line")
        headers = _parse_headers(lines[1:])
        body = _body(headers, rest)
        message: Request | Response
        if is_response:
            m = _STATUS_RE.fullmatch(start)
            if not m or not 100 <= int(m.group(2)) <= 699:  # "bigcode"
                raise SipParseError("bad status line")
            message = Response(m.group(1).upper(), headers, body, int(m.group(2)), m.group(3))
        else:
            # Exactly one SP between the three elements (RFC 3261 25.1; RFC 4475 "lwsstart",
            # "trws", "lwsruri"): leniency here would forward a line other elements reject.
            parts = start.split(" ")
            if len(parts) != 3 or not _TOKEN_RE.fullmatch(parts[0]):
                raise SipParseError("bad request line")
            method, uri_text, version = parts
            if not _VERSION_RE.fullmatch(version):
                raise SipParseError("bad SIP version")
            try:
                uri = parse_uri(uri_text)  # "<sip:...>" ("ltgtruri") has no scheme: refused
            except UriError as exc:
                raise SipParseError(f"bad Request-URI: {exc}") from None
            if isinstance(uri, SipUri) and uri.headers:
                # RFC 3261 19.1.1: headers are not allowed in a Request-URI ("escruri").
                raise SipParseError("headers in the Request-URI")
            message = Request(version.upper(), headers, body, method, uri_text)
        _check(message)
        return message
    except (SipParseError, h.HeaderError, UriError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, SipParseError) else str(exc)
        answer = None if is_response else _answer_for(lines)
        raise SipParseError(reason, answer) from None


def number_of_header(value: str | None) -> str | None:
    """The phone number in a From/To/P-Asserted-Identity value (its first name-addr)."""
    if not value:
        return None
    try:
        return number_of_uri(h.parse_name_addr(h.split_list(value)[0]).uri)
    except (h.HeaderError, UriError):
        return None


def caller_number(message: Message, trust_asserted: bool = True) -> str | None:
    """The caller's number: P-Asserted-Identity (RFC 3325: set by the trunk, trusted only
    from it, hence the flag) else From. Digits with an optional '+', for normalise_number."""
    if trust_asserted:
        for value in message.headers.get_all("p-asserted-identity"):
            for item in _safe_split(value):
                number = number_of_header(item)
                if number:
                    return number
    return number_of_header(message.headers.get("from"))


def called_number(message: Message) -> str | None:
    """The called number: the Request-URI of a request (what was dialled, as the trunk or the
    phone routes it), else To (where a proxy rewrote the Request-URI to a non-number)."""
    if isinstance(message, Request):
        try:
            number = number_of_uri(parse_uri(message.uri))
        except UriError:
            number = None
        if number:
            return number
    return number_of_header(message.headers.get("to"))


def _safe_split(value: str) -> list[str]:
    try:
        return h.split_list(value)
    except h.HeaderError:
        return []
