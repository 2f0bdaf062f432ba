"""The SIP line's back-to-back user agent: SIP messages and media events in, actions out.

Pure, like `callflow.CallFlow`: no sockets, no clock (events carry `at`, timers are actions the
daemon arms and reports back as `TimerFired`), no randomness unless the default token source
is kept. Each call is two dialogs, one per side, with their own Call-ID, tags, CSeq spaces and
SDP sessions (`SdpOriginator`); the box answers the caller as a UAS and calls the other side
as a UAC, so it can restrict codecs, anchor the media on its relay, play the announcement into
the call and release a call whose media stopped (see ARCHITECTURE.md, "Signalling: why a
B2BUA").

    lan peer (office PBX/phones) ──leg──▶ box ──leg──▶ trunk peer (provider)   outgoing ("out")
    trunk peer ──leg──▶ box ──leg──▶ pbx peer                                  incoming ("in")

The calling leg is `a` (the box is its UAS), the called leg `b` (the box is its UAC). Rules:
- Only the configured peers are served. A request from anyone else is dropped unanswered (a
  scanner learns nothing); a configured peer on the wrong side gets 403 (it is misconfigured,
  and saying so helps whoever installs the box); nothing is ever sent to an address taken
  from a message: requests and responses go to the configured peer of their side.
- No announcement, no recording, as on analog lines: capture starts at the answer (never
  during early media), is held until the prompt completed, and is committed only then. A
  call kept out (do-not-record list, the line's settings) gets neither; a refusal key during
  the prompt drops what was held. Unanswered, cancelled and rejected calls record nothing.
- Transactions are as simple as UDP allows while staying correct: requests the box sends are
  retransmitted (timers A/E) until answered or given up (B/F); a final response to an INVITE
  is retransmitted (timer G) until its ACK, for at most 64*T1 (H; RFC 3261 17.2.1, 13.3.1.4);
  a retransmitted INVITE gets the last response again, never a second call. Non-INVITE
  requests (BYE, CANCEL, OPTIONS) are answered idempotently from the dialog's state, which a
  finished call keeps for 64*T1, so their retransmissions need no transaction state.
- OPTIONS: the transport answers keep-alives outside dialogs itself; those that reach the
  B2BUA (in a dialog, or ones the transport passes on) are answered 200 here, never forwarded.
- Digest challenges (401/407) from the provider: with trunk credentials configured, the box
  answers those to the requests it sends on the trunk side (INVITE, re-INVITE, BYE) itself
  and resends the request on the same dialog (CSeq+1, new branch); the office side hears
  nothing of it. It passes a challenge through to the office side unchanged (the
  Request-URI forwarded unchanged so the digest the phone computes holds) when no
  credentials are configured, when the office UA's INVITE carried its own credentials, or
  when the challenge is for another realm than the configured one. A second challenge to a
  request the box answered (not stale) means the credentials are wrong: the caller gets 403,
  no loop (`_failure`; the rules in sip/trunk_auth.py). The box never challenges anyone.

- A late offer (an INVITE without SDP, as some PBXs send): the box offers what it records to
  the called side itself, offers the called side's choice to the caller in its 2xx, and
  takes the caller's answer from the ACK; the prompt starts then. Early media is not given
  to such a caller (an offer in a provisional response needs 100rel). An ACK without a
  usable answer releases the call.

- REGISTER from the office's PBX is relayed to the provider with the box's trunk address as
  Contact, so incoming calls come to the box (sip/registration.py); from the trunk: 405.
  The box sends OPTIONS to the provider every `trunk_keepalive_s` and reports a provider
  that stops answering as `TrunkState` (sip/keepalive.py); `start()` sends the first.

Not handled yet (answered so that the call stays safe): a re-INVITE without SDP (488),
in-dialog INFO/UPDATE/REFER/MESSAGE (501), 100rel (420).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from callrec import events as ev
from callrec.callflow import Action, CallInfo, Evidence, PrivacyRules
from callrec.sip import headers as h
from callrec.sip import keepalive, registration, sdp, trunk_auth
from callrec.sip.b2bua_types import (  # re-exported: the B2BUA's vocabulary
    OTHER,
    Addr,
    AnnouncementFinished,
    B2buaConfig,
    CallFinished,
    CommitRecording,
    DiscardRecording,
    KeyPressed,
    MediaTimeout,
    RelayLeg,
    Send,
    Side,
    SipReceived,
    StartAnnouncement,
    StartRecording,
    StartRelay,
    StartTimer,
    StopAnnouncement,
    StopRecording,
    StopRelay,
    StopTimer,
    TimerFired,
    TimerKey,
    TrunkState,
    UpdateRelay,
)
from callrec.sip.digest import Credentials, NonceCounter
from callrec.sip.message import Headers, Request, Response, called_number, caller_number
from callrec.sip.uri import OtherUri, UriError, parse_uri

__all__ = [
    "B2bua",
    "B2buaConfig",
    "CallFinished",
    "CommitRecording",
    "Credentials",
    "DiscardRecording",
    "KeyPressed",
    "MediaTimeout",
    "RelayLeg",
    "Send",
    "SipReceived",
    "StartAnnouncement",
    "StartRecording",
    "StartRelay",
    "StartTimer",
    "StopAnnouncement",
    "StopRecording",
    "StopRelay",
    "StopTimer",
    "TimerFired",
    "TimerKey",
    "TrunkState",
    "UpdateRelay",
]


# RFC 3261 17.1.1.1: the round-trip estimate, the cap of non-INVITE retransmissions, and how
# long a transaction may last (64*T1): retransmissions stop and state is let go after it.
T1 = 0.5
T2 = 4.0
TX_TIMEOUT = 64 * T1
# A refusal key pressed as the prompt ends arrives a little later (packetisation, jitter
# buffer, the key's own duration): as on analog lines, the held audio is written only after
# this grace, and a refusal within it still writes nothing. Shorter than analog's 1.5 s:
# RFC 4733 reports a key at its first packet, with no listener batches in between.
REFUSAL_GRACE_S = 0.5
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
MAGIC = "z9hG4bK"
SIP_VERSION = "SIP/2.0"
# Methods RFC 3261 or its extensions define that the box does not serve: 405, not 501.
_KNOWN_UNSERVED = frozenset({"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER",
                             "INFO", "UPDATE", "PRACK"})
# Response fields relayed from one leg to the other: what the caller's UA acts on (a digest
# challenge, when to retry, why it failed, who answered). Everything else names the far
# side's own dialog (Contact, Record-Route, tags) or its software (Server) and stays there.
_RELAYED_RESPONSE_FIELDS = ("Proxy-Authenticate", "WWW-Authenticate", "Retry-After", "Warning",
                            "Reason", "Unsupported", "Error-Info", "P-Asserted-Identity")
# Request fields carried into the other leg's INVITE: identity, privacy, and the credentials
# of a digest pass-through (they answer the provider's challenge, not the box's).
_RELAYED_INVITE_FIELDS = ("P-Asserted-Identity", "P-Preferred-Identity", "Privacy",
                          "Proxy-Authorization", "Authorization", "Subject", "Alert-Info")


# -- state -------------------------------------------------------------------------------
@dataclass
class _Leg:
    side: Side
    peer: Addr
    call_id: str
    local: str  # our From (b) / To (a) value, tag included once known
    remote: str  # the peer's, its tag included once known
    local_tag: str
    remote_tag: str | None
    remote_target: str  # Request-URI of our in-dialog requests
    originator: sdp.SdpOriginator
    relay_port: int
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int = -1
    media: sdp.MediaState | None = None
    confirmed: bool = False


@dataclass
class _ServerInvite:
    """An INVITE (initial or re-INVITE) received from a peer, until its ACK."""

    side: Side
    key: str
    request: Request
    call: _Call
    source: Addr  # where its responses go (RFC 3581)
    last: Response | None = None
    final: bool = False
    interval: float = T1


@dataclass
class _ClientTx:
    """A request the box sent, until its final response (and for INVITE, its ACK)."""

    side: Side
    branch: str
    request: Request
    call: _Call
    interval: float = T1
    answered: bool = False  # a provisional or final response arrived
    final: int = 0
    ack: Request | None = None  # the ACK sent for its final response, resent on repeats
    # Challenges the box answered for this request, carried into its resubmissions.
    auth: trunk_auth.AuthAttempts = field(default_factory=trunk_auth.AuthAttempts)


@dataclass
class _InviteRelay:
    """An INVITE relayed from one leg (`src`, server side) to the other (`dst`, client)."""

    src: _Leg
    dst: _Leg
    server: _ServerInvite
    client: _ClientTx
    offer: sdp.SessionDescription  # what was sent to dst, for checking its answer
    initial: bool
    # A late offer (src's INVITE had no SDP): the box offered to dst itself, offers to src in
    # its 2xx (`src_offer`) and takes src's answer from the ACK; the prompt waits for it.
    late: bool = False
    src_offer: sdp.SessionDescription | None = None
    after_ack: list[Action] = field(default_factory=list)


@dataclass
class _Call:
    id: str
    direction: str  # "out": from the LAN side; "in": from the trunk
    a: _Leg
    b: _Leg
    info: CallInfo
    keep_out: str = ""  # why this call is not recorded, decided before the INVITE goes on
    evidence: Evidence | None = None
    state: str = "calling"  # calling, challenged, confirmed, ended
    rec: str = ""  # "", announcing, grace, recording, not_recorded
    invite: _InviteRelay | None = None  # the INVITE in progress, if any
    cancelled: bool = False
    cancel_sent: bool = False
    relay_started: bool = False
    acks: dict[int, Request] = field(default_factory=dict)  # b's 2xx CSeq -> our ACK
    forks: set[str] = field(default_factory=set)  # to-tags of other answers, released
    nonces: NonceCounter = field(default_factory=NonceCounter)  # nc of the box's digests

    def leg(self, side: Side) -> _Leg:
        return self.a if self.a.side == side else self.b


def _token() -> str:
    return secrets.token_hex(8)


def _tx_key(req: Request) -> str:
    """The INVITE server transaction a request belongs to: the top Via's branch (RFC 3261
    17.2.3), or for pre-RFC 3261 clients without the magic cookie, Call-ID, From tag, CSeq."""
    via = req.vias[0]
    if via.branch and via.branch.startswith(MAGIC):
        return f"{via.branch}|{via.host}:{via.port or 5060}"
    return f"{req.call_id}|{req.from_.tag}|{req.cseq.number}"


def _name_addr(value: str, tag: str | None) -> str:
    """A From/To value rebuilt with `tag` as its tag (None: without one)."""
    na = h.parse_name_addr(value)
    params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in na.params if k != "tag")
    if tag:
        params += f";tag={tag}"
    display = ""
    if na.display is not None:
        escaped = na.display.replace("\\", "\\\\").replace('"', '\\"')
        display = f'"{escaped}" '
    return f"{display}<{na.uri.raw}>{params}"


def _in_invite_transaction(inv: Request, method: str, to: str) -> Request:
    """A CANCEL (RFC 3261 9.1) or the ACK of a non-2xx answer (17.1.1.3) of the INVITE `inv`:
    its Via (same branch), Route set, From, Call-ID, CSeq number and Request-URI; `to` is the
    INVITE's To (CANCEL) or the response's, with its tag (ACK)."""
    hd = Headers()
    hd.add("Via", inv.headers.get("via") or "")
    for route in inv.headers.get_all("route"):
        hd.add("Route", route)
    hd.add("Max-Forwards", "70")
    hd.add("From", inv.headers.get("from") or "")
    hd.add("To", to)
    hd.add("Call-ID", inv.headers.get("call-id") or "")
    hd.add("CSeq", f"{inv.cseq.number} {method}")
    return Request(SIP_VERSION, hd, b"", method, inv.uri)


def _answer(msg: Request | Response, offer: sdp.SessionDescription | None
            ) -> tuple[sdp.SessionDescription, sdp.MediaState]:
    """The SDP answer `msg` carries to `offer`, and its media (NotRecordableError: none)."""
    answer = _sdp_body(msg)
    if answer is None:
        raise sdp.NotRecordableError("no SDP answer")
    return answer, sdp.read_media(answer, offer)


def _awaiting_answer(offered: sdp.MediaState) -> sdp.MediaState:
    """A leg's media while the box waits for its peer's answer: the codecs the box offered,
    no address yet (the relay latches it from the peer's first packet), not on hold."""
    return dataclasses.replace(offered, address="", port=0, on_hold=False,
                               direction="sendrecv")


def _accepts_sdp(req: Request) -> bool:
    """No Accept field means application/sdp (RFC 3261 20.1); else it must name it or a
    wildcard covering it."""
    values = req.headers.get_all("accept")
    if not values:
        return True
    types = {v.split(";")[0].strip().lower() for raw in values for v in raw.split(",")}
    return bool(types & {"application/sdp", "application/*", "*/*"}) or types <= {""}


def _sdp_body(msg: Request | Response) -> sdp.SessionDescription | None:
    """The SDP of a message, None without a body; SdpError when malformed or not SDP."""
    if not msg.body:
        return None
    ctype = (msg.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/sdp":
        raise sdp.SdpError(f"body is not SDP ({ctype or 'no Content-Type'})")
    return sdp.parse(msg.body)


@dataclass
class B2bua:
    """Feed events with `handle`; it returns the actions the daemon must carry out."""

    config: B2buaConfig
    privacy: PrivacyRules = field(default_factory=PrivacyRules)
    token: Callable[[], str] = field(default=_token)
    calls: dict[str, _Call] = field(default_factory=dict)
    _count: int = 0
    _initial: dict[tuple[Side, str, str], _Call] = field(default_factory=dict)
    _dialogs: dict[tuple[Side, str, str], _Leg] = field(default_factory=dict)
    _dialog_calls: dict[tuple[Side, str, str], _Call] = field(default_factory=dict)
    _servers: dict[tuple[Side, str], _ServerInvite] = field(default_factory=dict)
    _clients: dict[tuple[str, str], _ClientTx] = field(default_factory=dict)
    _free_ports: list[int] = field(default_factory=list)
    _ports_ready: bool = False
    _now: float = 0.0  # the time of the event being handled
    _reply_to: Addr | None = None  # the source of the request being handled
    registrations: registration.RegisterRelay = field(init=False)
    keepalive: keepalive.KeepAlive = field(init=False)

    def __post_init__(self) -> None:
        self.registrations = registration.RegisterRelay(self.config, self.token)
        self.keepalive = keepalive.KeepAlive(self.config, self.token)

    def start(self, at: float) -> list[Action]:
        """What the line does once, as it starts: the first keep-alive."""
        return self.keepalive.start(at)

    # -- entry ---------------------------------------------------------------------------
    def handle(self, event: ev.Event) -> list[Action]:
        self._now = event.at
        self._reply_to = None
        if isinstance(event, SipReceived):
            return self._received(event)
        if isinstance(event, TimerFired):
            return self._timer(event)
        call = self.calls.get(getattr(event, "call", ""))
        if call is None:
            return []  # a late report about a call already gone
        if isinstance(event, MediaTimeout):
            return self._media_timeout(call)
        if isinstance(event, AnnouncementFinished):
            return self._announcement_finished(call, event)
        if isinstance(event, KeyPressed):
            return self._key(call, event)
        return []

    def _received(self, e: SipReceived) -> list[Action]:
        # Peers are matched by host: the transport already holds each side to its peer's
        # address (and port, where one is configured); a PBX may send from an ephemeral port.
        self._reply_to = e.source
        if e.source[0] != self.config.peer(e.side)[0]:
            other = self.config.peer(OTHER[e.side])
            if (e.source[0] == other[0] and isinstance(e.message, Request)
                    and e.message.method != "ACK"):
                # A configured peer talking to the wrong side: refuse, and say so.
                return [self._send(e.side, self._reply(e.message, 403, "Forbidden"), e.source)]
            return []  # strangers get nothing: the box routes nothing for them
        if isinstance(e.message, Response):
            return self._response(e.side, e.message)
        return self._request(e.side, e.message)

    # -- helpers that build messages -----------------------------------------------------
    def _send(self, side: Side, msg: Request | Response, to: Addr | None = None) -> Send:
        """Requests go to the side's configured peer, never to an address a message names;
        a response goes where its request came from (RFC 3581), always that peer's host."""
        if to is None and isinstance(msg, Response) and self._reply_to is not None:
            to = self._reply_to
        return Send(side, to or self.config.peer(side), msg)

    def _reply(self, req: Request, status: int, reason: str, *, tag: str | None = None,
               leg: _Leg | None = None, body: sdp.SessionDescription | None = None,
               extra: list[tuple[str, str]] | None = None) -> Response:
        """A response to `req` (RFC 3261 8.2.6): its Via, From, Call-ID and CSeq, its To
        with our tag; for a dialog-creating response to INVITE, Contact and Record-Route."""
        hd = Headers()
        for via in req.headers.get_all("via"):
            hd.add("Via", via)
        hd.add("From", req.headers.get("from") or "")
        to = req.headers.get("to") or ""
        if tag and req.to.tag is None and status != 100:
            to = f"{to};tag={tag}"
        hd.add("To", to)
        hd.add("Call-ID", req.headers.get("call-id") or "")
        hd.add("CSeq", req.headers.get("cseq") or "")
        if req.method == "INVITE" and 100 < status < 300 and leg is not None:
            for rr in req.headers.get_all("record-route"):
                hd.add("Record-Route", rr)
            host, port = self.config.address(leg.side)
            hd.add("Contact", f"<sip:{host}:{port}>")
        if status == 405 or (200 <= status < 300 and req.method in ("INVITE", "OPTIONS")):
            hd.add("Allow", ALLOW)
        for name, value in extra or []:
            hd.add(name, value)
        payload = b""
        if body is not None:
            hd.add("Content-Type", "application/sdp")
            payload = body.serialize().encode()
        return Response(SIP_VERSION, hd, payload, status, reason)

    def _new_request(self, leg: _Leg, method: str, *, cseq: int | None = None,
                     branch: str | None = None, body: sdp.SessionDescription | None = None,
                     extra: list[tuple[str, str]] | None = None,
                     uri: str | None = None) -> Request:
        """A request the box sends on `leg`, within its dialog (or creating it)."""
        host, port = self.config.address(leg.side)
        if cseq is None:
            leg.local_cseq += 1
            cseq = leg.local_cseq
        hd = Headers()
        hd.add("Via", self._via(leg.side, branch))
        hd.add("Max-Forwards", "70")
        for route in leg.route_set:
            hd.add("Route", route)
        hd.add("From", leg.local)
        hd.add("To", leg.remote)
        hd.add("Call-ID", leg.call_id)
        hd.add("CSeq", f"{cseq} {method}")
        if method == "INVITE":
            hd.add("Contact", f"<sip:{host}:{port}>")
            hd.add("Allow", ALLOW)
        for name, value in extra or []:
            hd.add(name, value)
        payload = b""
        if body is not None:
            hd.add("Content-Type", "application/sdp")
            payload = body.serialize().encode()
        return Request(SIP_VERSION, hd, payload, method, uri or leg.remote_target)

    def _via(self, side: Side, branch: str | None = None) -> str:
        host, port = self.config.address(side)
        return f"SIP/2.0/UDP {host}:{port};branch={branch or MAGIC + self.token()};rport"

    def _client(self, call: _Call, leg: _Leg, req: Request) -> list[Action]:
        """Send `req` as a client transaction: retransmitted until answered (A/E), given up
        after 64*T1 (B/F). ACK is never a transaction."""
        branch = req.vias[0].branch or ""
        tx = _ClientTx(leg.side, branch, req, call)
        self._clients[(branch, req.method)] = tx
        first, last = ("A", "B") if req.method == "INVITE" else ("E", "F")
        return [self._send(leg.side, req),
                StartTimer(TimerKey(call.id, first, branch + " " + req.method), T1),
                StartTimer(TimerKey(call.id, last, branch + " " + req.method), TX_TIMEOUT)]

    def _stop_client(self, tx: _ClientTx) -> list[Action]:
        ref = tx.branch + " " + tx.request.method
        first, last = ("A", "B") if tx.request.method == "INVITE" else ("E", "F")
        return [StopTimer(TimerKey(tx.call.id, first, ref)),
                StopTimer(TimerKey(tx.call.id, last, ref))]

    def _respond_invite(self, tx: _ServerInvite, resp: Response) -> list[Action]:
        """Send a response on an INVITE server transaction; a final one is retransmitted
        (G) until the ACK, for at most 64*T1 (H)."""
        tx.last = resp
        out: list[Action] = [self._send(tx.side, resp, tx.source)]
        if resp.status >= 200 and not tx.final:
            tx.final = True
            tx.interval = T1
            out += [StartTimer(TimerKey(tx.call.id, "G", f"{tx.side} {tx.key}"), T1),
                    StartTimer(TimerKey(tx.call.id, "H", f"{tx.side} {tx.key}"), TX_TIMEOUT)]
        return out

    def _acked(self, tx: _ServerInvite) -> list[Action]:
        self._servers.pop((tx.side, tx.key), None)
        return [StopTimer(TimerKey(tx.call.id, "G", f"{tx.side} {tx.key}")),
                StopTimer(TimerKey(tx.call.id, "H", f"{tx.side} {tx.key}"))]

    # -- requests ------------------------------------------------------------------------
    def _request(self, side: Side, req: Request) -> list[Action]:
        if req.version.upper() != SIP_VERSION:
            return [] if req.method == "ACK" else [
                self._send(side, self._reply(req, 505, "Version Not Supported"))]
        if req.method in ("INVITE", "ACK", "CANCEL"):
            tx = self._servers.get((side, _tx_key(req)))
            if tx is not None:
                return self._server_tx_request(tx, req)
        if req.method == "ACK":
            return self._ack(side, req)
        refusal = self._check_request(req)
        if refusal is not None:
            return [self._send(side, refusal)]
        if req.method == "REGISTER" and side == "lan":
            return self.registrations.request(req, self._reply_to or self.config.pbx_peer,
                                              self._now)
        if req.to.tag is not None:
            return self._in_dialog(side, req)
        if req.method == "INVITE":
            return self._invite(side, req)
        if req.method == "OPTIONS":
            return [self._send(side, self._reply(req, 200, "OK", tag=self.token(),
                                                 extra=[("Accept", "application/sdp")]))]
        if req.method == "CANCEL":
            # No INVITE of that branch (gone or never seen): RFC 3261 9.2.
            return [self._send(side, self._reply(req, 481, "Call/Transaction Does Not Exist"))]
        if req.method == "BYE":
            return [self._send(side, self._reply(req, 481, "Call/Transaction Does Not Exist"))]
        if req.method in _KNOWN_UNSERVED:
            return [self._send(side, self._reply(req, 405, "Method Not Allowed"))]
        return [self._send(side, self._reply(req, 501, "Not Implemented",
                                             extra=[("Allow", ALLOW)]))]

    def _check_request(self, req: Request) -> Response | None:
        """What the box refuses in any request it would act on (RFC 3261 8.2.1-8.2.3)."""
        if req.method != "CANCEL":
            required = [v for raw in req.headers.get_all("require") for v in raw.split(",")
                        if v.strip()]
            if required:
                return self._reply(req, 420, "Bad Extension",
                                   extra=[("Unsupported", ", ".join(r.strip() for r in required))])
        try:
            uri = parse_uri(req.uri)
        except UriError:
            return self._reply(req, 400, "Bad Request-URI")
        if isinstance(uri, OtherUri):
            return self._reply(req, 416, "Unsupported URI Scheme")
        if req.method in ("INVITE", "OPTIONS") and req.max_forwards == 0:
            return self._reply(req, 483, "Too Many Hops")
        if req.method == "INVITE" and not _accepts_sdp(req):
            # The answer to an INVITE carries SDP; a caller that says it cannot take it
            # (RFC 4475 "sdp01") gets 406 rather than a call it could not set up.
            return self._reply(req, 406, "Not Acceptable", extra=[("Accept", "application/sdp")])
        return None

    def _server_tx_request(self, tx: _ServerInvite, req: Request) -> list[Action]:
        """A request matching an INVITE server transaction by branch: a retransmission of
        the INVITE, the ACK of a non-2xx final response, or a CANCEL."""
        if req.method == "INVITE":
            return [self._send(tx.side, tx.last, tx.source)] if tx.last is not None else []
        if req.method == "ACK":
            if tx.final and tx.last is not None and tx.last.status >= 300:
                return self._acked(tx)
            return []
        # CANCEL (RFC 3261 9.2): 200 to the CANCEL; if still unanswered, 487 to the INVITE.
        call = tx.call
        out: list[Action] = [self._send(tx.side, self._reply(req, 200, "OK",
                                                             tag=call.leg(tx.side).local_tag))]
        relay = call.invite
        if tx.final or relay is None or relay.server is not tx or not relay.initial:
            return out  # answered already, or a re-INVITE: the CANCEL changes nothing
        out += self._respond_invite(tx, self._reply(tx.request, 487, "Request Terminated",
                                                    tag=call.a.local_tag))
        call.cancelled = True
        out += self._cancel_b(call)
        return out + self._finish(call, "cancelled")

    def _cancel_b(self, call: _Call) -> list[Action]:
        """CANCEL the called leg's INVITE; RFC 3261 9.1: only once it sent a provisional
        response (before that, on the first one, see `_invite_response`)."""
        relay = call.invite
        if relay is None or not relay.initial or relay.client.final:
            return []
        if not relay.client.answered or call.cancel_sent:
            return []
        call.cancel_sent = True
        inv = relay.client.request
        cancel = _in_invite_transaction(inv, "CANCEL", inv.headers.get("to") or "")
        return self._client(call, relay.dst, cancel)

    # -- a new call ----------------------------------------------------------------------
    def _invite(self, side: Side, req: Request) -> list[Action]:
        key = (side, req.call_id, req.from_.tag or "")
        call = self._initial.get(key)
        if call is not None and call.state != "challenged":
            # Same call, new transaction while the first is pending: RFC 3261 14.2 / 491.
            return [self._send(side, self._reply(req, 491, "Request Pending"))]
        try:
            offer = _sdp_body(req)
        except sdp.SdpError:
            if req.body and (req.headers.get("content-type") or "").split(";")[0].strip().lower() \
                    != "application/sdp":
                return [self._send(side, self._reply(req, 415, "Unsupported Media Type",
                                                     extra=[("Accept", "application/sdp")]))]
            return [self._send(side, self._reply(req, 400, "Malformed SDP"))]
        offer_media: sdp.MediaState | None = None
        restricted: sdp.SessionDescription | None = None
        if offer is not None:
            try:
                restricted = sdp.restrict_offer(offer)
                offer_media = sdp.read_media(restricted)
            except sdp.NotRecordableError:
                return [self._send(side, self._reply(
                    req, 488, "Not Acceptable Here",
                    extra=[("Warning", '305 callrec "only PCMU and PCMA can be recorded"')]))]
        if call is None:
            ports = self._take_ports()
            if ports is None:
                return [self._send(side, self._reply(req, 503, "Service Unavailable",
                                                     extra=[("Retry-After", "5")]))]
            call = self._new_call(side, req, ports)
            self._initial[key] = call
        else:
            call.state = "calling"
            call.b.remote_tag = None
            call.b.remote = _name_addr(call.b.remote, None)
        out: list[Action] = [StopTimer(TimerKey(call.id, "linger"))]
        a, b = call.a, call.b
        a.remote_cseq = req.cseq.number
        a.media = offer_media
        tx = _ServerInvite(side, _tx_key(req), req, call, self._reply_to or a.peer)
        self._servers[(side, tx.key)] = tx
        out += self._respond_invite(tx, self._reply(req, 100, "Trying"))
        mf = req.max_forwards
        extra = [(name, value) for name in _RELAYED_INVITE_FIELDS
                 for value in req.headers.get_all(name)]
        if restricted is None:
            # A late offer (PBXs that leave media to the answer): the box offers what it
            # records to the called side itself, and to the caller in its 2xx (_success).
            restricted = sdp.box_offer(self.config.address(b.side)[0], b.relay_port)
        body = b.originator.stamp(sdp.anchor_media(restricted, self.config.address(b.side)[0],
                                                   b.relay_port))
        fwd = self._new_request(b, "INVITE", body=body, extra=extra, uri=req.uri)
        fwd.headers.set("Max-Forwards", str(min(70, (mf if mf is not None else 70) - 1)))
        out += self._client(call, b, fwd)
        client = self._clients[(fwd.vias[0].branch or "", "INVITE")]
        call.invite = _InviteRelay(a, b, tx, client, body, True, late=offer is None)
        call.cancel_sent = False
        return out

    def _take_ports(self) -> tuple[int, int] | None:
        if not self._ports_ready:
            first, last = self.config.rtp_ports
            self._free_ports = list(range(first + first % 2, last, 2))
            self._ports_ready = True
        if len(self._free_ports) < 2:
            return None
        return self._free_ports.pop(0), self._free_ports.pop(0)

    def _new_call(self, side: Side, req: Request, ports: tuple[int, int]) -> _Call:
        self._count += 1
        cid = f"c{self._count}"
        other = OTHER[side]
        direction = "out" if side == "lan" else "in"
        a_tag = self.token()
        a_contact = req.contacts[0].uri.raw if req.contacts else req.from_.uri.raw
        a = _Leg(side=side, peer=self.config.peer(side), call_id=req.call_id,
                 local=_name_addr(req.headers.get("to") or "", a_tag),
                 remote=req.headers.get("from") or "", local_tag=a_tag,
                 remote_tag=req.from_.tag, remote_target=a_contact,
                 originator=sdp.SdpOriginator(self._session_id(), self.config.address(side)[0]),
                 relay_port=ports[0], route_set=req.headers.values("record-route"))
        b_tag = self.token()
        b = _Leg(side=other, peer=self.config.peer(other),
                 call_id=f"{self.token()}{self.token()}@callrec",
                 local=_name_addr(req.headers.get("from") or "", b_tag),
                 remote=_name_addr(req.headers.get("to") or "", None), local_tag=b_tag,
                 remote_tag=None, remote_target=req.uri,
                 originator=sdp.SdpOriginator(self._session_id(), self.config.address(other)[0]),
                 relay_port=ports[1])
        # The numbers: the trunk's P-Asserted-Identity is trusted (RFC 3325: it set it);
        # the office's PBX is ours, so its assertion is trusted as well.
        info = CallInfo(direction, self.config.line, first_event_at=self._now, answered_by="sip")
        if direction == "in":
            info.number = caller_number(req)
        else:
            info.digits = called_number(req) or ""
        call = _Call(cid, direction, a, b, info)
        call.keep_out = self._keep_out(call)
        self.calls[cid] = call
        self._dialogs[(a.side, a.call_id, a.local_tag)] = a
        self._dialog_calls[(a.side, a.call_id, a.local_tag)] = call
        self._dialogs[(b.side, b.call_id, b.local_tag)] = b
        self._dialog_calls[(b.side, b.call_id, b.local_tag)] = call
        return call

    def _session_id(self) -> int:
        return int(self.token(), 16) % 10**15

    def _keep_out(self, call: _Call) -> str:
        """Decided before the INVITE goes on: why this call must not be recorded ("" to
        record it). The call itself goes through either way."""
        cfg = self.config
        if cfg.never_record:
            return "this line is never recorded"
        if call.direction == "in" and not cfg.record_incoming:
            return "incoming calls are not recorded on this line"
        if call.direction == "out" and not cfg.record_outgoing:
            return "outgoing calls are not recorded on this line"
        number = call.info.number if call.direction == "in" else call.info.digits or None
        if self.privacy.do_not_record(number):
            who = "caller" if call.direction == "in" else "called number"
            call.evidence = Evidence("call.not_recorded", "do-not-record list", call.direction,
                                     call.info.line, number)
            return f"the {who} is on the do-not-record list"
        return ""

    # -- responses -----------------------------------------------------------------------
    def _response(self, side: Side, resp: Response) -> list[Action]:
        try:
            branch = resp.vias[0].branch or ""
        except (IndexError, h.HeaderError):
            return []
        if side == "trunk" and resp.cseq.method in ("REGISTER", "OPTIONS"):  # not a call's
            link = self.registrations if resp.cseq.method == "REGISTER" else self.keepalive
            return link.response(resp, self._now)
        tx = self._clients.get((branch, resp.cseq.method))
        if tx is None or tx.side != side:
            return []  # not ours: a stray or forged response
        if resp.cseq.method == "INVITE":
            return self._invite_response(tx, resp)
        # BYE / CANCEL: the final response ends the retransmissions; nothing to relay, but
        # a challenge to the box's BYE is answered (providers challenge BYEs too).
        if resp.status >= 200 and not tx.final:
            tx.final = resp.status
            out = self._stop_client(tx)
            verdict = self._auth_verdict(tx, resp)
            if verdict.action == "answer":
                out += self._resubmit(tx, verdict.fields)[1]
            return out
        if resp.status < 200 and not tx.answered:
            tx.answered = True
            # RFC 3261 17.1.2.2: retransmit at T2 once the request is being processed.
            tx.interval = T2
        return []

    def _invite_response(self, tx: _ClientTx, resp: Response) -> list[Action]:
        call = tx.call
        relay = call.invite
        out: list[Action] = []
        leg = call.leg(tx.side)
        if (200 <= resp.status < 300 and (tx.final or relay is None or relay.client is not tx)
                and leg.remote_tag is not None and resp.to.tag != leg.remote_tag):
            return self._release_fork(call, leg, resp)
        if relay is None or relay.client is not tx:
            # A response to an INVITE already settled: repeat our ACK for a retransmitted
            # final response (ours was lost); anything else is over.
            if resp.status >= 200 and tx.ack is not None:
                out.append(self._send(tx.side, tx.ack))
            elif 200 <= resp.status < 300:
                ack = call.acks.get(resp.cseq.number)
                if ack is not None:
                    out.append(self._send(tx.side, ack))
            return out
        if not tx.answered:
            tx.answered = True
            out += self._stop_client(tx)
        if resp.status < 200:
            return out + self._provisional(call, relay, resp)
        if tx.final:
            # A retransmitted final response before the end-to-end ACK: ours is on its way.
            if resp.status >= 300 and tx.ack is not None:
                out.append(self._send(tx.side, tx.ack))
            return out
        tx.final = resp.status
        if resp.status >= 300:
            return out + self._failure(call, relay, resp)
        return out + self._success(call, relay, resp)

    def _release_fork(self, call: _Call, leg: _Leg, resp: Response) -> list[Action]:
        """A 2xx from a second branch of a forked INVITE (another to-tag) after the first
        one was taken: a dialog of its own, acknowledged and released at once (RFC 3261
        13.2.2.4), never connected. Its repeats get the same ACK (the BYE's own
        retransmissions cover a lost ACK)."""
        fork = _Leg(side=leg.side, peer=leg.peer, call_id=leg.call_id, local=leg.local,
                    remote=resp.headers.get("to") or leg.remote, local_tag=leg.local_tag,
                    remote_tag=resp.to.tag,
                    remote_target=resp.contacts[0].uri.raw if resp.contacts else leg.remote_target,
                    originator=leg.originator, relay_port=leg.relay_port,
                    route_set=list(reversed(resp.headers.values("record-route"))),
                    local_cseq=leg.local_cseq, confirmed=True)
        ack = self._new_request(fork, "ACK", cseq=resp.cseq.number)
        out: list[Action] = [self._send(leg.side, ack)]
        if (resp.to.tag or "") in call.forks:
            return out
        call.forks.add(resp.to.tag or "")
        return out + self._bye(call, fork, "")

    def _provisional(self, call: _Call, relay: _InviteRelay, resp: Response) -> list[Action]:
        out: list[Action] = []
        if call.cancelled:
            return self._cancel_b(call)  # the CANCEL waited for this (RFC 3261 9.1)
        if resp.status == 100 or not relay.initial:
            return out  # we sent our own 100; a re-INVITE's ringing means nothing
        dst, src = relay.dst, relay.src
        if resp.to.tag:
            dst.remote_tag = resp.to.tag
            dst.remote = resp.headers.get("to") or dst.remote
        body = None
        try:
            answer = _sdp_body(resp)
            # Early media (183): the relay starts so the caller hears the ringback or the
            # provider's message; nothing is recorded before the answer. Not to a caller
            # that made no offer: SDP to it would be an offer in a provisional response,
            # which needs 100rel (RFC 3262), which the box does not do.
            if answer is not None and not relay.late:
                dst.media = sdp.read_media(answer, relay.offer)
                body = src.originator.stamp(sdp.anchor_media(
                    answer, self.config.address(src.side)[0], src.relay_port))
                out += self._relay_update(call)
        except (sdp.SdpError, sdp.NotRecordableError):
            body = None  # early media we cannot check is not let through
        fwd = self._reply(relay.server.request, resp.status, resp.reason, tag=src.local_tag,
                          leg=src, body=body, extra=self._relayed_fields(resp))
        return out + self._respond_invite(relay.server, fwd)

    @staticmethod
    def _relayed_fields(resp: Response) -> list[tuple[str, str]]:
        return [(name, value) for name in _RELAYED_RESPONSE_FIELDS
                for value in resp.headers.get_all(name)]

    def _ack_failure(self, tx: _ClientTx, resp: Response) -> list[Action]:
        """The ACK of a non-2xx final response: part of the INVITE transaction, same branch
        (RFC 3261 17.1.1.3); kept to answer the response's retransmissions."""
        tx.ack = _in_invite_transaction(tx.request, "ACK", resp.headers.get("to") or "")
        return [self._send(tx.side, tx.ack)]

    # -- the provider's digest challenges (rules: sip/trunk_auth.py) ----------------------
    def _auth_verdict(self, tx: _ClientTx, resp: Response) -> trunk_auth.Verdict:
        """Only what the box sends to the trunk is answered with the trunk's credentials."""
        creds = self.config.trunk_credentials if tx.side == "trunk" else None
        return trunk_auth.verdict(creds, tx.request, resp, tx.auth, tx.call.nonces,
                                  self.token)

    def _resubmit(self, tx: _ClientTx,
                  fields: tuple[tuple[str, str], ...]) -> tuple[_ClientTx, list[Action]]:
        """The challenged request again, with credentials, CSeq+1 and a new branch, as a new
        client transaction that inherits the count of answered challenges."""
        call = tx.call
        leg = call.leg(tx.side)
        # max(): a BYE to a released fork took its CSeq from a copy of the leg.
        leg.local_cseq = max(leg.local_cseq, tx.request.cseq.number) + 1
        req = trunk_auth.resubmit(tx.request, via=self._via(tx.side), cseq=leg.local_cseq,
                                  fields=fields)
        out = self._client(call, leg, req)
        new = self._clients[(req.vias[0].branch or "", req.method)]
        new.auth = tx.auth
        return new, out

    def _failure(self, call: _Call, relay: _InviteRelay, resp: Response) -> list[Action]:
        out = self._ack_failure(relay.client, resp)
        if call.cancelled:
            call.invite = None
            return out  # the caller had its 487 already
        verdict = self._auth_verdict(relay.client, resp)
        if verdict.action == "answer":
            # Answered on the called leg alone: the caller keeps its 100/180 and waits.
            if relay.initial:
                relay.dst.remote_tag = None  # the early dialog, if any, ended with the 4xx
                relay.dst.remote = _name_addr(relay.dst.remote, None)
            relay.client, more = self._resubmit(relay.client, verdict.fields)
            return out + more
        call.invite = None
        if verdict.action == "fail":
            # The provider refused the configured credentials. The caller gets 403, not the
            # challenge: it cannot answer it (the account is the box's, and an office PBX
            # with credentials of its own would be lured into sending them), and a challenge
            # would make it retry a call that cannot succeed. This is what a PBX does when
            # its own authentication towards a trunk fails (Asterisk maps 401/407 to cause
            # 21, "call rejected", which it sends upstream as 403 Forbidden). The Warning
            # says why, for whoever reads the office PBX's log; the outcome is "failed" (a
            # configuration problem, not the callee rejecting the call).
            fwd = self._reply(relay.server.request, 403, "Forbidden", tag=relay.src.local_tag,
                              extra=[("Warning", '399 callrec "the provider refused the '
                                                 'configured trunk credentials"')])
            out += self._respond_invite(relay.server, fwd)
            return out + (self._finish(call, "failed") if relay.initial else [])
        fwd = self._reply(relay.server.request, resp.status, resp.reason,
                          tag=relay.src.local_tag, extra=self._relayed_fields(resp))
        out += self._respond_invite(relay.server, fwd)
        if not relay.initial:
            return out  # a refused re-INVITE leaves the call as it was
        if resp.status in (401, 407):
            # Digest pass-through: the office's UA answers the provider's challenge with a
            # new INVITE on the same Call-ID and From tag, which continues this call.
            call.state = "challenged"
            return [*out, StartTimer(TimerKey(call.id, "linger"), TX_TIMEOUT)]
        outcome = {486: "busy", 600: "busy", 408: "unanswered", 480: "unanswered",
                   487: "unanswered", 603: "rejected", 403: "rejected"}.get(resp.status, "failed")
        return out + self._finish(call, outcome)

    def _success(self, call: _Call, relay: _InviteRelay, resp: Response) -> list[Action]:
        src, dst = relay.src, relay.dst
        out: list[Action] = []
        if relay.initial:
            dst.remote_tag = resp.to.tag
            dst.remote = resp.headers.get("to") or dst.remote
            dst.route_set = list(reversed(resp.headers.values("record-route")))
            if resp.contacts:
                dst.remote_target = resp.contacts[0].uri.raw
        # RFC 3261 13.2.2.4: the ACK carries the credentials of the INVITE it acknowledges.
        ack = self._new_request(dst, "ACK", cseq=resp.cseq.number, uri=dst.remote_target,
                                extra=trunk_auth.credentials_of(relay.client.request))
        if call.cancelled or call.state == "ended":
            # Answered as the caller gave up: accept and release it at once (RFC 3261 15).
            call.invite = None
            call.acks[resp.cseq.number] = ack
            dst.confirmed = True
            return [self._send(dst.side, ack), *self._bye(call, dst, "caller cancelled")]
        try:
            answer, dst.media = _answer(resp, relay.offer)
        except (sdp.SdpError, sdp.NotRecordableError):
            if not relay.initial:
                # A re-INVITE answered with media the box cannot check: refused towards the
                # peer that asked, the call stays on the media it had.
                call.invite = None
                call.acks[resp.cseq.number] = ack
                fwd = self._reply(relay.server.request, 488, "Not Acceptable Here",
                                  tag=src.local_tag)
                return [self._send(dst.side, ack), *self._respond_invite(relay.server, fwd)]
            # Connected with media the box cannot record: never, so release it.
            call.invite = None
            call.acks[resp.cseq.number] = ack
            dst.confirmed = True
            fwd = self._reply(relay.server.request, 488, "Not Acceptable Here",
                              tag=src.local_tag)
            out += [self._send(dst.side, ack), *self._bye(call, dst, "media not recordable"),
                    *self._respond_invite(relay.server, fwd)]
            return out + self._finish(call, "not_recordable")
        body = src.originator.stamp(sdp.anchor_media(answer, self.config.address(src.side)[0],
                                                     src.relay_port))
        # The ACK is end to end: sent to dst when src acknowledges (an ACK with an answer
        # would carry it); held until then.
        call.acks[resp.cseq.number] = ack
        fwd = self._reply(relay.server.request, 200, resp.reason or "OK", tag=src.local_tag,
                          leg=src, body=body, extra=self._relayed_fields(resp))
        if relay.late:
            # The called side's answer, anchored, is the box's offer to the caller (only the
            # codec the called side chose: nothing to transcode); the caller answers in its
            # ACK. Until then its leg's address is unknown: the relay latches it from its
            # peer's first packet, and the prompt waits for the ACK (_ack).
            relay.src_offer = body
            src.media = _awaiting_answer(sdp.read_media(body))
        out += self._relay_update(call)
        answered: list[Action] = []
        if relay.initial:
            call.state = "confirmed"
            src.confirmed = dst.confirmed = True
            answered = self._answered(call)
        # Recording starts before the 200 goes out: the caller's first packet follows its
        # ACK at once (under a millisecond on a LAN) and must not precede the recording.
        first = [a for a in answered if isinstance(a, StartRecording)]
        rest = [a for a in answered if not isinstance(a, StartRecording)]
        if relay.late:
            relay.after_ack, rest = rest, []
        return out + first + self._respond_invite(relay.server, fwd) + rest

    # -- the answer: announcement and recording -------------------------------------------
    def _answered(self, call: _Call) -> list[Action]:
        call.info.answered_at = self._now
        if call.keep_out:
            call.rec = "not_recorded"
            return [call.evidence] if call.evidence is not None else []
        call.rec = "announcing"
        legs: tuple[Side, ...] = ("trunk", "lan") if self.config.announce_to_office else (
            "trunk",)
        return [StartRecording(call.id, call.info), StartAnnouncement(call.id, legs)]

    def _announcement_finished(self, call: _Call, e: AnnouncementFinished) -> list[Action]:
        if call.rec != "announcing":
            return []
        if not e.ok:
            call.rec = "not_recorded"
            return [DiscardRecording(call.id, "announcement failed")]
        if self.privacy.refusal_key:
            call.rec = "grace"
            return [StartTimer(TimerKey(call.id, "commit"), REFUSAL_GRACE_S)]
        call.rec = "recording"
        return [CommitRecording(call.id)]

    def _key(self, call: _Call, e: KeyPressed) -> list[Action]:
        if call.rec not in ("announcing", "grace") or e.key != self.privacy.refusal_key:
            return []
        out: list[Action] = []
        if call.rec == "announcing":
            out.append(StopAnnouncement(call.id))
        else:
            out.append(StopTimer(TimerKey(call.id, "commit")))
        call.rec = "not_recorded"
        number = call.info.number if call.direction == "in" else call.info.digits or None
        return [*out, Evidence("call.refused", "refusal key", call.direction, call.info.line,
                               number),
                DiscardRecording(call.id, "refused by the caller")]

    # -- requests within a dialog --------------------------------------------------------
    def _dialog(self, side: Side, req: Request) -> tuple[_Call, _Leg] | None:
        key = (side, req.call_id, req.to.tag or "")
        leg = self._dialogs.get(key)
        if leg is None or leg.remote_tag != req.from_.tag:
            return None
        return self._dialog_calls[key], leg

    def _ack(self, side: Side, req: Request) -> list[Action]:
        """The ACK of a 2xx: its own transaction (RFC 3261 13.2.2.4), sent on end to end."""
        found = self._dialog(side, req)
        if found is None:
            return []
        call, leg = found
        relay = call.invite
        if relay is None or relay.src is not leg or relay.server.last is None \
                or not 200 <= relay.server.last.status < 300 \
                or req.cseq.number != relay.server.request.cseq.number:
            return []  # a repeated ACK: the first one was passed on already
        out = self._acked(relay.server)
        call.invite = None
        ack = call.acks.get(relay.client.request.cseq.number)
        if ack is not None:
            out.append(self._send(relay.dst.side, ack))
        if relay.late:
            return out + self._late_answer(call, leg, relay, req)
        return out

    def _late_answer(self, call: _Call, leg: _Leg, relay: _InviteRelay,
                     ack: Request) -> list[Action]:
        """The caller's answer to the box's offer, in its ACK (a late offer): the relay
        learns where to send, and the prompt starts. An answer the box cannot record (or
        none) ends the call: never connected unrecorded."""
        try:
            _, leg.media = _answer(ack, relay.src_offer)
        except (sdp.SdpError, sdp.NotRecordableError):
            out = [*self._bye(call, call.a, "media not recordable"),
                   *self._bye(call, call.b, "media not recordable")]
            return out + self._finish(call, "not_recordable")
        return self._relay_update(call) + relay.after_ack

    def _in_dialog(self, side: Side, req: Request) -> list[Action]:
        found = self._dialog(side, req)
        if found is None:
            return [self._send(side, self._reply(req, 481, "Call/Transaction Does Not Exist"))]
        call, leg = found
        if req.method == "BYE":
            return self._bye_received(call, leg, req)
        if req.method == "OPTIONS":
            return [self._send(side, self._reply(req, 200, "OK",
                                                 extra=[("Accept", "application/sdp")]))]
        if call.state == "ended":
            return [self._send(side, self._reply(req, 481, "Call/Transaction Does Not Exist"))]
        if req.cseq.number <= leg.remote_cseq:
            return [self._send(side, self._reply(req, 500, "Server Internal Error",
                                                 extra=[("Retry-After", "1")]))]
        if req.method == "INVITE":
            return self._reinvite(call, leg, req)
        return [self._send(side, self._reply(req, 501, "Not Implemented",
                                             extra=[("Allow", ALLOW)]))]

    def _reinvite(self, call: _Call, leg: _Leg, req: Request) -> list[Action]:
        """Hold, resume or a session refresh from either side: relayed with the offer
        restricted and anchored, the recording going on throughout."""
        if call.invite is not None or call.state != "confirmed":
            return [self._send(leg.side, self._reply(req, 491, "Request Pending"))]
        leg.remote_cseq = req.cseq.number
        try:
            offer = _sdp_body(req)
        except sdp.SdpError:
            return [self._send(leg.side, self._reply(req, 400, "Malformed SDP"))]
        if offer is None:
            return [self._send(leg.side, self._reply(
                req, 488, "Not Acceptable Here",
                extra=[("Warning", '399 callrec "an SDP offer is required in the INVITE"')]))]
        try:
            restricted = sdp.restrict_offer(offer)
            media = sdp.read_media(restricted)
        except sdp.NotRecordableError:
            return [self._send(leg.side, self._reply(req, 488, "Not Acceptable Here"))]
        other = call.b if leg is call.a else call.a
        leg.media = media
        tx = _ServerInvite(leg.side, _tx_key(req), req, call, self._reply_to or leg.peer)
        self._servers[(leg.side, tx.key)] = tx
        body = other.originator.stamp(sdp.anchor_media(
            restricted, self.config.address(other.side)[0], other.relay_port))
        fwd = self._new_request(other, "INVITE", body=body)
        out: list[Action] = [*self._respond_invite(tx, self._reply(req, 100, "Trying")),
                             *self._client(call, other, fwd)]
        call.invite = _InviteRelay(leg, other, tx, self._clients[(fwd.vias[0].branch or "",
                                                                  "INVITE")], body, False)
        return out + self._relay_update(call)

    def _bye_received(self, call: _Call, leg: _Leg, req: Request) -> list[Action]:
        out: list[Action] = [self._send(leg.side, self._reply(req, 200, "OK"))]
        if call.state == "ended":
            return out  # a retransmission: answered again, nothing else to do
        leg.remote_cseq = max(leg.remote_cseq, req.cseq.number)
        other = call.b if leg is call.a else call.a
        relay = call.invite
        if relay is not None and relay.initial and not relay.server.final and leg is call.a:
            # The caller left during an early dialog: as a CANCEL (RFC 3261 15).
            out += self._respond_invite(relay.server, self._reply(
                relay.server.request, 487, "Request Terminated", tag=call.a.local_tag))
            call.cancelled = True
            return out + self._cancel_b(call) + self._finish(call, "cancelled")
        out += self._bye(call, other, "")
        reason = "hangup" if leg.side == "lan" else "remote hangup"
        return out + self._finish(call, "", reason)

    def _bye(self, call: _Call, leg: _Leg, why: str) -> list[Action]:
        if not leg.confirmed:
            return []
        extra = [("Reason", f'SIP;cause=200;text="{why}"')] if why else []
        leg.confirmed = False  # one BYE per leg
        return self._client(call, leg, self._new_request(leg, "BYE", extra=extra))

    def _media_timeout(self, call: _Call) -> list[Action]:
        if call.state != "confirmed":
            return []
        if any(leg.media is not None and (leg.media.on_hold or leg.media.direction != "sendrecv")
               for leg in (call.a, call.b)):
            # On hold, silence is what the peers agreed: a held call is not a dead one.
            return []
        out = [*self._bye(call, call.a, "media timeout"), *self._bye(call, call.b,
                                                                     "media timeout")]
        return out + self._finish(call, "", "media_timeout")

    # -- the end -------------------------------------------------------------------------
    def _finish(self, call: _Call, outcome: str, reason: str = "") -> list[Action]:
        """The call is over for the office: recording closed (or dropped), relay stopped,
        state kept 64*T1 for the retransmissions, then let go."""
        if call.state == "ended":
            return []
        out: list[Action] = []
        if call.rec == "announcing":
            out += [StopAnnouncement(call.id), DiscardRecording(call.id, reason or outcome)]
            outcome = outcome or "ended_during_announcement"
        elif call.rec == "grace":
            # The prompt had completed; only a refusal could still have stopped it.
            out += [StopTimer(TimerKey(call.id, "commit")), CommitRecording(call.id),
                    StopRecording(call.id, reason)]
            outcome = outcome or "recorded"
        elif call.rec == "recording":
            out.append(StopRecording(call.id, reason))
            outcome = outcome or "recorded"
        elif call.rec == "not_recorded":
            outcome = outcome or "not_recorded"
        call.rec = ""
        call.state = "ended"
        if call.relay_started:
            out.append(StopRelay(call.id))
        out.append(CallFinished(call.id, outcome or "failed", call.direction))
        out.append(StartTimer(TimerKey(call.id, "linger"), TX_TIMEOUT))
        return out

    def _forget(self, call: _Call) -> list[Action]:
        out: list[Action] = []
        self.calls.pop(call.id, None)
        for key in [k for k, c in self._initial.items() if c is call]:
            del self._initial[key]
        for key in [k for k, c in self._dialog_calls.items() if c is call]:
            del self._dialog_calls[key]
            del self._dialogs[key]
        for skey in [k for k, t in self._servers.items() if t.call is call]:
            out += self._acked(self._servers[skey])
        for ckey in [k for k, t in self._clients.items() if t.call is call]:
            out += self._stop_client(self._clients.pop(ckey))
        self._free_ports += [call.a.relay_port, call.b.relay_port]
        return out

    # -- timers --------------------------------------------------------------------------
    def _timer(self, e: TimerFired) -> list[Action]:
        key = e.key
        if key.call == registration.TIMERS:
            return self.registrations.timer(key, self._now)
        if key.call == keepalive.TIMERS:
            return self.keepalive.timer(key, self._now)
        call = self.calls.get(key.call)
        if call is None:
            return []
        if key.kind == "linger":
            if call.state == "challenged":
                # The challenge was never answered: the call ends here.
                out = self._finish(call, "rejected")
                return [a for a in out if not isinstance(a, StartTimer)] + self._forget(call)
            return self._forget(call) if call.state == "ended" else []
        if key.kind == "commit":
            if call.rec != "grace":
                return []
            call.rec = "recording"
            return [CommitRecording(call.id)]
        if key.kind in ("G", "H"):
            return self._server_timer(call, key)
        branch, _, method = key.ref.partition(" ")
        tx = self._clients.get((branch, method))
        if tx is None:
            return []
        if key.kind in ("A", "E"):
            if tx.final or (tx.answered and key.kind == "A"):
                return []
            tx.interval = tx.interval * 2 if key.kind == "A" else min(tx.interval * 2, T2)
            return [self._send(tx.side, tx.request), StartTimer(key, tx.interval)]
        # B or F: no final response in 64*T1.
        if tx.final or (key.kind == "B" and tx.answered):
            return []
        tx.final = 408
        self._clients.pop((branch, method), None)
        if method != "INVITE" or call.invite is None or call.invite.client is not tx:
            return []
        relay = call.invite
        call.invite = None
        out = self._respond_invite(relay.server, self._reply(
            relay.server.request, 408, "Request Timeout", tag=relay.src.local_tag))
        if relay.initial and not call.cancelled:
            out += self._finish(call, "unanswered")
        return out

    def _server_timer(self, call: _Call, key: TimerKey) -> list[Action]:
        side, _, tx_key = key.ref.partition(" ")
        tx = self._servers.get(("lan" if side == "lan" else "trunk", tx_key))
        if tx is None or tx.last is None:
            return []
        if key.kind == "G":
            tx.interval = min(tx.interval * 2, T2)
            return [self._send(tx.side, tx.last, tx.source), StartTimer(key, tx.interval)]
        # H: no ACK in 64*T1. For a 2xx the dialog must be ended (RFC 3261 13.3.1.4).
        out = self._acked(tx)
        if tx.last.status < 300 and call.invite is not None and call.invite.server is tx:
            call.invite = None
            leg = call.leg(tx.side)
            other = call.b if leg is call.a else call.a
            out += [*self._bye(call, leg, "no ACK"), *self._bye(call, other, "no ACK")]
            out += self._finish(call, "", "no_ack")
        return out

    # -- media ---------------------------------------------------------------------------
    def _relay_leg(self, leg: _Leg) -> RelayLeg:
        m = leg.media
        if m is None:
            return RelayLeg(leg.side, leg.relay_port)
        return RelayLeg(leg.side, leg.relay_port, (m.address, m.port),
                        tuple(sorted(m.codecs.items())), m.telephone_event_pt, m.direction,
                        m.on_hold)

    def _relay_update(self, call: _Call) -> list[Action]:
        """Tell the relay what each side's SDP now says; started once both are known."""
        legs = {leg.side: self._relay_leg(leg) for leg in (call.a, call.b)}
        if not call.relay_started:
            if call.a.media is None or call.b.media is None:
                return []
            call.relay_started = True
            return [StartRelay(call.id, legs["lan"], legs["trunk"])]
        return [UpdateRelay(call.id, legs["lan"], legs["trunk"])]
