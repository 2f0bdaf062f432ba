"""The B2BUA's answers to the provider's digest challenges (RFC 3261 22.2, 22.3). Pure.

A request the box sends on the trunk side (the called leg's INVITE of an outgoing call, a
re-INVITE or a BYE in either direction's trunk dialog) may be answered 401 or 407. `verdict`
decides what happens, `resubmit` builds the request again with the credentials. The rules:
- "pass": the challenge is not the box's to answer; the B2BUA does what it did before
  credentials existed (an INVITE's challenge goes to the office unchanged, and the office's
  UA may answer it through the box). So when no credentials are configured, when the request
  carried the office UA's own Authorization / Proxy-Authorization (its digest pass-through:
  the box never replaces what the phone computed), when the challenge names another realm
  than the configured one (the password is not shown to whoever asks), or when it is
  malformed or offers only algorithms the box cannot compute.
- "answer": the first challenge of a request, or a second one with stale=true (the nonce
  expired, the password was right: RFC 7616 3.3), once. The request is sent again on the
  same dialog: same Call-ID, tags, Request-URI and body, CSeq one higher, a new branch
  (RFC 3261 22.2, 8.1.3.5), with one Authorization or Proxy-Authorization per realm.
- "fail": any other challenge after the box answered one: the provider refused the
  configured credentials, and asking again with the same ones would only loop. What the
  B2BUA tells the caller then is decided there (`B2bua._failure`).
ACK and CANCEL are never resubmitted (RFC 3261 22.1: they cannot be challenged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from callrec.sip.digest import (
    Credentials,
    DigestError,
    NonceCounter,
    authorization,
    choose,
    parse_challenges,
)
from callrec.sip.message import Headers, Request, Response, canonical_name

__all__ = ["CREDENTIAL_FIELDS", "AuthAttempts", "Verdict", "credentials_of", "resubmit",
           "verdict"]

# Status -> (the challenge's field, the answer's field): RFC 3261 22.2 (UAS), 22.3 (proxy).
_FIELDS = {401: ("WWW-Authenticate", "Authorization"),
           407: ("Proxy-Authenticate", "Proxy-Authorization")}
CREDENTIAL_FIELDS = ("Authorization", "Proxy-Authorization")


@dataclass
class AuthAttempts:
    """Challenges answered for one request and its resubmissions."""

    answered: int = 0
    stale_retried: bool = False


@dataclass(frozen=True)
class Verdict:
    action: Literal["pass", "answer", "fail"]
    fields: tuple[tuple[str, str], ...] = ()  # with "answer": the credential fields to add
    why: str = ""


def credentials_of(request: Request) -> list[tuple[str, str]]:
    """The Authorization / Proxy-Authorization fields a request carries."""
    return [(name, value) for name in CREDENTIAL_FIELDS
            for value in request.headers.get_all(name)]


def verdict(credentials: Credentials | None, request: Request, response: Response,
            attempts: AuthAttempts, nonces: NonceCounter, token: Callable[[], str]) -> Verdict:
    """What to do with `response` to `request` (see the module's rules). With "answer",
    `attempts` and `nonces` are updated."""
    names = _FIELDS.get(response.status)
    if names is None or credentials is None or request.method in ("ACK", "CANCEL"):
        return Verdict("pass")
    first = attempts.answered == 0
    if first and credentials_of(request):
        return Verdict("pass", why="the office UA's own credentials")
    refused = Verdict("pass") if first else Verdict(
        "fail", why="the provider refused the configured credentials")
    try:
        chosen = choose(parse_challenges(response.headers.get_all(names[0])),
                        credentials.realm)
    except DigestError as exc:
        return Verdict(refused.action, why=str(exc))
    if not chosen:
        return Verdict(refused.action, why="challenge for another realm")
    if not first:
        if attempts.stale_retried or not all(c.stale for c in chosen):
            return refused
        attempts.stale_retried = True
    try:
        fields = tuple(
            (names[1], authorization(c, credentials, request.method, request.uri,
                                     cnonce=token(), nc=nonces.next(c.nonce),
                                     body=request.body))
            for c in chosen)
    except DigestError as exc:
        return Verdict(refused.action, why=str(exc))
    attempts.answered += 1
    return Verdict("answer", fields)


def resubmit(request: Request, *, via: str, cseq: int,
             fields: tuple[tuple[str, str], ...]) -> Request:
    """`request` again with a new top Via, CSeq `cseq`, and `fields` as its only credentials
    (earlier answers of the box replaced); everything else, body included, as it was."""
    hd = Headers()
    replaced = {canonical_name(n) for n in CREDENTIAL_FIELDS}
    for f in request.headers:
        key = canonical_name(f.name)
        if key == "via":
            if not any(canonical_name(g.name) == "via" for g in hd):
                hd.add("Via", via)
        elif key == "cseq":
            hd.add("CSeq", f"{cseq} {request.method}")
        elif key not in replaced:
            hd.add(f.name, f.value)
    for name, value in fields:
        hd.add(name, value)
    return Request(request.version, hd, request.body, request.method, request.uri)
