"""HTTP Digest authentication as SIP uses it (RFC 3261 22.4, RFC 2617, RFC 7616), client side.
Pure: no clock, no randomness (the cnonce is the caller's), no I/O.

`parse_challenges` reads the WWW-Authenticate or Proxy-Authenticate fields of a 401/407 (one
field may hold several challenges, several fields may each hold some; schemes other than Digest
are skipped), `choose` picks what to answer (one challenge per realm, the strongest algorithm
supported, optionally only the configured realm), and `authorization` builds the value of the
Authorization / Proxy-Authorization field. `NonceCounter` numbers the uses of each nonce (nc).

Supported: algorithm MD5 (the default when absent), MD5-sess, SHA-256, SHA-256-sess; qop auth
and auth-int (auth preferred: it does not depend on the body), and no qop at all (RFC 2069
compatibility, which RFC 3261 keeps and providers still send); userhash (RFC 7616 3.4.4).
Anything malformed raises `DigestError`, and nothing else, whatever the text: a challenge
comes from the network.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ALGORITHMS",
    "Credentials",
    "DigestChallenge",
    "DigestError",
    "NonceCounter",
    "authorization",
    "choose",
    "parse_challenges",
    "response",
]


class DigestError(ValueError):
    """A challenge that cannot be parsed, or that offers nothing this module can answer."""


@dataclass(frozen=True)
class Credentials:
    """A digest account. `realm` None answers any realm; otherwise only that one (so the
    password is never used to answer whoever else challenges). The password stays out of
    repr() and so out of logs and tracebacks."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None


# Algorithm (canonical spelling) -> (hashlib name, strength). Stronger is preferred; the
# session variants rank with their base (RFC 7616 3.7: equal strength, the server's order).
ALGORITHMS: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 1),
    "MD5-sess": ("md5", 1),
    "SHA-256": ("sha256", 2),
    "SHA-256-sess": ("sha256", 2),
}
_ALGORITHM_NAMES = {name.lower(): name for name in ALGORITHMS}
_QOPS = ("auth", "auth-int")  # in order of preference

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 7235 token68, and the unquoted parameter values seen in the field (tokens, and the odd
# provider's unquoted nonce with '/' or '='): visible ASCII without quote, comma or backslash.
_BARE_RE = re.compile(r"[!#-+\--\[\]-~]+")
_LWS = " \t"
# Bounds: a challenge field is at most 8 KiB (message.MAX_LINE); these only stop a hostile
# one from costing more than it must.
MAX_CHALLENGES = 20
MAX_PARAMS = 30


@dataclass(frozen=True)
class DigestChallenge:
    """One Digest challenge, values unquoted. `qop` is what the server offers (empty: the
    RFC 2069 form without cnonce and nc); `algorithm` is one of ALGORITHMS."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False

    @property
    def strength(self) -> int:
        return ALGORITHMS[self.algorithm][1]


# -- parsing -----------------------------------------------------------------------------
def _split_elements(value: str) -> list[str]:
    """The comma-separated elements of a field, commas inside quoted strings kept; empty
    elements dropped (RFC 7230 7: a recipient accepts them)."""
    out: list[str] = []
    start = i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise DigestError("unterminated quoted string")
        elif c == ",":
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    return [e.strip(_LWS) for e in out if e.strip(_LWS)]


def _value(raw: str) -> str:
    """An auth-param value: a quoted string (quoted-pairs resolved) or a bare token."""
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise DigestError("bad quoted value")
        inner, out, i = raw[1:-1], [], 0
        while i < len(inner):
            c = inner[i]
            if c == '"':
                raise DigestError("bad quoted value")
            if c == "\\":
                i += 1
                if i >= len(inner):
                    raise DigestError("bad quoted value")
                c = inner[i]
            out.append(c)
            i += 1
        return "".join(out)
    if not _BARE_RE.fullmatch(raw):
        raise DigestError(f"bad parameter value {raw[:40]!r}")
    return raw


def _param(element: str) -> tuple[str, str] | None:
    """`name = value` (None when the element is not one)."""
    m = _TOKEN_RE.match(element)
    if not m:
        return None
    rest = element[m.end():].lstrip(_LWS)
    if not rest.startswith("="):
        return None
    return m.group().lower(), _value(rest[1:].strip(_LWS))


def _raw_challenges(value: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(scheme, params) for each challenge of one field. A new challenge starts at an element
    `scheme` or `scheme SP rest`; the elements after it are its parameters."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for element in _split_elements(value):
        param = _param(element)
        if param is not None:
            if not out:
                raise DigestError("parameter before any auth scheme")
            out[-1][1].append(param)
            continue
        m = _TOKEN_RE.match(element)
        if not m:
            raise DigestError(f"bad challenge element {element[:40]!r}")
        rest = element[m.end():]
        if rest and rest[0] not in _LWS:
            raise DigestError(f"bad auth scheme {element[:40]!r}")
        out.append((m.group(), []))
        rest = rest.strip(_LWS)
        if rest:
            param = _param(rest)
            if param is not None:
                out[-1][1].append(param)
            elif not _BARE_RE.fullmatch(rest):  # token68 (other schemes) is skipped
                raise DigestError(f"bad challenge element {element[:40]!r}")
        if len(out) > MAX_CHALLENGES:
            raise DigestError("too many challenges")
        if len(out[-1][1]) > MAX_PARAMS:
            raise DigestError("too many parameters")
    return out


def _digest(params: list[tuple[str, str]]) -> DigestChallenge | None:
    """The Digest challenge these parameters make; None when it is well formed but asks for
    something unsupported (another algorithm, only unknown qop values)."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name in seen:
            raise DigestError(f"parameter {name!r} repeated")  # RFC 7235 2.1
        seen[name] = value
    if "realm" not in seen:
        raise DigestError("Digest challenge without realm")
    if not seen.get("nonce"):
        raise DigestError("Digest challenge without nonce")
    algorithm = _ALGORITHM_NAMES.get(seen.get("algorithm", "MD5").lower())
    if algorithm is None:
        return None
    qop: tuple[str, ...] = ()
    if "qop" in seen:
        offered = {q.strip(_LWS).lower() for q in seen["qop"].split(",")}
        qop = tuple(q for q in _QOPS if q in offered)
        if not qop:
            return None
    if algorithm.endswith("-sess") and not qop:
        # RFC 2617 3.2.2.2 needs a cnonce, which RFC 2617 forbids without qop: undefined.
        return None
    return DigestChallenge(
        realm=seen["realm"], nonce=seen["nonce"], algorithm=algorithm, qop=qop,
        opaque=seen.get("opaque"), stale=seen.get("stale", "").lower() == "true",
        userhash=seen.get("userhash", "").lower() == "true")


def parse_challenges(values: Iterable[str]) -> list[DigestChallenge]:
    """The supported Digest challenges of these WWW-Authenticate (or Proxy-Authenticate)
    field values, in order. DigestError when a field is malformed or when no supported
    Digest challenge is offered."""
    found: list[DigestChallenge] = []
    offered = 0
    for value in values:
        if not isinstance(value, str):
            raise DigestError("challenge is not text")
        for scheme, params in _raw_challenges(value):
            if scheme.lower() != "digest":
                continue  # Basic, Bearer...: not answered, and not a reason to fail
            offered += 1
            challenge = _digest(params)
            if challenge is not None:
                found.append(challenge)
    if not found:
        raise DigestError("no supported Digest challenge" if offered else "no Digest challenge")
    return found


def choose(challenges: Iterable[DigestChallenge],
           realm: str | None = None) -> list[DigestChallenge]:
    """What to answer: for each realm (or only `realm`), the challenge with the strongest
    algorithm, the first of equals (the server lists its preference first). Realms keep the
    order of their first challenge."""
    best: dict[str, DigestChallenge] = {}
    for c in challenges:
        if realm is not None and c.realm != realm:
            continue
        if c.realm not in best or c.strength > best[c.realm].strength:
            best[c.realm] = c
    return list(best.values())


# -- answering ---------------------------------------------------------------------------
def _h(algorithm: str, text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    # MD5 is what the protocol asks for (RFC 2617), not a choice made here; the stronger
    # algorithm is taken whenever the server offers one.
    return hashlib.new(ALGORITHMS[algorithm][0], data, usedforsecurity=False).hexdigest()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def response(challenge: DigestChallenge, credentials: Credentials, method: str, uri: str, *,
             cnonce: str = "", nc: int = 1, qop: str | None = None, body: bytes = b"") -> str:
    """The request-digest (RFC 7616 3.4.1; RFC 2617 3.2.2.1 and, without qop, RFC 2069)."""
    alg = challenge.algorithm
    ha1 = _h(alg, f"{credentials.username}:{challenge.realm}:{credentials.password}")
    if alg.endswith("-sess"):
        ha1 = _h(alg, f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + _h(alg, body)
    ha2 = _h(alg, a2)
    if qop is None:
        return _h(alg, f"{ha1}:{challenge.nonce}:{ha2}")
    return _h(alg, f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def authorization(challenge: DigestChallenge, credentials: Credentials, method: str, uri: str,
                  *, cnonce: str, nc: int = 1, body: bytes = b"") -> str:
    """The Authorization / Proxy-Authorization value answering `challenge` for a request
    `method uri` (in SIP the Request-URI; `body` for qop=auth-int). `cnonce` is used only
    when the challenge offers qop, `nc` is the nonce's use count (from 1)."""
    if not 1 <= nc <= 0xFFFFFFFF:
        raise DigestError("nonce count out of range")
    qop = challenge.qop[0] if challenge.qop else None
    if qop is not None and (not cnonce or '"' in cnonce or "\\" in cnonce):
        raise DigestError("a cnonce is required")
    digest = response(challenge, credentials, method, uri, cnonce=cnonce, nc=nc, qop=qop,
                      body=body)
    username = credentials.username
    if challenge.userhash:
        username = _h(challenge.algorithm, f"{username}:{challenge.realm}")
    parts = [f"username={_quote(username)}", f"realm={_quote(challenge.realm)}",
             f"nonce={_quote(challenge.nonce)}", f"uri={_quote(uri)}",
             f"response={_quote(digest)}", f"algorithm={challenge.algorithm}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}", f"cnonce={_quote(cnonce)}"]
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


@dataclass
class NonceCounter:
    """How many times each nonce was used (RFC 7616 3.4: nc counts the requests sent with a
    nonce, so the server can detect replays). Bounded: the oldest nonces are forgotten."""

    limit: int = 16
    counts: dict[str, int] = field(default_factory=dict)

    def next(self, nonce: str) -> int:
        count = self.counts.pop(nonce, 0) + 1
        self.counts[nonce] = count
        while len(self.counts) > self.limit:
            del self.counts[next(iter(self.counts))]
        return count
