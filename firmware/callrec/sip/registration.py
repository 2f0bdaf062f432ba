"""The office's registrations, relayed to the provider through the box (RFC 3261 10). Pure.

Most SIP trunks send incoming calls only to a registered contact, so a PBX behind the box must
register through it, and the contact the provider learns must be the box's trunk address (the
box then relays the INVITE to the PBX, as for any incoming call). The relay is the box acting
as the registering UA on the trunk side, for each registration the PBX makes:

- A REGISTER from the PBX (the LAN peer; the B2BUA sends the trunk's 405 and drops strangers'
  before this) goes on to `trunk_peer` as a client transaction of the box's own
  (`client_tx`): the Request-URI, From and To as the PBX wrote them, and its Expires,
  Authorization and Proxy-Authorization (a digest the PBX computed over method and
  Request-URI stays valid); the box's Via; a Call-ID of the box's own, the same for as long
  as the PBX keeps its Call-ID (RFC 3261 10.2.4: refreshes of one registration share it; at
  most MAX_BINDINGS are remembered, the least recently used forgotten), with the box's own
  increasing CSeq; each Contact rewritten to `<sip:user@<box trunk address>>` with its
  expires and q parameters, so incoming INVITEs come to the box. `Contact: *` (remove all
  bindings, Expires 0) goes as it is.
- The final response goes back on the PBX's transaction: status, reason, the challenge
  (WWW-/Proxy-Authenticate), Expires, Min-Expires, Date, Retry-After, Warning, and in a 2xx
  the bindings that are the box's address rewritten back to the PBX's own Contact (other
  bindings of the AOR, elsewhere, are not the PBX's business). Provisional responses stop
  the retransmissions and go no further. No answer within 64*T1: 408 to the PBX. A
  retransmission of the PBX's REGISTER gets the final response again (kept 64*T1) or, while
  the provider has not answered, nothing (the box's own retransmissions are running).
- A 401/407 follows the trunk_auth rules: with trunk credentials configured for the realm
  and no credentials of the PBX's own in its REGISTER, the box answers the challenge (same
  Call-ID, CSeq + 1) and the PBX sees only the outcome; a second challenge (not stale)
  means the provider refused them: 403 to the PBX with a Warning. Otherwise the challenge
  goes to the PBX, whose next REGISTER carries its Authorization through unchanged.

`status()` is counts and times only (no AOR, no number): registrations relayed, the
provider's last status, bindings in force and the soonest expiry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callrec.callflow import Action
from callrec.sip import headers as h
from callrec.sip import trunk_auth
from callrec.sip.b2bua_types import Addr, B2buaConfig, Send, StartTimer, TimerKey
from callrec.sip.client_tx import MAGIC, TX_TIMEOUT, ClientTx, via
from callrec.sip.digest import NonceCounter
from callrec.sip.message import Headers, Request, Response
from callrec.sip.uri import SipUri

__all__ = ["MAX_BINDINGS", "TIMERS", "RegisterRelay"]

TIMERS = "register"  # TimerKey.call of the relay's timers (call ids are "c<n>")
MAX_BINDINGS = 256
SIP_VERSION = "SIP/2.0"
_FORWARDED = ("Expires", "Authorization", "Proxy-Authorization")
_RELAYED_BACK = ("WWW-Authenticate", "Proxy-Authenticate", "Expires", "Min-Expires", "Date",
                 "Retry-After", "Warning")
_CONTACT_PARAMS = ("expires", "q")
_USER = re.compile(r"^sips?:([^@;?]*)@", re.IGNORECASE)


@dataclass
class _Binding:
    """One registration of the PBX (its Call-ID), as the box keeps it towards the provider."""

    call_id: str
    cseq: int = 0
    expires_at: float = 0.0  # when the provider's last 2xx binding runs out; 0: none
    nonces: NonceCounter = field(default_factory=NonceCounter)


@dataclass
class _Relay:
    """A REGISTER from the PBX, from its arrival until 64*T1 after its final response."""

    key: str  # the PBX's transaction: top Via branch and sent-by
    request: Request
    source: Addr
    binding: _Binding
    contacts: dict[str, str]  # the URI the box sent -> the PBX's Contact URI it stands for
    client: ClientTx | None = None
    auth: trunk_auth.AuthAttempts = field(default_factory=trunk_auth.AuthAttempts)
    last: Response | None = None


def _tx_key(req: Request) -> str:
    """The PBX's transaction: its top Via (RFC 3261 17.2.3), and its Call-ID and CSeq too, so
    that a client reusing a branch for a new REGISTER (RFC 4475's messages all share one)
    gets a new relay, not the previous answer."""
    v = req.vias[0]
    return f"{v.branch}|{v.host}:{v.port or 5060}|{req.call_id}|{req.cseq.number}"


def _params(na: h.NameAddr, keep: tuple[str, ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in na.params
                   if k.lower() in keep)


@dataclass
class RegisterRelay:
    config: B2buaConfig
    token: Callable[[], str]
    relayed: int = 0  # REGISTERs of the PBX sent on to the provider
    last_status: int = 0  # the provider's last final status (408: it did not answer)
    _bindings: dict[str, _Binding] = field(default_factory=dict)  # the PBX's Call-ID ->
    _servers: dict[str, _Relay] = field(default_factory=dict)  # the PBX's transaction ->
    _clients: dict[str, _Relay] = field(default_factory=dict)  # the box's branch ->
    _expiries: tuple[float, ...] = ()  # the bindings' expiry times, for status()

    # -- the PBX's REGISTER ---------------------------------------------------------------
    def request(self, req: Request, source: Addr, now: float) -> list[Action]:
        key = _tx_key(req)
        relay = self._servers.get(key)
        if relay is not None:  # a retransmission
            return [Send("lan", relay.source, relay.last)] if relay.last is not None else []
        try:
            contacts, mapping = self._contacts(req)
        except (h.HeaderError, ValueError):
            return [Send("lan", source, _reply(req, 400, "Bad Contact"))]
        binding = self._binding(req.call_id)
        binding.cseq += 1
        hd = Headers()
        hd.add("Via", via(self.config.trunk, MAGIC + self.token()))
        hd.add("Max-Forwards", "70")
        hd.add("From", req.headers.get("from") or "")
        hd.add("To", req.headers.get("to") or "")
        hd.add("Call-ID", binding.call_id)
        hd.add("CSeq", f"{binding.cseq} REGISTER")
        for contact in contacts:
            hd.add("Contact", contact)
        for name in _FORWARDED:
            for value in req.headers.get_all(name):
                hd.add(name, value)
        fwd = Request(SIP_VERSION, hd, b"", "REGISTER", req.uri)
        relay = _Relay(key, req, source, binding, mapping)
        self._servers[key] = relay
        self.relayed += 1
        return self._send(relay, fwd)

    def _binding(self, pbx_call_id: str) -> _Binding:
        binding = self._bindings.pop(pbx_call_id, None)
        if binding is None:
            binding = _Binding(f"{self.token()}{self.token()}@callrec")
            if len(self._bindings) >= MAX_BINDINGS:
                del self._bindings[next(iter(self._bindings))]
        self._bindings[pbx_call_id] = binding  # most recently used last
        return binding

    def _contacts(self, req: Request) -> tuple[list[str], dict[str, str]]:
        """The PBX's Contacts as the box's (`*` as it is), and the way back."""
        host, port = self.config.trunk
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        out: list[str] = []
        mapping: dict[str, str] = {}
        for value in req.headers.values("contact"):
            if value.strip() == "*":
                out.append("*")
                continue
            na = h.parse_name_addr(value)
            if not isinstance(na.uri, SipUri):
                raise ValueError("not a SIP contact")
            m = _USER.match(na.uri.raw)
            uri = f"sip:{m.group(1)}@{hostport}" if m else f"sip:{hostport}"
            mapping.setdefault(uri, na.uri.raw)
            out.append(f"<{uri}>{_params(na, _CONTACT_PARAMS)}")
        return out, mapping

    def _send(self, relay: _Relay, req: Request) -> list[Action]:
        relay.client = ClientTx(TIMERS, "trunk", self.config.trunk_peer, req)
        self._clients[relay.client.branch] = relay
        return relay.client.start()

    # -- the provider's answers -----------------------------------------------------------
    def response(self, resp: Response, now: float) -> list[Action]:
        try:
            branch = resp.vias[0].branch or ""
        except (IndexError, h.HeaderError):
            return []
        relay = self._clients.get(branch)
        if relay is None or relay.client is None:
            return []  # not ours, or a repeat of a final response already relayed
        if resp.status < 200:
            relay.client.provisional()
            return []
        del self._clients[branch]
        out = relay.client.stop(resp.status)
        self.last_status = resp.status
        verdict = trunk_auth.verdict(self.config.trunk_credentials, relay.client.request, resp,
                                     relay.auth, relay.binding.nonces, self.token)
        if verdict.action == "answer":
            relay.binding.cseq = max(relay.binding.cseq, relay.client.request.cseq.number) + 1
            again = trunk_auth.resubmit(relay.client.request,
                                        via=via(self.config.trunk, MAGIC + self.token()),
                                        cseq=relay.binding.cseq, fields=verdict.fields)
            return out + self._send(relay, again)
        if verdict.action == "fail":
            return out + self._final(relay, _reply(relay.request, 403, "Forbidden", extra=[
                ("Warning", f'399 callrec "{verdict.why}"')]), now)
        extra = [(name, value) for name in _RELAYED_BACK for value in resp.headers.get_all(name)]
        if 200 <= resp.status < 300:
            extra += self._bound(relay, resp, now)
        fwd = _reply(relay.request, resp.status, resp.reason, tag=resp.to.tag, extra=extra)
        return out + self._final(relay, fwd, now)

    def _bound(self, relay: _Relay, resp: Response, now: float) -> list[tuple[str, str]]:
        """The 2xx's bindings of the box's address, as the PBX's Contacts, and the binding's
        expiry from them (or from Expires). A binding matches the box's contact as sent; if
        none does (a provider that rewrote the host), one with the same user part does."""
        default = resp.headers.get("expires") or ""
        found: list[tuple[h.NameAddr, str, bool]] = []
        for value in resp.headers.values("contact"):
            try:
                na = h.parse_name_addr(value)
            except h.HeaderError:
                continue
            if isinstance(na.uri, SipUri):
                found += [(na, pbx_uri, exact) for pbx_uri, exact in self._match(relay, na)]
        if any(exact for _, _, exact in found):
            found = [f for f in found if f[2]]
        out: list[tuple[str, str]] = []
        expires = int(default) if default.strip().isdigit() and not found else 0
        for na, pbx_uri, _ in found:
            if any(v == f"<{pbx_uri}>" or v.startswith(f"<{pbx_uri}>;") for _, v in out):
                continue
            out.append(("Contact", f"<{pbx_uri}>{_params(na, _CONTACT_PARAMS)}"))
            given = dict((k.lower(), v) for k, v in na.params).get("expires") or default
            expires = max(expires, int(given) if given.strip().isdigit() else 0)
        relay.binding.expires_at = now + expires if expires else 0.0
        self._expiries = tuple(b.expires_at for b in self._bindings.values() if b.expires_at)
        return out

    def _match(self, relay: _Relay, na: h.NameAddr) -> list[tuple[str, bool]]:
        """The PBX Contacts a binding may stand for, and whether it is exactly the box's."""
        assert isinstance(na.uri, SipUri)
        host, port = self.config.trunk
        m = _USER.match(na.uri.raw)
        user = m.group(1) if m else ""
        exact = na.uri.host.strip("[]") == host.strip("[]") and (na.uri.port or 5060) == port
        out = []
        for sent, pbx_uri in relay.contacts.items():
            s = _USER.match(sent)
            if (s.group(1) if s else "") == user:
                out.append((pbx_uri, exact))
        return out

    def _final(self, relay: _Relay, resp: Response, now: float) -> list[Action]:
        relay.last = resp
        relay.client = None
        return [Send("lan", relay.source, resp),
                StartTimer(TimerKey(TIMERS, "J", relay.key), TX_TIMEOUT)]

    # -- timers ---------------------------------------------------------------------------
    def timer(self, key: TimerKey, now: float) -> list[Action]:
        if key.kind == "J":
            self._servers.pop(key.ref, None)
            return []
        relay = self._clients.get(key.ref)
        if relay is None or relay.client is None:
            return []
        if key.kind == "E":
            return relay.client.retransmit()
        if key.kind != "F":
            return []
        del self._clients[key.ref]
        out = relay.client.stop(408)
        self.last_status = 408
        return out + self._final(relay, _reply(relay.request, 408, "Request Timeout"), now)

    # -- status ---------------------------------------------------------------------------
    def status(self, now: float) -> dict[str, Any]:
        """Counts and times only: nothing names an AOR or a number."""
        live = [at - now for at in self._expiries if at > now]
        return {"relayed": self.relayed, "last_status": self.last_status or None,
                "bound": len(live), "expires_in_s": round(min(live)) if live else None}


def _reply(req: Request, status: int, reason: str, *, tag: str | None = None,
           extra: list[tuple[str, str]] | None = None) -> Response:
    """A response to the PBX's REGISTER: its Vias, From, To (with the registrar's tag),
    Call-ID and CSeq, then `extra`."""
    hd = Headers()
    for v in req.headers.get_all("via"):
        hd.add("Via", v)
    hd.add("From", req.headers.get("from") or "")
    to = req.headers.get("to") or ""
    if req.to.tag is None:
        to += f";tag={tag or 'callrec'}"
    hd.add("To", to)
    hd.add("Call-ID", req.headers.get("call-id") or "")
    hd.add("CSeq", req.headers.get("cseq") or "")
    for name, value in extra or []:
        hd.add(name, value)
    return Response(SIP_VERSION, hd, b"", status, reason)
