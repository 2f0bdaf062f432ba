"""SIP, SIPS and tel URIs (RFC 3261 19.1, RFC 3966), and the phone number they carry.

Pure. `parse_uri` keeps the text as received (`raw`) next to the parsed parts, so a message is
forwarded with its URIs untouched while decisions use the parsed, unescaped values. URIs of
other schemes (RFC 4475 "unkscm", "unksm2") are kept opaque: they are legal in SIP messages and
the element decides what to answer (416), not the parser.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "OtherUri",
    "SipUri",
    "TelUri",
    "Uri",
    "UriError",
    "number_of_uri",
    "parse_uri",
    "unescape",
]


class UriError(ValueError):
    """A URI that breaks RFC 3261 / RFC 3966 syntax."""


# Character classes of RFC 3261 25.1 (unreserved = alphanum / mark), written out so that each
# part of the URI is checked with one linear scan (no backtracking on hostile input).
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAMCHAR_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HNVCHAR_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# Opaque URIs of other schemes: anything visible except what would end them inside a header.
_OPAQUE_RE = re.compile(r"[!-~]+")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
# Visual separators of RFC 3966 5.1.1 (and the spaces people type), dropped from numbers.
_VISUAL = re.compile(r"[\-.()\s]")
_NUMERIC_USER = re.compile(r"\+?[0-9\-.() ]*[0-9][0-9\-.() ]*")


def unescape(text: str) -> str:
    """%-escapes decoded as UTF-8; bytes that are not UTF-8 come back as U+FFFD, never lost
    silently as a cut (RFC 4475 "escnull": %00 is a character like any other)."""
    return unquote(text, encoding="utf-8", errors="replace")


Param = tuple[str, str | None]


@dataclass(frozen=True)
class SipUri:
    scheme: str  # "sip" or "sips", lower case
    user: str | None  # unescaped
    password: str | None  # unescaped
    host: str  # lower case; an IPv6 reference keeps its brackets
    port: int | None
    params: tuple[Param, ...]  # names lower case, values unescaped
    headers: tuple[tuple[str, str], ...]  # unescaped
    raw: str

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name.lower():
                return value if value is not None else ""
        return None

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class TelUri:
    number: str  # as written, separators included
    params: tuple[Param, ...]
    raw: str

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class OtherUri:
    scheme: str  # lower case
    opaque: str
    raw: str

    def __str__(self) -> str:
        return self.raw


Uri = SipUri | TelUri | OtherUri


def _params(text: str, what: str) -> tuple[Param, ...]:
    """`;name[=value]` pairs; an empty one (";;") is a syntax error, not something to skip."""
    out: list[Param] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAMCHAR_RE.fullmatch(name) or (eq and not _PARAMCHAR_RE.fullmatch(value)):
            raise UriError(f"bad {what} parameter")
        out.append((unescape(name).lower(), unescape(value) if eq else None))
    return tuple(out)


def _host_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UriError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UriError("bad IPv6 reference") from None
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not _HOSTNAME_RE.fullmatch(host):
            raise UriError("bad host")
    if not rest:
        return host.lower(), None
    if not rest.startswith(":") or not _PORT_RE.fullmatch(rest[1:]) or int(rest[1:]) > 65535:
        raise UriError("bad port")
    return host.lower(), int(rest[1:])


def _parse_sip(scheme: str, rest: str, raw: str) -> SipUri:
    user = password = None
    at = rest.rfind("@")  # '@' is legal in the user part only when escaped, never after it
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, colon, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text) or not _PASSWORD_RE.fullmatch(password_text):
            raise UriError("bad user part")
        user = unescape(user_text)
        password = unescape(password_text) if colon else None
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = _host_port(hostport)
    params = _params(param_text, "URI") if semi else ()
    headers: list[tuple[str, str]] = []
    if qmark:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not eq or not _HNVCHAR_RE.fullmatch(name) or not name or not _HNVCHAR_RE.fullmatch(
                value
            ):
                raise UriError("bad URI header")
            headers.append((unescape(name), unescape(value)))
    return SipUri(scheme, user, password, host, port, params, tuple(headers), raw)


def parse_uri(text: str) -> Uri:
    """Parse one URI (no surrounding <>, no whitespace). Raises UriError."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme) or not rest:
        raise UriError("no scheme")
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return _parse_sip(lower, rest, text)
    if lower == "tel":
        number, semi, param_text = rest.partition(";")
        if not _TEL_NUMBER_RE.fullmatch(number) or not any(c.isdigit() for c in number):
            raise UriError("bad telephone number")
        return TelUri(number, _params(param_text, "tel") if semi else (), text)
    if not _OPAQUE_RE.fullmatch(rest) or any(c in rest for c in '<>"'):
        raise UriError("bad URI")
    return OtherUri(lower, rest, text)


def _digits(number: str) -> str | None:
    """The number without its visual separators, keeping a leading '+'; None if it is not a
    dialable number (letters, '*', '#': a service code, not a person's number)."""
    compact = _VISUAL.sub("", number)
    if re.fullmatch(r"\+?[0-9]+", compact):
        return compact
    return None


def number_of_uri(uri: Uri) -> str | None:
    """The phone number a URI names, or None.

    tel: URIs always name one; sip:/sips: URIs when `user=phone` (the user part is then a
    telephone-subscriber, whose own ";" parameters are dropped) or when the user part is
    numeric ("+33 1 23..." after unescaping, the way trunks write caller IDs). Visual
    separators are removed and a leading '+' kept, so the result goes through the same
    `privacy.donotrecord.normalise_number` as an analog caller ID.
    """
    if isinstance(uri, TelUri):
        return _digits(uri.number)
    if isinstance(uri, SipUri) and uri.user:
        user = uri.user
        if uri.param("user") == "phone":
            return _digits(user.split(";", 1)[0])
        if _NUMERIC_USER.fullmatch(user):
            return _digits(user)
    return None
