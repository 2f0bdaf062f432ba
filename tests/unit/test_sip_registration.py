"""The office's REGISTERs relayed to the provider, and the keep-alive OPTIONS (callrec.sip
registration / keepalive through the B2BUA), driven with event scripts as in test_b2bua."""

from __future__ import annotations

from test_b2bua import PBX, STRANGER, TRUNK, TRUNK_BOX, Box, one, only, sent, wire

from callrec.sip import client_tx, keepalive, registration
from callrec.sip.b2bua import Send, StartTimer, StopTimer, TimerKey, TrunkState
from callrec.sip.digest import Credentials
from callrec.sip.message import Request, Response, parse_datagram
from support import digest_params

REALM = "provider.test"


def register(*, call_id: str = "reg1@pbx", cseq: int = 1, branch: str = "z9hG4bKreg1",
             expires: str = "3600", auth: str = "",
             contact: str = "<sip:0140000000@192.168.1.10:5060;transport=udp>;expires=3600;"
                            "+sip.instance=\"<urn:uuid:1>\"") -> Request:
    msg = wire(f"""
REGISTER sip:sip.example.net SIP/2.0
Via: SIP/2.0/UDP {PBX[0]}:{PBX[1]};branch={branch};rport
Max-Forwards: 70
From: <sip:0140000000@sip.example.net>;tag=pbxreg
To: <sip:0140000000@sip.example.net>
Call-ID: {call_id}
CSeq: {cseq} REGISTER
Contact: {contact}
Expires: {expires}
User-Agent: Office PBX 1.0
{auth}""".replace("\n\n", "\n").rstrip("\n"))
    assert isinstance(msg, Request)
    return msg


def provider_reply(req: Request, status: int, reason: str, extra: str = "") -> Response:
    lines = [f"SIP/2.0 {status} {reason}", *[f"Via: {v}" for v in req.headers.get_all("via")],
             f"From: {req.headers.get('from')}", f"To: {req.headers.get('to')};tag=reg77",
             f"Call-ID: {req.call_id}", f"CSeq: {req.headers.get('cseq')}"]
    if extra:
        lines.append(extra)
    msg = wire("\n".join(lines))
    assert isinstance(msg, Response)
    return msg


CHALLENGE = f'WWW-Authenticate: Digest realm="{REALM}", nonce="abc123", algorithm=MD5, qop="auth"'
BOX_CONTACT = f"sip:0140000000@{TRUNK_BOX[0]}:{TRUNK_BOX[1]}"


def relayed(box: Box, req: Request) -> Request:
    fwd = one(box.rx("lan", req), "trunk")
    assert isinstance(fwd, Request)
    return fwd


def test_register_relayed_with_the_box_contact_and_a_stable_call_id() -> None:
    box = Box(trunk_keepalive_s=0)
    acts = box.rx("lan", register())
    fwd = one(acts, "trunk")
    assert isinstance(fwd, Request) and fwd.method == "REGISTER"
    assert only(acts, Send)[0].to == TRUNK
    assert fwd.uri == "sip:sip.example.net"
    assert fwd.headers.get("to") == "<sip:0140000000@sip.example.net>"
    assert fwd.headers.get("from") == "<sip:0140000000@sip.example.net>;tag=pbxreg"
    assert fwd.headers.get_all("contact") == [f"<{BOX_CONTACT}>;expires=3600"]
    assert fwd.headers.get("expires") == "3600"
    assert fwd.headers.get("max-forwards") == "70"
    assert fwd.call_id != "reg1@pbx" and fwd.cseq.number == 1
    assert fwd.vias[0].host == TRUNK_BOX[0] and fwd.vias[0].port == TRUNK_BOX[1]
    assert len(fwd.vias) == 1
    assert fwd.headers.get("user-agent") is None
    # E and F as for any non-INVITE request the box sends.
    keys = {a.key.kind: a for a in only(acts, StartTimer)}
    assert keys["E"].after_s == 0.5 and keys["F"].after_s == 32.0
    # A refresh of the same registration (same Call-ID): same box Call-ID, CSeq + 1.
    box.rx("trunk", provider_reply(fwd, 200, "OK", f"Contact: <{BOX_CONTACT}>;expires=3600"))
    again = relayed(box, register(cseq=2, branch="z9hG4bKreg2"))
    assert again.call_id == fwd.call_id and again.cseq.number == 2
    assert again.vias[0].branch != fwd.vias[0].branch
    # Another registration (another Call-ID): a Call-ID of its own.
    other = relayed(box, register(call_id="reg2@pbx", branch="z9hG4bKreg3"))
    assert other.call_id not in (fwd.call_id, "reg2@pbx") and other.cseq.number == 1


def test_challenge_relayed_then_the_pbx_credentials_forwarded_unchanged() -> None:
    box = Box(trunk_keepalive_s=0)
    fwd = relayed(box, register())
    acts = box.rx("trunk", provider_reply(fwd, 401, "Unauthorized", CHALLENGE))
    got = one(acts, "lan")
    assert isinstance(got, Response) and got.status == 401
    assert got.headers.get("www-authenticate") == CHALLENGE.split(": ", 1)[1]
    assert got.call_id == "reg1@pbx" and got.headers.get("cseq") == "1 REGISTER"
    assert got.vias[0].branch == "z9hG4bKreg1" and got.to.tag == "reg77"
    assert only(acts, StopTimer)  # E and F stopped
    # The PBX answers the challenge: its Authorization reaches the provider as it was.
    authz = ('Authorization: Digest username="0140000000", realm="provider.test", '
             'nonce="abc123", uri="sip:sip.example.net", response="0123456789abcdef", '
             'algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"')
    fwd2 = relayed(box, register(cseq=2, branch="z9hG4bKreg2", auth=authz))
    assert fwd2.headers.get("authorization") == authz.split(": ", 1)[1]
    assert fwd2.uri == "sip:sip.example.net"  # the digest's uri still holds
    assert fwd2.call_id == fwd.call_id and fwd2.cseq.number == 2
    # 200 with the box's binding: relayed with the PBX's own Contact, expires kept.
    ok = provider_reply(fwd2, 200, "OK",
                        f"Contact: <{BOX_CONTACT}>;expires=600\nContact: "
                        "<sip:0140000000@192.0.2.99:5060>;expires=100\n"
                        "Date: Sat, 13 Nov 2010 23:29:00 GMT")
    got = one(box.rx("trunk", ok), "lan")
    assert isinstance(got, Response) and got.status == 200
    assert got.headers.get_all("contact") == [
        "<sip:0140000000@192.168.1.10:5060;transport=udp>;expires=600"]
    assert got.headers.get("date") == "Sat, 13 Nov 2010 23:29:00 GMT"
    status = box.b2b.registrations.status(box.t)
    assert status["relayed"] == 2 and status["last_status"] == 200 and status["bound"] == 1
    assert 595 <= status["expires_in_s"] <= 600
    assert "0140000000" not in repr(status)


def test_box_answers_the_challenge_when_the_pbx_sent_no_credentials() -> None:
    box = Box(trunk_keepalive_s=0, trunk_credentials=Credentials("callrec", "secret", REALM))
    fwd = relayed(box, register())
    acts = box.rx("trunk", provider_reply(fwd, 401, "Unauthorized", CHALLENGE))
    assert not sent(acts, "lan")  # the PBX hears nothing of it
    again = one(acts, "trunk")
    assert isinstance(again, Request)
    assert again.call_id == fwd.call_id and again.cseq.number == 2
    params = digest_params(again.headers.get("authorization") or "")
    assert params["username"] == "callrec" and params["uri"] == "sip:sip.example.net"
    assert params["realm"] == REALM
    got = one(box.rx("trunk", provider_reply(again, 200, "OK",
                                             f"Contact: <{BOX_CONTACT}>;expires=60")), "lan")
    assert isinstance(got, Response) and got.status == 200 and got.cseq.number == 1
    # Refused once more (not stale): 403 with a Warning, no loop.
    fwd = relayed(box, register(cseq=2, branch="z9hG4bKreg2"))
    again = one(box.rx("trunk", provider_reply(fwd, 401, "Unauthorized", CHALLENGE)), "trunk")
    assert isinstance(again, Request)
    got = one(box.rx("trunk", provider_reply(again, 401, "Unauthorized", CHALLENGE)), "lan")
    assert isinstance(got, Response) and got.status == 403
    assert "refused" in (got.headers.get("warning") or "")


def test_pbx_credentials_are_never_replaced_by_the_box() -> None:
    box = Box(trunk_keepalive_s=0, trunk_credentials=Credentials("callrec", "secret", REALM))
    fwd = relayed(box, register(auth='Authorization: Digest username="pbx", realm="x", '
                                     'nonce="n", uri="sip:sip.example.net", response="00"'))
    got = one(box.rx("trunk", provider_reply(fwd, 401, "Unauthorized", CHALLENGE)), "lan")
    assert isinstance(got, Response) and got.status == 401


def test_unanswered_register_retransmitted_then_408() -> None:
    box = Box(trunk_keepalive_s=0)
    acts = box.rx("lan", register())
    fwd = one(acts, "trunk")
    e = next(a.key for a in only(acts, StartTimer) if a.key.kind == "E")
    f = next(a.key for a in only(acts, StartTimer) if a.key.kind == "F")
    intervals = []
    for _ in range(5):
        acts = box.fire(e)
        assert one(acts, "trunk").serialize() == fwd.serialize()
        intervals.append(only(acts, StartTimer)[0].after_s)
    assert intervals == [1.0, 2.0, 4.0, 4.0, 4.0]
    # The PBX's own retransmission while pending: nothing more goes out.
    assert not sent(box.rx("lan", register()))
    got = one(box.fire(f), "lan")
    assert isinstance(got, Response) and got.status == 408 and got.call_id == "reg1@pbx"
    assert not box.fire(e)  # retransmissions over
    # Its retransmission afterwards gets the 408 again; a late 200 changes nothing.
    again = one(box.rx("lan", register()), "lan")
    assert isinstance(again, Response) and again.status == 408
    assert not box.rx("trunk", provider_reply(fwd, 200, "OK"))
    assert box.b2b.registrations.status(box.t)["last_status"] == 408


def test_provisional_slows_retransmissions_and_goes_no_further() -> None:
    box = Box(trunk_keepalive_s=0)
    acts = box.rx("lan", register())
    fwd = one(acts, "trunk")
    assert isinstance(fwd, Request)
    assert not box.rx("trunk", provider_reply(fwd, 100, "Trying"))
    e = next(a.key for a in only(acts, StartTimer) if a.key.kind == "E")
    assert only(box.fire(e), StartTimer)[0].after_s == 4.0


def test_register_from_trunk_405_and_from_stranger_dropped() -> None:
    box = Box(trunk_keepalive_s=0)
    got = one(box.rx("trunk", register(), source=TRUNK), "trunk")
    assert isinstance(got, Response) and got.status == 405
    assert not box.rx("lan", register(), source=STRANGER)
    assert box.b2b.registrations.relayed == 0


def test_unregister_all_goes_as_it_is() -> None:
    box = Box(trunk_keepalive_s=0)
    fwd = relayed(box, register(contact="*", expires="0"))
    assert fwd.headers.get_all("contact") == ["*"] and fwd.headers.get("expires") == "0"


# -- keep-alive ------------------------------------------------------------------------------
ROUND = TimerKey(keepalive.TIMERS, "round")


def start(box: Box) -> list[object]:
    """What the line does as it starts (the B2BUA's `start`), re-parsed like `Box.feed`."""
    out: list[object] = []
    for a in box.b2b.start(box.t):
        if isinstance(a, Send):
            a = Send(a.side, a.to, parse_datagram(a.message.serialize()))
        out.append(a)
    return out


def options_of(acts: list[object]) -> Request:
    req = one(acts, "trunk")
    assert isinstance(req, Request) and req.method == "OPTIONS"
    return req


def test_keepalive_options_every_interval_and_reachability() -> None:
    box = Box(trunk_keepalive_s=10)
    acts = start(box)
    first = options_of(acts)
    assert only(acts, Send)[0].to == TRUNK
    assert first.uri == f"sip:{TRUNK[0]}:{TRUNK[1]}" and first.headers.get("max-forwards") == "70"
    assert StartTimer(ROUND, 10) in acts
    # Even a 405 means the provider is there.
    acts = box.rx("trunk", provider_reply(first, 405, "Method Not Allowed"))
    assert only(acts, TrunkState) == [TrunkState(True, only(acts, TrunkState)[0].detail,
                                                 since=box.t)]
    acts = box.fire(ROUND, dt=10)
    second = options_of(acts)
    assert second.call_id == first.call_id and second.cseq.number == 2
    assert second.vias[0].branch != first.vias[0].branch
    assert not only(box.rx("trunk", provider_reply(second, 200, "OK")), TrunkState)  # no change
    # Nothing answers: retransmitted on E, unreachable at F.
    acts = box.fire(ROUND, dt=10)
    third = options_of(acts)
    sent_at = box.t
    e = TimerKey(keepalive.TIMERS, "E", third.vias[0].branch or "")
    f = TimerKey(keepalive.TIMERS, "F", third.vias[0].branch or "")
    assert options_of(box.fire(e)).serialize() == third.serialize()
    acts = box.fire(ROUND, dt=10)
    assert not sent(acts) and StartTimer(ROUND, 10) in acts  # one pending is enough
    acts = box.fire(f, dt=client_tx.TX_TIMEOUT - 10)
    (state,) = only(acts, TrunkState)
    assert not state.reachable and state.since == sent_at
    assert state.detail == f"the SIP provider does not answer OPTIONS at {TRUNK[0]}:{TRUNK[1]}"
    # The next round sends a new one; its answer clears the state.
    fourth = options_of(box.fire(ROUND))
    (state,) = only(box.rx("trunk", provider_reply(fourth, 404, "Not Found")), TrunkState)
    assert state.reachable


def test_keepalive_three_unanswered_rounds_unreachable() -> None:
    box = Box(trunk_keepalive_s=5)
    first = options_of(start(box))
    for _ in range(keepalive.FAILURES - 1):
        assert not only(box.fire(ROUND, dt=5), TrunkState)
    (state,) = only(box.fire(ROUND, dt=5), TrunkState)
    assert not state.reachable
    assert not only(box.fire(ROUND, dt=5), TrunkState)  # said once
    # A late answer to the one still pending: reachable again.
    (state,) = only(box.rx("trunk", provider_reply(first, 200, "OK")), TrunkState)
    assert state.reachable
    assert options_of(box.fire(ROUND, dt=5)).cseq.number == 2


def test_keepalive_off_and_not_for_calls() -> None:
    box = Box(trunk_keepalive_s=0)
    assert start(box) == []
    # An OPTIONS response not of the keep-alive is ignored.
    stray = wire(f"""
SIP/2.0 200 OK
Via: SIP/2.0/UDP {TRUNK_BOX[0]}:{TRUNK_BOX[1]};branch=z9hG4bKzz
From: <sip:x@y>;tag=1
To: <sip:y@z>;tag=2
Call-ID: other@x
CSeq: 1 OPTIONS""")
    assert not box.rx("trunk", stray)
    assert registration.TIMERS != keepalive.TIMERS
