"""Parsers of the header fields the SIP layer acts on (RFC 3261 20, 25.1). Pure.

Each takes one header value as `message.Headers` holds it (folding already replaced by a
space) and returns a frozen value, or raises `HeaderError`. They scan left to right with
bounded work per character: quoted strings and <> are matched by a loop, never by nested
regular expressions, so hostile input (thousands of quotes or brackets) costs linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callrec.sip.uri import Uri, UriError, parse_uri

__all__ = [
    "CSeq",
    "Challenge",
    "HeaderError",
    "NameAddr",
    "Params",
    "Via",
    "parse_call_id",
    "parse_challenge",
    "parse_content_length",
    "parse_cseq",
    "parse_max_forwards",
    "parse_name_addr",
    "parse_params",
    "parse_via",
    "split_list",
    "unquote_string",
]

# RFC 3261 25.1 token and word: the characters allowed in methods, parameter names, tags...
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_WORD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+")
# A parameter value that is neither quoted nor an IPv6 reference: a token, or a host[:port]
# (maddr, received) whose ':' is not a token character.
_PVALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:]+")
_LWS = " \t"
# CSeq numbers are below 2**31 (RFC 3261 8.1.1.5); Max-Forwards fits in 0-255 (RFC 4475 3.1.2.4).
MAX_CSEQ = 2**31 - 1
MAX_MAX_FORWARDS = 255
# A body larger than any datagram needs no more digits than this; more is an attack or a bug.
_CL_DIGITS = 10


class HeaderError(ValueError):
    """A header value that breaks the grammar of its header field."""


Params = tuple[tuple[str, str | None], ...]


def _skip_lws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _LWS:
        i += 1
    return i


def _quoted_end(text: str, i: int) -> int:
    """Index just after the quoted string starting at text[i] == '"' (quoted-pair aware)."""
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\":
            if j + 1 >= len(text) or text[j + 1] in "\r\n":
                break
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    raise HeaderError("unterminated quoted string")


def unquote_string(quoted: str) -> str:
    """The text of a quoted-string, quoted-pairs resolved (a NUL stays a NUL)."""
    inner = quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(inner):
        if inner[i] == "\\":
            i += 1
        out.append(inner[i])
        i += 1
    return "".join(out)


def split_list(value: str) -> list[str]:
    """Split a header holding several values (Via, Contact, Route...) on the commas that are
    outside quoted strings and <>. An empty element ("a,,b") is an error: RFC 3261 7.3.1
    allows commas only between values."""
    parts: list[str] = []
    start = i = 0
    while i < len(value):
        c = value[i]
        if c == '"':
            i = _quoted_end(value, i)
            continue
        if c == "<":
            end = value.find(">", i)
            if end < 0:
                raise HeaderError("unbalanced <")
            i = end + 1
            continue
        if c == ",":
            parts.append(value[start:i].strip(_LWS))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(_LWS))
    if any(not p for p in parts):
        raise HeaderError("empty list element")
    return parts


def parse_params(text: str) -> Params:
    """`*( SEMI name [EQUAL value] )` with LWS allowed around ';' and '='. Values are tokens,
    hosts (IPv6 references included) or quoted strings (kept with their quotes). Names are
    returned in lower case; ";;" is an error (RFC 4475 "badinv01")."""
    out: list[tuple[str, str | None]] = []
    i = _skip_lws(text, 0)
    while i < len(text):
        if text[i] != ";":
            raise HeaderError("expected ';'")
        i = _skip_lws(text, i + 1)
        m = _TOKEN_RE.match(text, i)
        if not m:
            raise HeaderError("empty parameter")
        name = m.group().lower()
        i = _skip_lws(text, m.end())
        value: str | None = None
        if i < len(text) and text[i] == "=":
            i = _skip_lws(text, i + 1)
            if i < len(text) and text[i] == '"':
                end = _quoted_end(text, i)
                value, i = text[i:end], end
            elif i < len(text) and text[i] == "[":
                end = text.find("]", i)
                if end < 0:
                    raise HeaderError("unterminated IPv6 reference")
                value, i = text[i : end + 1], end + 1
            else:
                vm = _PVALUE_RE.match(text, i)
                if not vm:
                    raise HeaderError("empty parameter value")
                value, i = vm.group(), vm.end()
            i = _skip_lws(text, i)
        out.append((name, value))
    return tuple(out)


def _param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value if value is not None else ""
    return None


@dataclass(frozen=True)
class Via:
    protocol: str  # "SIP/2.0" (RFC 4475 "badvers" has "SIP/7.0": parsed, answered 505)
    transport: str  # upper case; unknown ones are legal ("transports")
    host: str
    port: int | None
    params: Params

    @property
    def branch(self) -> str | None:
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _param(self.params, "received")

    @property
    def rport(self) -> str | None:
        """"" when present without a value (RFC 3581: the client asks for it)."""
        return _param(self.params, "rport")


_VIA_RE = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)


def parse_via(value: str) -> Via:
    """One via-parm (split the header with `split_list` first)."""
    m = _VIA_RE.match(value)
    if not m:
        raise HeaderError("bad Via")
    port = int(m.group(5)) if m.group(5) else None
    if port is not None and port > 65535:
        raise HeaderError("bad Via port")
    params = parse_params(value[m.end() :])
    return Via(f"{m.group(1).upper()}/{m.group(2)}", m.group(3).upper(), m.group(4).lower(),
               port, params)


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str


_CSEQ_RE = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)")


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value.strip(_LWS))
    if not m or int(m.group(1)) > MAX_CSEQ:  # RFC 4475 "scalar02"/"scalarlg": overlarge
        raise HeaderError("bad CSeq")
    return CSeq(int(m.group(1)), m.group(2))


def parse_max_forwards(value: str) -> int:
    text = value.strip(_LWS)
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_MAX_FORWARDS:
        raise HeaderError("bad Max-Forwards")
    return int(text)


def parse_content_length(value: str) -> int:
    text = value.strip(_LWS)
    if not re.fullmatch(rf"[0-9]{{1,{_CL_DIGITS}}}", text):  # "-999" (RFC 4475 "ncl")
        raise HeaderError("bad Content-Length")
    return int(text)


def parse_call_id(value: str) -> str:
    text = value.strip(_LWS)
    word, at, host = text.partition("@")
    if not _WORD_RE.fullmatch(word) or (at and not _WORD_RE.fullmatch(host)):
        raise HeaderError("bad Call-ID")
    return text


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, the URI, header parameters."""

    display: str | None  # quoted-pairs resolved; None when absent
    uri: Uri
    params: Params
    bracketed: bool  # name-addr (<...>) rather than addr-spec

    @property
    def tag(self) -> str | None:
        return _param(self.params, "tag")


def _uri_in_header(text: str) -> Uri:
    try:
        return parse_uri(text)
    except UriError as exc:
        raise HeaderError(f"bad URI: {exc}") from None


def parse_name_addr(value: str) -> NameAddr:
    """`( name-addr / addr-spec ) *( SEMI param )` (RFC 3261 20.10, 20.20, 20.39).

    Strict where RFC 4475 says a parser must notice: no LWS just inside <> ("badaspec"), a
    display name is tokens or one quoted string ("baddn", "quotbal"), and an addr-spec outside
    <> cannot hold ',', '?' or ';' of its own ("regbadct": its ';' start header parameters).
    """
    text = value.strip(_LWS)
    display: str | None = None
    if text.startswith('"'):
        end = _quoted_end(text, 0)
        display = unquote_string(text[:end])
        i = _skip_lws(text, end)
        if i >= len(text) or text[i] != "<":
            raise HeaderError("quoted display name without <URI>")
    else:
        i = text.find("<")
        if i > 0:
            name = text[:i].strip(_LWS)
            if any(not _TOKEN_RE.fullmatch(w) for w in name.split()):
                raise HeaderError("display name is neither tokens nor a quoted string")
            display = " ".join(name.split())
    if 0 <= i < len(text) and text[i] == "<":
        end = text.find(">", i)
        if end < 0:
            raise HeaderError("unbalanced <")
        inner = text[i + 1 : end]
        if not inner or inner != inner.strip(_LWS) or any(c in inner for c in " \t<\""):
            raise HeaderError("LWS or quotes inside <>")
        return NameAddr(display, _uri_in_header(inner), parse_params(text[end + 1 :]), True)
    # addr-spec: the URI ends at the first ';' or LWS; what follows is header parameters.
    m = re.compile(r"[^;, \t<>\"?]+").match(text)
    if not m:
        raise HeaderError("no URI")
    rest = text[m.end() :]
    if rest[:1] not in ("", ";", " ", "\t"):
        raise HeaderError("URI with ',', '?' or '<' outside <>")
    return NameAddr(None, _uri_in_header(m.group()), parse_params(rest), False)


@dataclass(frozen=True)
class Challenge:
    """WWW-Authenticate / Authorization / Proxy-* (RFC 3261 20.7, 20.44; RFC 7616 digest).
    Parsed only; quoted values are unquoted. Unknown schemes parse too ("regaut01")."""

    scheme: str
    params: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name.lower():
                return value
        return None


def parse_challenge(value: str) -> Challenge:
    text = value.strip(_LWS)
    m = _TOKEN_RE.match(text)
    if not m:
        raise HeaderError("no auth scheme")
    scheme, rest = m.group(), text[m.end() :].strip(_LWS)
    params: list[tuple[str, str]] = []
    for item in split_list(rest) if rest else []:
        name, eq, raw = item.partition("=")
        name, raw = name.strip(_LWS), raw.strip(_LWS)
        if not eq or not _TOKEN_RE.fullmatch(name) or not raw:
            raise HeaderError("bad auth parameter")
        if raw.startswith('"'):
            if _quoted_end(raw, 0) != len(raw):
                raise HeaderError("bad quoted auth parameter")
            raw = unquote_string(raw)
        elif not re.fullmatch(r"[!-~]+", raw) or '"' in raw:
            raise HeaderError("bad auth parameter value")
        params.append((name.lower(), raw))
    return Challenge(scheme, tuple(params))

