"""The SIP line's back-to-back user agent (callrec.sip.b2bua), driven with event scripts.

Every message goes through bytes both ways, as on the wire: what a test peer sends is parsed
by `parse_datagram`, and what the box sends is serialized and parsed again before the test
looks at it, so a message the box builds that a peer could not parse fails here.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from callrec.callflow import Evidence, PrivacyRules
from callrec.privacy.donotrecord import Entry, Matcher
from callrec.sip import b2bua as bb
from callrec.sip import sdp
from callrec.sip.b2bua import (
    B2bua,
    B2buaConfig,
    CallFinished,
    CommitRecording,
    DiscardRecording,
    KeyPressed,
    MediaTimeout,
    Send,
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
    UpdateRelay,
)
from callrec.sip.message import Request, Response, parse_datagram
from support import digest_params

PBX = ("192.168.1.10", 5060)
TRUNK = ("198.51.100.1", 5060)
LAN_BOX = ("192.168.1.2", 5060)
TRUNK_BOX = ("203.0.113.2", 5062)
STRANGER = ("10.9.9.9", 5060)


def crlf(text: str) -> str:
    return "\r\n".join(text.strip("\n").split("\n")) + "\r\n"


def offer(ip: str, port: int, *, direction: str = "sendrecv", formats: str = "18 0 8 101",
          version: int = 1) -> bytes:
    return crlf(f"""
v=0
o=peer 4242 {version} IN IP4 {ip}
s=-
c=IN IP4 {ip}
t=0 0
m=audio {port} RTP/AVP {formats}
a=rtpmap:18 G729/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=candidate:1 1 UDP 2130706431 {ip} {port} typ host
a={direction}
""").encode()


def answer(ip: str, port: int, *, direction: str = "sendrecv", formats: str = "8 101") -> bytes:
    return crlf(f"""
v=0
o=far 77 1 IN IP4 {ip}
s=-
c=IN IP4 {ip}
t=0 0
m=audio {port} RTP/AVP {formats}
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a={direction}
""").encode()


def wire(text: str, body: bytes = b"") -> Request | Response:
    head = "\r\n".join(text.strip("\n").split("\n"))
    if body:
        head += "\r\nContent-Type: application/sdp"
    data = (head + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    return parse_datagram(data)


def invite(*, call_id: str = "a1@pbx", tag: str = "pbxtag", branch: str = "z9hG4bKinv1",
           cseq: int = 1, body: bytes | None = None, ruri: str = "sip:0612345678@sip.example.net",
           src: tuple[str, int] = PBX, extra: str = "", to_tag: str = "") -> Request:
    body = offer(src[0], 4000) if body is None else body
    to = f"<sip:0612345678@sip.example.net>{';tag=' + to_tag if to_tag else ''}"
    msg = wire(f"""
INVITE {ruri} SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch};rport
Max-Forwards: 70
From: "Office 100" <sip:0145678900@sip.example.net>;tag={tag}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} INVITE
Contact: <sip:100@{src[0]}:{src[1]}>
{extra}""".replace("\n\n", "\n").rstrip("\n"), body)
    assert isinstance(msg, Request)
    return msg


def request_in_dialog(method: str, like: Request, *, cseq: int, branch: str,
                      body: bytes = b"", to: str | None = None, frm: str | None = None,
                      src: tuple[str, int] = PBX) -> Request:
    """A request from the peer that sent (or received) `like`, in the same dialog."""
    msg = wire(f"""
{method} sip:box@{LAN_BOX[0]} SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch}
Max-Forwards: 70
From: {frm or like.headers.get('from')}
To: {to or like.headers.get('to')}
Call-ID: {like.call_id}
CSeq: {cseq} {method}""", body)
    assert isinstance(msg, Request)
    return msg


def reply(req: Request, status: int, reason: str, *, to_tag: str | None = "far",
          body: bytes = b"", contact: str = "<sip:far@198.51.100.1:5060>",
          extra: str = "") -> Response:
    """The response a peer would send to the request the box sent it."""
    to = req.headers.get("to") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}",
             *[f"Via: {v}" for v in req.headers.get_all("via")],
             f"From: {req.headers.get('from')}", f"To: {to}",
             f"Call-ID: {req.call_id}", f"CSeq: {req.headers.get('cseq')}"]
    if 100 < status < 300:
        lines.append(f"Contact: {contact}")
    if extra:
        lines.append(extra)
    msg = wire("\n".join(lines), body)
    assert isinstance(msg, Response)
    return msg


class Box:
    """A B2BUA and the script's clock; every message it sends is re-parsed from bytes."""

    def __init__(self, privacy: PrivacyRules | None = None, **config: object) -> None:
        counter = itertools.count(1)
        cfg = B2buaConfig(lan=LAN_BOX, trunk=TRUNK_BOX, pbx_peer=PBX, trunk_peer=TRUNK,
                          **config)  # type: ignore[arg-type]
        self.b2b = B2bua(cfg, privacy or PrivacyRules(), token=lambda: f"{next(counter):08x}")
        self.t = 0.0

    def feed(self, event: object) -> list[object]:
        actions = self.b2b.handle(event)  # type: ignore[arg-type]
        out: list[object] = []
        for a in actions:
            if isinstance(a, Send):
                again = parse_datagram(a.message.serialize())
                assert again.serialize() == a.message.serialize()
                a = Send(a.side, a.to, again)
            out.append(a)
        return out

    def rx(self, side: str, msg: Request | Response, source: tuple[str, int] | None = None,
           dt: float = 0.1) -> list[object]:
        self.t += dt
        source = source or (PBX if side == "lan" else TRUNK)
        return self.feed(SipReceived(side, source, msg, at=self.t))  # type: ignore[arg-type]

    def fire(self, key: TimerKey, dt: float = 0.1) -> list[object]:
        self.t += dt
        return self.feed(TimerFired(key, at=self.t))

    def event(self, cls: type, *args: object, dt: float = 0.1) -> list[object]:
        self.t += dt
        return self.feed(cls(*args, at=self.t))


def sent(actions: list[object], side: str | None = None) -> list[Request | Response]:
    return [a.message for a in actions
            if isinstance(a, Send) and (side is None or a.side == side)]


def one(actions: list[object], side: str) -> Request | Response:
    msgs = sent(actions, side)
    assert len(msgs) == 1, msgs
    return msgs[0]


def only(actions: list[object], cls: type) -> list[object]:
    return [a for a in actions if isinstance(a, cls)]


def media_of(msg: Request | Response) -> sdp.SessionDescription:
    return sdp.parse(msg.body)


# -- a whole call, step by step ------------------------------------------------------------

class Call:
    """An outgoing call (office → trunk) taken to the point each test needs."""

    def __init__(self, box: Box | None = None, **kw: object) -> None:
        self.box = box or Box()
        self.a_invite = invite(**kw)  # type: ignore[arg-type]
        acts = self.box.rx("lan", self.a_invite)
        self.start = acts
        self.b_invite = one(acts, "trunk")
        assert isinstance(self.b_invite, Request)
        self.call = next(iter(self.box.b2b.calls))

    def ring(self) -> list[object]:
        return self.box.rx("trunk", reply(self.b_invite, 180, "Ringing"))

    def answer(self, body: bytes | None = None) -> list[object]:
        self.b_ok = reply(self.b_invite, 200, "OK",
                          body=answer("198.51.100.7", 30000) if body is None else body)
        acts = self.box.rx("trunk", self.b_ok)
        ok = sent(acts, "lan")
        if ok:
            self.a_ok = ok[0]
        return acts

    def ack(self) -> list[object]:
        assert isinstance(self.a_ok, Response)
        ack = request_in_dialog("ACK", self.a_invite, cseq=1, branch="z9hG4bKack1",
                                to=self.a_ok.headers.get("to"))
        return self.box.rx("lan", ack)

    def announced(self) -> list[object]:
        return self.box.event(bb.AnnouncementFinished, self.call, True)

    def connected(self) -> None:
        self.ring()
        self.answer()
        self.ack()

    def bye_from_office(self, cseq: int = 2, branch: str = "z9hG4bKbye1") -> list[object]:
        bye = request_in_dialog("BYE", self.a_invite, cseq=cseq, branch=branch,
                                to=self.a_ok.headers.get("to"))
        self.a_bye = bye
        return self.box.rx("lan", bye)

    def b_dialog_request(self, method: str, cseq: int, branch: str,
                         body: bytes = b"") -> Request:
        """A request from the trunk in the called leg's dialog (From/To swapped)."""
        return request_in_dialog(method, self.b_invite, cseq=cseq, branch=branch, body=body,
                                 frm=self.b_ok.headers.get("to"),
                                 to=self.b_invite.headers.get("from"), src=TRUNK)


def test_outgoing_invite_is_a_new_dialog_restricted_and_anchored() -> None:
    c = Call()
    trying = one(c.start, "lan")
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None and trying.call_id == "a1@pbx"
    b = c.b_invite
    assert b.method == "INVITE" and b.uri == "sip:0612345678@sip.example.net"  # unchanged
    assert b.call_id != c.a_invite.call_id  # the legs are independent dialogs
    assert b.from_.tag not in (None, "pbxtag") and b.to.tag is None
    assert b.from_.uri.raw == "sip:0145678900@sip.example.net" and b.from_.display == "Office 100"
    assert b.cseq.number == 1 and b.cseq.method == "INVITE"
    via = b.vias[0]
    assert len(b.vias) == 1 and (via.host, via.port) == TRUNK_BOX
    assert via.branch is not None and via.branch.startswith("z9hG4bK")
    assert via.branch != c.a_invite.vias[0].branch
    assert b.max_forwards == 69
    assert b.contacts[0].uri.raw == f"sip:{TRUNK_BOX[0]}:{TRUNK_BOX[1]}"
    s = media_of(b)
    audio = s.media[0]
    assert audio.formats == ["0", "8", "101"]  # G.729 gone, the offerer's order kept
    assert s.connection is not None and s.connection.address == TRUNK_BOX[0]
    assert audio.port == c.box.b2b.calls[c.call].b.relay_port
    assert audio.attribute("candidate") is None
    assert s.origin.username == "callrec"
    send = next(a for a in c.start if isinstance(a, Send) and a.side == "trunk")
    assert send.to == TRUNK
    timers = {a.key.kind for a in only(c.start, StartTimer)}
    assert timers == {"A", "B"}
    assert not only(c.start, StartRecording)


def test_outgoing_call_ringing_answer_ack_record_bye() -> None:
    c = Call()
    ringing = one(c.ring(), "lan")
    assert isinstance(ringing, Response) and ringing.status == 180
    a_tag = ringing.to.tag
    assert a_tag and ringing.call_id == "a1@pbx" and ringing.from_.tag == "pbxtag"
    assert ringing.contacts[0].uri.raw == f"sip:{LAN_BOX[0]}:{LAN_BOX[1]}"

    acts = c.answer()
    ok = c.a_ok
    assert isinstance(ok, Response) and ok.status == 200 and ok.to.tag == a_tag
    s = media_of(ok)
    assert s.connection is not None and s.connection.address == LAN_BOX[0]
    call = c.box.b2b.calls[c.call]
    assert s.media[0].port == call.a.relay_port and s.media[0].formats == ["8", "101"]
    assert not sent(acts, "trunk")  # the ACK is end to end: it waits for the office's
    relay = only(acts, StartRelay)[0]
    assert relay.lan.remote == (PBX[0], 4000) and relay.trunk.remote == ("198.51.100.7", 30000)
    assert relay.lan.local_port == call.a.relay_port
    assert relay.trunk.local_port == call.b.relay_port
    assert dict(relay.trunk.codecs) == {8: "PCMA"} and relay.trunk.telephone_event_pt == 101
    rec = only(acts, StartRecording)[0]
    assert rec.info.direction == "out" and rec.info.digits == "0612345678"
    assert only(acts, StartAnnouncement)[0].legs == ("trunk", "lan")
    assert {a.key.kind for a in only(acts, StartTimer)} == {"G", "H"}

    acts = c.ack()
    ack = one(acts, "trunk")
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.uri == "sip:far@198.51.100.1:5060"  # the callee's Contact
    assert ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.call_id == c.b_invite.call_id and ack.to.tag == "far"
    assert ack.vias[0].branch != c.b_invite.vias[0].branch  # its own transaction
    assert {a.key.kind for a in only(acts, StopTimer)} == {"G", "H"}

    assert only(c.announced(), CommitRecording)
    acts = c.bye_from_office()
    ok200 = one(acts, "lan")
    assert isinstance(ok200, Response) and ok200.status == 200 and ok200.cseq.method == "BYE"
    bye = one(acts, "trunk")
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert bye.cseq.number == 2 and bye.call_id == c.b_invite.call_id
    assert bye.to.tag == "far" and bye.from_.tag == c.b_invite.from_.tag
    assert only(acts, StopRecording)[0].reason == "hangup"
    assert only(acts, StopRelay)
    assert only(acts, CallFinished)[0].outcome == "recorded"
    acts = c.box.rx("trunk", reply(bye, 200, "OK"))
    assert {a.key.kind for a in only(acts, StopTimer)} == {"E", "F"} and not sent(acts)


def test_bye_from_the_trunk_side() -> None:
    c = Call()
    c.connected()
    c.announced()
    bye = c.b_dialog_request("BYE", 1, "z9hG4bKtbye")
    acts = c.box.rx("trunk", bye)
    assert one(acts, "trunk").status == 200  # type: ignore[union-attr]
    to_office = one(acts, "lan")
    assert isinstance(to_office, Request) and to_office.method == "BYE"
    assert to_office.call_id == "a1@pbx" and to_office.to.tag == "pbxtag"
    assert to_office.uri == "sip:100@192.168.1.10:5060"  # the office phone's Contact
    assert to_office.cseq.number == 1  # the box's own CSeq space on that leg
    assert only(acts, StopRecording)[0].reason == "remote hangup"
    assert only(acts, CallFinished)[0].outcome == "recorded"
    # A retransmitted BYE is answered again and changes nothing.
    again = c.box.rx("trunk", bye)
    assert [m.status for m in sent(again)] == [200]  # type: ignore[union-attr]
    assert len(again) == 1


def test_early_media_relayed_but_not_recorded_before_answer() -> None:
    c = Call()
    acts = c.box.rx("trunk", reply(c.b_invite, 183, "Session Progress",
                                   body=answer("198.51.100.7", 30000)))
    progress = one(acts, "lan")
    assert progress.status == 183  # type: ignore[union-attr]
    assert media_of(progress).connection.address == LAN_BOX[0]  # type: ignore[union-attr]
    assert only(acts, StartRelay)
    assert not only(acts, StartRecording) and not only(acts, StartAnnouncement)
    acts = c.answer()
    assert only(acts, UpdateRelay) and only(acts, StartRecording)
    # The same answer again: the office sees the same SDP version (RFC 3264 8).
    assert media_of(c.a_ok).origin.version == media_of(progress).origin.version


def on_invite_branch(method: str, to_tag: str | None = None) -> Request:
    """A CANCEL, or the ACK of a non-2xx answer, for the office's first INVITE (its branch)."""
    tag = f";tag={to_tag}" if to_tag else ""
    msg = wire(f"""
{method} sip:0612345678@sip.example.net SIP/2.0
Via: SIP/2.0/UDP {PBX[0]}:{PBX[1]};branch=z9hG4bKinv1;rport
Max-Forwards: 70
From: "Office 100" <sip:0145678900@sip.example.net>;tag=pbxtag
To: <sip:0612345678@sip.example.net>{tag}
Call-ID: a1@pbx
CSeq: 1 {method}""")
    assert isinstance(msg, Request)
    return msg


def test_cancel_before_answer_nothing_recorded() -> None:
    c = Call()
    c.ring()
    cancel = on_invite_branch("CANCEL")
    acts = c.box.rx("lan", cancel)
    to_office = sent(acts, "lan")
    assert [(m.status, m.cseq.method) for m in to_office] == [  # type: ignore[union-attr]
        (200, "CANCEL"), (487, "INVITE")]
    b_cancel = one(acts, "trunk")
    assert isinstance(b_cancel, Request) and b_cancel.method == "CANCEL"
    assert b_cancel.vias[0].branch == c.b_invite.vias[0].branch
    assert b_cancel.cseq.number == 1 and b_cancel.call_id == c.b_invite.call_id
    assert only(acts, CallFinished)[0].outcome == "cancelled"
    assert not only(acts, StartRecording) and not only(acts, StopRecording)
    # The far end confirms; its 487 is acknowledged hop by hop and goes no further.
    assert not sent(c.box.rx("trunk", reply(b_cancel, 200, "OK")))
    acts = c.box.rx("trunk", reply(c.b_invite, 487, "Request Terminated"))
    ack = one(acts, "trunk")
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.vias[0].branch == c.b_invite.vias[0].branch and ack.to.tag == "far"
    assert not sent(acts, "lan") and not only(acts, CallFinished)
    # The office acknowledges the 487 on the INVITE's branch: retransmissions stop.
    office_ack = on_invite_branch("ACK", to_tag=to_office[1].to.tag)  # type: ignore[union-attr]
    assert {a.key.kind for a in only(c.box.rx("lan", office_ack), StopTimer)} == {"G", "H"}


def test_cancel_before_any_provisional_waits_for_one() -> None:
    c = Call()
    cancel = on_invite_branch("CANCEL")
    acts = c.box.rx("lan", cancel)
    assert not sent(acts, "trunk")  # RFC 3261 9.1: not before a provisional response
    acts = c.box.rx("trunk", reply(c.b_invite, 100, "Trying", to_tag=None))
    b_cancel = one(acts, "trunk")
    assert b_cancel.method == "CANCEL"  # type: ignore[union-attr]
    assert not sent(c.ring(), "trunk")  # only one CANCEL
    # The callee answered anyway, crossing the CANCEL: accepted and released at once.
    acts = c.answer()
    assert [m.method for m in sent(acts, "trunk")] == ["ACK", "BYE"]  # type: ignore[union-attr]
    assert not sent(acts, "lan") and not only(acts, StartRecording)


@pytest.mark.parametrize(("status", "reason", "outcome"), [
    (486, "Busy Here", "busy"), (603, "Decline", "rejected"), (404, "Not Found", "failed"),
    (480, "Temporarily Unavailable", "unanswered"), (503, "Service Unavailable", "failed"),
])
def test_final_failures_relayed_no_recording(status: int, reason: str, outcome: str) -> None:
    c = Call()
    c.ring()
    acts = c.box.rx("trunk", reply(c.b_invite, status, reason, extra="Retry-After: 30"))
    to_office = one(acts, "lan")
    assert isinstance(to_office, Response) and to_office.status == status
    assert to_office.headers.get("retry-after") == "30"
    assert to_office.headers.get("contact") is None
    ack = one(acts, "trunk")
    assert ack.method == "ACK" and ack.vias[0].branch == c.b_invite.vias[0].branch  # type: ignore[union-attr]
    assert only(acts, CallFinished)[0].outcome == outcome
    assert not only(acts, StartRecording) and not only(acts, StopRecording)
    # The far end repeats its final response (our ACK was lost): the same ACK again.
    again = c.box.rx("trunk", reply(c.b_invite, status, reason))
    assert sent(again, "trunk") == [ack] and not sent(again, "lan")
    # Unacknowledged, the relayed answer is repeated (G) then let go (H).
    g = only(acts, StartTimer)[0].key
    assert g.kind == "G"
    assert sent(c.box.fire(g), "lan") == [to_office]


def reinvite_hold(c: Call, side: str, direction: str, cseq: int, branch: str) -> list[object]:
    if side == "lan":
        req = request_in_dialog("INVITE", c.a_invite, cseq=cseq, branch=branch,
                                to=c.a_ok.headers.get("to"),
                                body=offer(PBX[0], 4000, direction=direction, version=2))
        return c.box.rx("lan", req)
    req = c.b_dialog_request("INVITE", cseq, branch,
                             body=offer("198.51.100.7", 30000, direction=direction))
    return c.box.rx("trunk", req)


@pytest.mark.parametrize("holder", ["lan", "trunk"])
def test_hold_and_resume_from_either_side_recording_continues(holder: str) -> None:
    c = Call()
    c.connected()
    c.announced()
    other = "trunk" if holder == "lan" else "lan"
    versions = []
    for n, direction in enumerate(("sendonly", "sendrecv")):
        cseq = 2 + n
        acts = reinvite_hold(c, holder, direction, cseq, f"z9hG4bKre{n}")
        assert [m.status for m in sent(acts, holder)] == [100]  # type: ignore[union-attr]
        fwd = one(acts, other)
        assert isinstance(fwd, Request) and fwd.method == "INVITE"
        leg = c.box.b2b.calls[c.call].leg(other)  # type: ignore[arg-type]
        assert fwd.call_id == leg.call_id and fwd.to.tag == leg.remote_tag
        assert fwd.from_.tag == leg.local_tag
        s = media_of(fwd)
        assert s.media[0].port == leg.relay_port and s.media[0].direction == direction
        assert s.connection.address == (LAN_BOX if other == "lan" else TRUNK_BOX)[0]  # type: ignore[union-attr]
        assert s.media[0].formats == ["0", "8", "101"]
        versions.append(s.origin.version)
        back = "recvonly" if direction == "sendonly" else "sendrecv"
        src = TRUNK if other == "trunk" else PBX
        acts = c.box.rx(other, reply(fwd, 200, "OK", to_tag=None,
                                     body=answer(src[0], 30000 if other == "trunk" else 4000,
                                                 direction=back)), source=src)
        ok = one(acts, holder)
        assert isinstance(ok, Response) and ok.status == 200 and ok.cseq.number == cseq
        assert media_of(ok).media[0].direction == back
        update = only(acts, UpdateRelay)[-1]
        assert getattr(update, other).direction == back
        assert not [a for a in acts if isinstance(a, StopRecording | DiscardRecording
                                                  | StartRecording | CommitRecording)]
        if holder == "lan":
            ack = request_in_dialog("ACK", c.a_invite, cseq=cseq, branch=f"z9hG4bKra{n}",
                                    to=c.a_ok.headers.get("to"))
        else:
            ack = c.b_dialog_request("ACK", cseq, f"z9hG4bKra{n}")
        acts = c.box.rx(holder, ack)
        fwd_ack = one(acts, other)
        assert fwd_ack.method == "ACK" and fwd_ack.cseq.number == fwd.cseq.number  # type: ignore[union-attr]
    assert versions[1] == versions[0] + 1  # the box's own o= moves when its SDP changes
    acts = c.bye_from_office(cseq=10)
    assert only(acts, StopRecording) and only(acts, CallFinished)[0].outcome == "recorded"
    # Each leg numbers its own requests: INVITE 1, two re-INVITEs, then the BYE on the trunk
    # leg when the office held; only the BYE when the trunk did.
    assert one(acts, "trunk").cseq.number == (4 if holder == "lan" else 2)  # type: ignore[union-attr]


def test_reinvite_glare_gets_491_and_unrecordable_reinvite_488() -> None:
    c = Call()
    c.connected()
    reinvite_hold(c, "lan", "sendonly", 2, "z9hG4bKre1")
    acts = reinvite_hold(c, "trunk", "sendonly", 1, "z9hG4bKre2")
    assert [m.status for m in sent(acts)] == [491]  # type: ignore[union-attr]
    c2 = Call()
    c2.connected()
    req = request_in_dialog("INVITE", c2.a_invite, cseq=2, branch="z9hG4bKre3",
                            to=c2.a_ok.headers.get("to"),
                            body=offer(PBX[0], 4000, formats="18").replace(
                                b"a=rtpmap:0 PCMU/8000\r\n", b""))
    acts = c2.box.rx("lan", req)
    assert [m.status for m in sent(acts)] == [488]  # type: ignore[union-attr]
    assert c2.box.b2b.calls[c2.call].state == "confirmed"


def test_digest_challenge_passed_through() -> None:
    c = Call()
    challenge = 'Digest realm="sip.example.net", nonce="abc123", algorithm=MD5, qop="auth"'
    acts = c.box.rx("trunk", reply(c.b_invite, 407, "Proxy Authentication Required",
                                   extra=f"Proxy-Authenticate: {challenge}"))
    relayed = one(acts, "lan")
    assert isinstance(relayed, Response) and relayed.status == 407
    assert relayed.headers.get("proxy-authenticate") == challenge  # unchanged
    assert one(acts, "trunk").method == "ACK"  # type: ignore[union-attr]
    assert not only(acts, CallFinished)
    office_ack = request_in_dialog("ACK", c.a_invite, cseq=1, branch="z9hG4bKinv1",
                                   to=relayed.headers.get("to"))
    assert only(c.box.rx("lan", office_ack), StopTimer)
    creds = ('Digest username="office", realm="sip.example.net", nonce="abc123", '
             'uri="sip:0612345678@sip.example.net", response="0123456789abcdef"')
    retry = invite(branch="z9hG4bKinv2", cseq=2, extra=f"Proxy-Authorization: {creds}")
    acts = c.box.rx("lan", retry)
    b2 = one(acts, "trunk")
    assert isinstance(b2, Request)
    assert b2.headers.get("proxy-authorization") == creds
    assert b2.uri == c.b_invite.uri  # what the digest covers
    assert b2.call_id == c.b_invite.call_id and b2.from_.tag == c.b_invite.from_.tag
    assert b2.cseq.number == 2 and b2.to.tag is None
    assert len(c.box.b2b.calls) == 1
    acts = c.box.rx("trunk", reply(b2, 200, "OK", body=answer("198.51.100.7", 30000)))
    assert one(acts, "lan").status == 200 and only(acts, StartRecording)  # type: ignore[union-attr]


def test_unanswered_challenge_ends_the_call() -> None:
    c = Call()
    acts = c.box.rx("trunk", reply(c.b_invite, 401, "Unauthorized",
                                   extra='WWW-Authenticate: Digest realm="x", nonce="n"'))
    assert one(acts, "lan").headers.get("www-authenticate")  # type: ignore[union-attr]
    linger = next(a.key for a in only(acts, StartTimer) if a.key.kind == "linger")
    acts = c.box.fire(linger, dt=32)
    assert only(acts, CallFinished)[0].outcome == "rejected"
    assert not c.box.b2b.calls


def test_options_answered_from_both_peers_and_in_dialog() -> None:
    box = Box()
    for side, src in (("lan", PBX), ("trunk", TRUNK)):
        opt = wire(f"""
OPTIONS sip:{TRUNK_BOX[0]} SIP/2.0
Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bKopt
Max-Forwards: 70
From: <sip:keepalive@{src[0]}>;tag=k1
To: <sip:{TRUNK_BOX[0]}>
Call-ID: opt1
CSeq: 7 OPTIONS""")
        acts = box.rx(side, opt)
        ok = one(acts, side)
        assert isinstance(ok, Response) and ok.status == 200 and ok.cseq.number == 7
        assert "INVITE" in (ok.headers.get("allow") or "") and ok.to.tag
    assert not box.b2b.calls


def test_media_timeout_releases_both_legs() -> None:
    c = Call()
    c.connected()
    c.announced()
    acts = c.box.event(MediaTimeout, c.call, "trunk")
    byes = sent(acts)
    assert sorted(m.method for m in byes) == ["BYE", "BYE"]  # type: ignore[union-attr]
    assert all('media timeout' in (m.headers.get("reason") or "") for m in byes)
    assert only(acts, StopRecording)[0].reason == "media_timeout"
    assert only(acts, CallFinished)[0].outcome == "recorded"
    assert only(acts, StopRelay)
    assert not c.box.event(MediaTimeout, c.call, "lan")  # once


def incoming(box: Box, number: str = "+33612345678") -> tuple[list[object], Request]:
    inv = invite(call_id="t1@trunk", tag="trk", branch="z9hG4bKtinv", src=TRUNK,
                 ruri="sip:0145678900@203.0.113.2:5062",
                 extra=f"P-Asserted-Identity: <tel:{number}>",
                 body=offer("198.51.100.7", 30000))
    acts = box.rx("trunk", inv)
    return acts, inv


def test_incoming_call_goes_to_the_pbx() -> None:
    box = Box()
    acts, inv = incoming(box)
    assert one(acts, "trunk").status == 100  # type: ignore[union-attr]
    fwd = one(acts, "lan")
    assert isinstance(fwd, Request) and fwd.call_id != inv.call_id
    assert (fwd.vias[0].host, fwd.vias[0].port) == LAN_BOX
    send = next(a for a in acts if isinstance(a, Send) and a.side == "lan")
    assert send.to == PBX
    assert media_of(fwd).connection.address == LAN_BOX[0]  # type: ignore[union-attr]
    assert fwd.headers.get("p-asserted-identity") == "<tel:+33612345678>"
    call = next(iter(box.b2b.calls.values()))
    assert call.direction == "in" and call.info.number == "+33612345678"
    acts = box.rx("lan", reply(fwd, 200, "OK", body=answer(PBX[0], 4000),
                               contact="<sip:100@192.168.1.10>"), source=PBX)
    ok = one(acts, "trunk")
    assert ok.status == 200 and media_of(ok).connection.address == TRUNK_BOX[0]  # type: ignore[union-attr]
    assert only(acts, StartRecording)[0].info.direction == "in"
    assert only(acts, StartAnnouncement)[0].legs == ("trunk", "lan")


def test_do_not_record_list_call_goes_through_unannounced() -> None:
    rules = PrivacyRules(do_not_record=Matcher.of([Entry("0612345678", "number")]).matches)
    box = Box(rules)
    acts, _ = incoming(box, "+33612345678")
    fwd = one(acts, "lan")
    assert fwd.method == "INVITE"  # the call itself goes through  # type: ignore[union-attr]
    acts = box.rx("lan", reply(fwd, 200, "OK", body=answer(PBX[0], 4000)), source=PBX)  # type: ignore[arg-type]
    assert one(acts, "trunk").status == 200  # type: ignore[union-attr]
    ev = only(acts, Evidence)
    assert len(ev) == 1 and ev[0].reason == "do-not-record list"  # type: ignore[attr-defined]
    assert not only(acts, StartRecording) and not only(acts, StartAnnouncement)
    call = next(iter(box.b2b.calls.values()))
    bye = request_in_dialog("BYE", fwd, cseq=2, branch="z9hG4bKpb",  # type: ignore[arg-type]
                            frm=reply(fwd, 200, "OK").headers.get("to"),  # type: ignore[arg-type]
                            to=fwd.headers.get("from"), src=PBX)
    acts = box.rx("lan", bye)
    assert only(acts, CallFinished)[0].outcome == "not_recorded"
    assert not only(acts, StopRecording) and call.id


def test_outgoing_to_a_listed_number_not_recorded() -> None:
    rules = PrivacyRules(do_not_record=Matcher.of([Entry("0612345678", "number")]).matches)
    c = Call(Box(rules))
    acts = c.answer()
    assert only(acts, Evidence) and not only(acts, StartRecording)


def test_refusal_key_during_prompt_and_in_grace() -> None:
    rules = PrivacyRules(refusal_key="9")
    c = Call(Box(rules))
    c.connected()
    assert not c.box.event(KeyPressed, c.call, "trunk", "5")
    acts = c.box.event(KeyPressed, c.call, "trunk", "9")
    assert only(acts, StopAnnouncement) and only(acts, DiscardRecording)
    assert only(acts, Evidence)[0].kind == "call.refused"  # type: ignore[attr-defined]
    acts = c.bye_from_office()
    assert only(acts, CallFinished)[0].outcome == "not_recorded" and not only(acts, StopRecording)

    c = Call(Box(rules))
    c.connected()
    acts = c.announced()
    grace = only(acts, StartTimer)[0].key
    assert grace.kind == "commit" and not only(acts, CommitRecording)
    acts = c.box.event(KeyPressed, c.call, "lan", "9")
    assert only(acts, DiscardRecording) and not only(acts, StopAnnouncement)
    assert not c.box.fire(grace)  # the grace ends with nothing to commit

    c = Call(Box(rules))
    c.connected()
    grace = only(c.announced(), StartTimer)[0].key
    assert only(c.box.fire(grace), CommitRecording)
    assert not c.box.event(KeyPressed, c.call, "trunk", "9")  # too late: recorded


def test_call_ended_during_the_prompt_leaves_nothing() -> None:
    c = Call()
    c.connected()
    acts = c.bye_from_office()
    assert only(acts, StopAnnouncement) and only(acts, DiscardRecording)
    assert not only(acts, StopRecording)
    assert only(acts, CallFinished)[0].outcome == "ended_during_announcement"


def test_retransmitted_invite_is_not_a_second_call() -> None:
    c = Call()
    again = c.box.rx("lan", c.a_invite)
    assert [m.status for m in sent(again)] == [100]  # type: ignore[union-attr]
    assert len(c.box.b2b.calls) == 1
    c.ring()
    again = c.box.rx("lan", c.a_invite)
    assert [m.status for m in sent(again)] == [180]  # type: ignore[union-attr]
    # Same Call-ID and tag on a new branch while the first is pending: 491, no new call.
    acts = c.box.rx("lan", invite(branch="z9hG4bKother", cseq=2))
    assert [m.status for m in sent(acts)] == [491]  # type: ignore[union-attr]
    assert len(c.box.b2b.calls) == 1


def test_invite_retransmitted_by_timer_a_then_408_on_timer_b() -> None:
    c = Call()
    a = next(s.key for s in only(c.start, StartTimer) if s.key.kind == "A")
    b = next(s.key for s in only(c.start, StartTimer) if s.key.kind == "B")
    acts = c.box.fire(a, dt=0.5)
    assert sent(acts, "trunk") == [c.b_invite]
    assert only(acts, StartTimer)[0].after_s == 1.0
    assert only(c.box.fire(a, dt=1.0), StartTimer)[0].after_s == 2.0
    acts = c.box.fire(b, dt=32)
    assert one(acts, "lan").status == 408  # type: ignore[union-attr]
    assert only(acts, CallFinished)[0].outcome == "unanswered"
    # A provisional response stops A.
    c2 = Call()
    c2.ring()
    a2 = next(s.key for s in only(c2.start, StartTimer) if s.key.kind == "A")
    assert not c2.box.fire(a2)


def test_200_retransmitted_until_ack_and_bye_without_ack() -> None:
    c = Call()
    c.ring()
    acts = c.answer()
    g = next(s.key for s in only(acts, StartTimer) if s.key.kind == "G")
    h = next(s.key for s in only(acts, StartTimer) if s.key.kind == "H")
    intervals = []
    for _ in range(5):
        fired = c.box.fire(g)
        assert sent(fired, "lan") == [c.a_ok]
        intervals.append(only(fired, StartTimer)[0].after_s)
    assert intervals == [1.0, 2.0, 4.0, 4.0, 4.0]  # T1 doubling, capped at T2
    # The callee repeats its 200 meanwhile: absorbed until the office's ACK.
    assert not sent(c.box.rx("trunk", c.b_ok))
    acts = c.box.fire(h, dt=32)
    assert sorted(m.method for m in sent(acts)) == ["BYE", "BYE"]  # type: ignore[union-attr]
    assert only(acts, CallFinished)


def test_callee_200_repeated_after_ack_gets_the_same_ack() -> None:
    c = Call()
    c.connected()
    acts = c.box.rx("trunk", c.b_ok)
    ack = one(acts, "trunk")
    assert ack.method == "ACK" and ack.cseq.number == 1  # type: ignore[union-attr]
    assert not c.ack()  # a repeated ACK from the office is not passed on twice


def test_unanswerable_200_is_released_not_connected() -> None:
    c = Call()
    c.ring()
    acts = c.answer(body=answer("198.51.100.7", 30000, formats="18"))  # G.729: not offered
    assert [m.method for m in sent(acts, "trunk")] == ["ACK", "BYE"]  # type: ignore[union-attr]
    assert one(acts, "lan").status == 488  # type: ignore[union-attr]
    assert only(acts, CallFinished)[0].outcome == "not_recordable"
    assert not only(acts, StartRecording)


def test_strangers_get_nothing_and_misplaced_peers_403() -> None:
    box = Box()
    assert box.rx("lan", invite(src=STRANGER), source=STRANGER) == []
    assert box.rx("trunk", invite(src=STRANGER), source=STRANGER) == []
    acts = box.rx("trunk", invite(), source=PBX)  # the PBX on the trunk side
    assert [m.status for m in sent(acts)] == [403]  # type: ignore[union-attr]
    assert not box.b2b.calls
    c = Call()
    # A response nobody asked for, and one from a stranger, are dropped.
    stray = reply(c.b_invite, 200, "OK", body=answer("198.51.100.7", 30000))
    assert c.box.rx("trunk", stray, source=STRANGER) == []
    assert c.box.rx("lan", stray, source=PBX) == []


def with_body(body: bytes, ctype: str) -> Request:
    msg = invite(body=b"")
    data = msg.serialize().replace(b"Content-Length: 0\r\n\r\n",
                                   f"Content-Type: {ctype}\r\nContent-Length: {len(body)}"
                                   f"\r\n\r\n".encode()) + body
    parsed = parse_datagram(data)
    assert isinstance(parsed, Request)
    return parsed


@pytest.mark.parametrize(("request_", "status"), [
    (lambda: invite(body=offer(PBX[0], 4000, formats="18").replace(
        b"a=rtpmap:0 PCMU/8000\r\n", b"")), 488),  # only G.729
    (lambda: with_body(b"v=0\r\nnot sdp\r\n", "application/sdp"), 400),
    (lambda: with_body(b"hello", "text/plain"), 415),
    (lambda: invite(extra="Require: 100rel"), 420),
    (lambda: _mf0(), 483),
    (lambda: invite(ruri="mailto:someone@example.com"), 416),
    (lambda: invite(extra="Accept: text/nobodyKnowsThis"), 406),  # RFC 4475 sdp01
])
def test_malformed_but_parsed_requests(request_: object, status: int) -> None:
    box = Box()
    acts = box.rx("lan", request_())  # type: ignore[operator]
    assert [m.status for m in sent(acts)] == [status]  # type: ignore[union-attr]
    assert not box.b2b.calls and not only(acts, StartRecording)


def test_accept_naming_sdp_or_a_wildcard_is_a_call() -> None:
    for accept in ("application/sdp", "application/*;q=0.5, text/plain", "*/*"):
        box = Box()
        acts = box.rx("lan", invite(extra=f"Accept: {accept}"))
        assert box.b2b.calls, accept
        assert one(acts, "trunk").method == "INVITE"  # type: ignore[union-attr]


def late_offer_call() -> tuple[Call, list[object]]:
    """An outgoing call whose INVITE has no SDP, answered by the trunk: (call, answer acts)."""
    c = Call(body=b"")
    c.ring()
    return c, c.answer()


def test_late_offer_the_box_offers_and_takes_the_answer_from_the_ack() -> None:
    c, acts = late_offer_call()
    offer = media_of(c.b_invite)  # the box's own offer to the trunk: what it records
    assert offer.media[0].formats == ["0", "8", "101"]
    assert offer.connection is not None and offer.connection.address == TRUNK_BOX[0]
    call = c.box.b2b.calls[c.call]
    assert offer.media[0].port == call.b.relay_port
    # The 200 to the office is the box's offer: the trunk's choice (PCMA) at the relay.
    s = media_of(c.a_ok)
    assert s.media[0].formats == ["8", "101"] and s.media[0].port == call.a.relay_port
    relay = only(acts, StartRelay)[0]
    assert relay.lan.remote is None or relay.lan.remote[1] == 0  # not known before the ACK
    assert only(acts, StartRecording)  # recording starts at the answer, as always
    assert not only(acts, StartAnnouncement)  # the prompt waits for the office's answer
    ack = request_in_dialog("ACK", c.a_invite, cseq=1, branch="z9hG4bKack1",
                            to=c.a_ok.headers.get("to"), body=answer(PBX[0], 4002))
    acts = c.box.rx("lan", ack)
    fwd = one(acts, "trunk")
    assert isinstance(fwd, Request) and fwd.method == "ACK" and not fwd.body
    update = only(acts, UpdateRelay)[0]
    assert update.lan.remote == (PBX[0], 4002) and dict(update.lan.codecs) == {8: "PCMA"}
    assert only(acts, StartAnnouncement)[0].legs == ("trunk", "lan")
    assert only(c.announced(), CommitRecording)


def test_late_offer_early_media_not_offered_in_a_provisional() -> None:
    c = Call(body=b"")
    acts = c.box.rx("trunk", reply(c.b_invite, 183, "Session Progress",
                                   body=answer("198.51.100.7", 30000)))
    progress = one(acts, "lan")
    assert isinstance(progress, Response) and progress.status == 183 and not progress.body
    assert not only(acts, StartRelay)


@pytest.mark.parametrize("body", [b"", answer(PBX[0], 4002, formats="18")])
def test_late_offer_without_a_usable_answer_in_the_ack_is_released(body: bytes) -> None:
    c, _ = late_offer_call()
    ack = request_in_dialog("ACK", c.a_invite, cseq=1, branch="z9hG4bKack1",
                            to=c.a_ok.headers.get("to"), body=body)
    acts = c.box.rx("lan", ack)
    byes = [m for m in sent(acts) if isinstance(m, Request) and m.method == "BYE"]
    assert sorted(b.call_id == c.a_invite.call_id for b in byes) == [False, True]
    assert only(acts, DiscardRecording) and not only(acts, StartAnnouncement)
    assert only(acts, CallFinished)[0].outcome == "not_recordable"


def _mf0() -> Request:
    msg = invite()
    msg.headers.set("Max-Forwards", "0")
    return msg


def test_other_methods_and_unknown_dialogs() -> None:
    box = Box()
    base = invite()
    # (REGISTER from the office is relayed to the provider: test_sip_registration.py)
    for method, status in (("SUBSCRIBE", 405), ("FOO", 501), ("BYE", 481)):
        req = wire(f"""
{method} sip:{LAN_BOX[0]} SIP/2.0
Via: SIP/2.0/UDP {PBX[0]}:{PBX[1]};branch=z9hG4bK{method}
Max-Forwards: 70
From: {base.headers.get('from')}
To: <sip:{LAN_BOX[0]}>
Call-ID: x@pbx
CSeq: 1 {method}""")
        assert [m.status for m in sent(box.rx("lan", req))] == [status]  # type: ignore[union-attr]
    # In a dialog the box does not know: 481; an ACK for it is dropped.
    bye = request_in_dialog("BYE", base, cseq=2, branch="z9hG4bKb", to=base.headers.get("to")
                            + ";tag=nope")
    assert [m.status for m in sent(box.rx("lan", bye))] == [481]  # type: ignore[union-attr]
    ack = request_in_dialog("ACK", base, cseq=1, branch="z9hG4bKa", to=base.headers.get("to")
                            + ";tag=nope")
    assert box.rx("lan", ack) == []
    version = parse_datagram(base.serialize().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert [m.status for m in sent(box.rx("lan", version))] == [505]  # type: ignore[union-attr]


def test_finished_call_lingers_then_is_forgotten_and_ports_reused() -> None:
    c = Call(Box(rtp_ports=(20000, 20004)))  # room for one call (two ports)
    c.connected()
    c.announced()
    acts = c.bye_from_office()
    linger = next(a.key for a in only(acts, StartTimer) if a.key.kind == "linger")
    again = c.box.rx("lan", c.a_bye)  # retransmitted BYE within the linger: 200 again
    assert [m.status for m in sent(again)] == [200]  # type: ignore[union-attr]
    busy = c.box.rx("lan", invite(call_id="a2@pbx", branch="z9hG4bKinv9"))
    assert [m.status for m in sent(busy)] == [503]  # type: ignore[union-attr]
    c.box.fire(linger, dt=32)
    assert not c.box.b2b.calls
    assert [m.status for m in sent(c.box.rx("lan", c.a_bye))] == [481]  # type: ignore[union-attr]
    c2 = Call(c.box, call_id="a3@pbx", branch="z9hG4bKinv10")
    assert media_of(c2.b_invite).media[0].port in (20000, 20002)


def test_announcement_failure_means_no_recording() -> None:
    c = Call()
    c.connected()
    acts = c.box.event(bb.AnnouncementFinished, c.call, False, "prompt missing")
    assert only(acts, DiscardRecording) and not only(acts, CommitRecording)
    assert only(c.bye_from_office(), CallFinished)[0].outcome == "not_recorded"


def test_office_only_announcement_setting() -> None:
    c = Call(Box(announce_to_office=False))
    c.ring()
    assert only(c.answer(), StartAnnouncement)[0].legs == ("trunk",)


def test_peer_sending_from_another_port_is_answered_there() -> None:
    box = Box()
    ephemeral = (PBX[0], 40123)
    acts = box.rx("lan", invite(src=ephemeral), source=ephemeral)
    sends = [a for a in acts if isinstance(a, Send)]
    assert [(s.side, s.to) for s in sends] == [("lan", ephemeral), ("trunk", TRUNK)]
    fwd = sends[1].message
    acts = box.rx("trunk", reply(fwd, 180, "Ringing"))  # type: ignore[arg-type]
    assert [a.to for a in acts if isinstance(a, Send)] == [ephemeral]


def test_second_answer_of_a_forked_invite_is_released() -> None:
    c = Call()
    c.ring()
    c.answer()
    fork = reply(c.b_invite, 200, "OK", to_tag="fork2", body=answer("198.51.100.8", 31000),
                 contact="<sip:other@198.51.100.1:5060>")
    acts = c.box.rx("trunk", fork)
    msgs = sent(acts, "trunk")
    assert [m.method for m in msgs] == ["ACK", "BYE"]  # type: ignore[union-attr]
    assert all(m.to.tag == "fork2" and m.uri == "sip:other@198.51.100.1:5060" for m in msgs)
    assert not sent(acts, "lan") and not only(acts, UpdateRelay)
    assert [m.method for m in sent(c.box.rx("trunk", fork))] == ["ACK"]  # type: ignore[union-attr]
    c.ack()
    assert c.box.b2b.calls[c.call].b.remote_tag == "far"  # the call kept its first answer


def test_no_media_timeout_release_while_on_hold() -> None:
    c = Call()
    c.connected()
    acts = reinvite_hold(c, "lan", "sendonly", 2, "z9hG4bKh")
    fwd = one(acts, "trunk")
    c.box.rx("trunk", reply(fwd, 200, "OK", to_tag=None,  # type: ignore[arg-type]
                            body=answer("198.51.100.7", 30000, direction="recvonly")))
    assert not c.box.event(MediaTimeout, c.call, "lan")


def test_in_dialog_info_501_and_stale_cseq_500() -> None:
    c = Call()
    c.connected()
    to = c.a_ok.headers.get("to")
    info = request_in_dialog("INFO", c.a_invite, cseq=2, branch="z9hG4bKi", to=to)
    assert [m.status for m in sent(c.box.rx("lan", info))] == [501]  # type: ignore[union-attr]
    stale = request_in_dialog("INVITE", c.a_invite, cseq=1, branch="z9hG4bKs", to=to,
                              body=offer(PBX[0], 4000))
    assert [m.status for m in sent(c.box.rx("lan", stale))] == [500]  # type: ignore[union-attr]
    wrong_tag = request_in_dialog("BYE", c.a_invite, cseq=3, branch="z9hG4bKw", to=to,
                                  frm='<sip:0145678900@sip.example.net>;tag=someone-else')
    assert [m.status for m in sent(c.box.rx("lan", wrong_tag))] == [481]  # type: ignore[union-attr]
    assert c.box.b2b.calls[c.call].state == "confirmed"


# -- the provider's digest challenges, answered with the box's trunk credentials -----------

CREDS = bb.Credentials("box-account", "s3cret pass")
REALM = "sip.example.net"


def challenge_of(status: int, nonce: str, *, stale: bool = False, realm: str = REALM) -> str:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return (f'{name}: Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, '
            f'qop="auth,auth-int", opaque="op-{nonce}"' + (", stale=true" if stale else ""))


def challenged(req: Request, status: int, nonce: str, **kw: object) -> Response:
    reason = "Proxy Authentication Required" if status == 407 else "Unauthorized"
    return reply(req, status, reason, extra=challenge_of(status, nonce, **kw))  # type: ignore[arg-type]


def check_digest(req: Request, field: str, nonce: str, nc: int = 1,
                 creds: bb.Credentials = CREDS) -> dict[str, str]:
    """The credentials in `req`, the response recomputed independently (RFC 2617 3.2.2)."""
    values = req.headers.get_all(field)
    assert len(values) == 1, values
    p = digest_params(values[0])
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{creds.username}:{REALM}:{creds.password}")
    ha2 = md5(f"{req.method}:{req.uri}")
    expected = md5(f"{ha1}:{nonce}:{nc:08x}:{p['cnonce']}:auth:{ha2}")
    assert p == {"username": creds.username, "realm": REALM, "nonce": nonce, "uri": req.uri,
                 "response": expected, "algorithm": "MD5", "opaque": f"op-{nonce}",
                 "qop": "auth", "nc": f"{nc:08x}", "cnonce": p["cnonce"]}
    return p


def test_trunk_challenge_answered_with_the_configured_credentials() -> None:
    c = Call(Box(trunk_credentials=CREDS),
             extra="P-Asserted-Identity: <sip:0145678900@sip.example.net>")
    c.box.rx("trunk", reply(c.b_invite, 100, "Trying", to_tag=None))
    first = c.b_invite
    acts = c.box.rx("trunk", challenged(first, 407, "n1"))
    assert not sent(acts, "lan")  # the office keeps its 100 and hears nothing of it
    assert not only(acts, CallFinished)
    ack, b2 = sent(acts, "trunk")
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.cseq.number == 1
    assert ack.vias[0].branch == first.vias[0].branch
    assert isinstance(b2, Request) and b2.method == "INVITE"
    assert b2.call_id == first.call_id and b2.from_.tag == first.from_.tag and b2.to.tag is None
    assert b2.cseq.number == 2 and b2.uri == first.uri and b2.body == first.body
    assert b2.vias[0].branch not in (None, first.vias[0].branch)
    assert b2.max_forwards == 69
    assert b2.headers.get("p-asserted-identity") == "<sip:0145678900@sip.example.net>"
    assert b2.headers.get("authorization") is None
    p = check_digest(b2, "proxy-authorization", "n1")
    assert p["cnonce"]
    ref = f"{b2.vias[0].branch} INVITE"
    assert {(a.key.kind, a.key.ref) for a in only(acts, StartTimer)} == {("A", ref), ("B", ref)}
    # The 407 repeated (our ACK lost): the same ACK, no second INVITE.
    again = c.box.rx("trunk", challenged(first, 407, "n1"))
    assert sent(again) == [ack]
    # From here the call proceeds as any other, on the new INVITE.
    c.b_invite = b2
    ringing = one(c.ring(), "lan")
    assert isinstance(ringing, Response) and ringing.status == 180
    acts = c.answer()
    assert one(acts, "lan").status == 200 and only(acts, StartRecording)  # type: ignore[union-attr]
    acts = c.ack()
    ack2 = one(acts, "trunk")
    assert isinstance(ack2, Request) and ack2.method == "ACK" and ack2.cseq.number == 2
    # RFC 3261 13.2.2.4: the ACK of the 2xx carries the INVITE's credentials.
    assert ack2.headers.get("proxy-authorization") == b2.headers.get("proxy-authorization")
    bye = one(c.bye_from_office(), "trunk")
    assert bye.method == "BYE" and bye.cseq.number == 3  # type: ignore[union-attr]
    assert len(c.box.b2b.calls) == 1


def test_wrong_trunk_password_fails_once_with_403_no_loop() -> None:
    c = Call(Box(trunk_credentials=CREDS))
    ringing = one(c.ring(), "lan")
    acts = c.box.rx("trunk", challenged(c.b_invite, 401, "n1"))
    b2 = sent(acts, "trunk")[1]
    assert isinstance(b2, Request)
    check_digest(b2, "authorization", "n1")
    acts = c.box.rx("trunk", challenged(b2, 401, "n2"))  # a fresh nonce, not stale: refused
    ack = one(acts, "trunk")
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.cseq.number == 2
    failed = one(acts, "lan")
    assert isinstance(failed, Response) and failed.status == 403
    assert failed.headers.get("www-authenticate") is None  # the challenge is the box's
    assert "trunk credentials" in (failed.headers.get("warning") or "")
    assert failed.to.tag == ringing.to.tag  # the caller's early dialog, ended
    assert only(acts, CallFinished)[0].outcome == "failed"
    assert not only(acts, StartRecording)
    again = c.box.rx("trunk", challenged(b2, 401, "n2"))
    assert sent(again) == [ack]


def test_stale_nonce_retried_once() -> None:
    c = Call(Box(trunk_credentials=CREDS))
    b2 = sent(c.box.rx("trunk", challenged(c.b_invite, 407, "n1")), "trunk")[1]
    assert isinstance(b2, Request)
    acts = c.box.rx("trunk", challenged(b2, 407, "n2", stale=True))
    assert not sent(acts, "lan")
    b3 = sent(acts, "trunk")[1]
    assert isinstance(b3, Request) and b3.cseq.number == 3
    check_digest(b3, "proxy-authorization", "n2")  # only the new answer, not the old one
    # Stale again: once was the limit.
    acts = c.box.rx("trunk", challenged(b3, 407, "n3", stale=True))
    assert [m.method for m in sent(acts, "trunk")] == ["ACK"]  # type: ignore[union-attr]
    assert one(acts, "lan").status == 403  # type: ignore[union-attr]


def test_same_nonce_challenged_again_counts_nc() -> None:
    # A stale answer reusing the nonce (a provider's quirk): nc goes up.
    c = Call(Box(trunk_credentials=CREDS))
    b2 = sent(c.box.rx("trunk", challenged(c.b_invite, 407, "n1")), "trunk")[1]
    b3 = sent(c.box.rx("trunk", challenged(b2, 407, "n1", stale=True)), "trunk")[1]  # type: ignore[arg-type]
    assert isinstance(b3, Request)
    check_digest(b3, "proxy-authorization", "n1", nc=2)


@pytest.mark.parametrize("case", ["phone credentials", "no credentials", "other realm",
                                  "malformed"])
def test_challenge_passed_through_when_not_the_box_s(case: str) -> None:
    creds = {"no credentials": None,
             "other realm": bb.Credentials("u", "p", realm="other.example")}.get(case, CREDS)
    extra = ('Proxy-Authorization: Digest username="office", realm="sip.example.net", '
             'nonce="old", uri="sip:0612345678@sip.example.net", response="00"'
             if case == "phone credentials" else "")
    c = Call(Box(trunk_credentials=creds), extra=extra)
    header = (challenge_of(407, "n1") if case != "malformed"
              else 'Proxy-Authenticate: Digest realm="sip.example.net"')
    acts = c.box.rx("trunk", reply(c.b_invite, 407, "Proxy Authentication Required",
                                   extra=header))
    relayed = one(acts, "lan")
    assert isinstance(relayed, Response) and relayed.status == 407
    assert relayed.headers.get("proxy-authenticate") == header.split(": ", 1)[1]  # unchanged
    assert [m.method for m in sent(acts, "trunk")] == ["ACK"]  # type: ignore[union-attr]
    assert c.box.b2b.calls[c.call].state == "challenged"


def test_bye_challenged_is_sent_again_with_credentials() -> None:
    c = Call(Box(trunk_credentials=CREDS))
    c.connected()
    acts = c.bye_from_office()
    bye = one(acts, "trunk")
    assert isinstance(bye, Request) and bye.cseq.number == 2
    acts = c.box.rx("trunk", challenged(bye, 401, "nb"))
    bye2 = one(acts, "trunk")
    assert isinstance(bye2, Request) and bye2.method == "BYE" and bye2.cseq.number == 3
    assert bye2.call_id == bye.call_id and bye2.to.tag == "far"
    assert bye2.from_.tag == bye.from_.tag and bye2.uri == bye.uri
    assert bye2.vias[0].branch != bye.vias[0].branch
    check_digest(bye2, "authorization", "nb")
    ref = f"{bye.vias[0].branch} BYE"
    assert {(a.key.kind, a.key.ref) for a in only(acts, StopTimer)} == {("E", ref), ("F", ref)}
    # Refused again: given up, not looped (the call is over for the office anyway).
    acts = c.box.rx("trunk", challenged(bye2, 401, "nb2"))
    assert not sent(acts) and {a.key.kind for a in only(acts, StopTimer)} == {"E", "F"}


def test_reinvite_challenged_is_sent_again_with_credentials() -> None:
    c = Call(Box(trunk_credentials=CREDS))
    c.connected()
    acts = reinvite_hold(c, "lan", "sendonly", 2, "z9hG4bKhold")
    re_b = one(acts, "trunk")
    assert isinstance(re_b, Request) and re_b.method == "INVITE"
    acts = c.box.rx("trunk", challenged(re_b, 407, "nr"))
    assert not sent(acts, "lan")
    ack, re_b2 = sent(acts, "trunk")
    assert ack.method == "ACK" and re_b2.method == "INVITE"  # type: ignore[union-attr]
    assert isinstance(re_b2, Request) and re_b2.cseq.number == re_b.cseq.number + 1
    assert re_b2.to.tag == "far" and re_b2.body == re_b.body
    check_digest(re_b2, "proxy-authorization", "nr")
    acts = c.box.rx("trunk", reply(re_b2, 200, "OK",
                                   body=answer("198.51.100.7", 30000, direction="recvonly")))
    assert one(acts, "lan").status == 200  # type: ignore[union-attr]


def test_incoming_calls_never_challenged_nor_pbx_challenges_answered() -> None:
    box = Box(trunk_credentials=CREDS)
    acts, _ = incoming(box)
    assert [m.status for m in sent(acts, "trunk")] == [100]  # type: ignore[union-attr]
    fwd = one(acts, "lan")
    assert isinstance(fwd, Request)
    # The office PBX challenging the box: the trunk's credentials are not for it.
    acts = box.rx("lan", reply(fwd, 401, "Unauthorized", extra=challenge_of(401, "p")),
                  source=PBX)
    assert [m.method for m in sent(acts, "lan")] == ["ACK"]  # type: ignore[union-attr]
    assert one(acts, "trunk").status == 401  # type: ignore[union-attr]


def test_cancel_while_the_answered_invite_is_pending() -> None:
    c = Call(Box(trunk_credentials=CREDS))
    b2 = sent(c.box.rx("trunk", challenged(c.b_invite, 407, "n1")), "trunk")[1]
    assert isinstance(b2, Request)
    acts = c.box.rx("lan", on_invite_branch("CANCEL"))
    assert [m.status for m in sent(acts, "lan")] == [200, 487]  # type: ignore[union-attr]
    assert not sent(acts, "trunk")  # waits for a provisional response to the new INVITE
    acts = c.box.rx("trunk", reply(b2, 180, "Ringing"))
    cancel = one(acts, "trunk")
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.vias[0].branch == b2.vias[0].branch and cancel.cseq.number == 2
    # A challenge to a cancelled INVITE is not answered.
    acts = c.box.rx("trunk", challenged(b2, 407, "n2", stale=True))
    assert [m.method for m in sent(acts)] == ["ACK"]  # type: ignore[union-attr]
