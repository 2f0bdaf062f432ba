"""The SIP test harness against real peers, before the B2BUA exists: SIPp's built-in UAS and
UAC and a headless baresip, started on loopback by `sip_peers` (tests/sip_peers.py), talk to a
tiny client on callrec.sip.message + callrec.sip.transport and to each other. What they answer
must parse with the box's parser, and SIPp must count every call as successful (exit 0).

These are the fixtures the call-flow tests will put the box between.
"""

from __future__ import annotations

import uuid

import pytest

from callrec.sip.message import Response
from sip_peers import PeerFactory, sdp_offer

pytestmark = pytest.mark.sip


def test_sipp_uas_answers_options_and_a_whole_call(sip_peers: PeerFactory) -> None:
    # OPTIONS: SIPp's -aa answers it, but counts it as a call of its own that never ends,
    # so the call below goes to a second UAS whose exit status says whether it went well.
    pinged = sip_peers.sipp("uas")
    client = sip_peers.client(pinged.address)
    target = f"sip:service@{pinged.address[0]}:{pinged.address[1]}"
    call_id = f"opt-{uuid.uuid4().hex}"
    client.request("OPTIONS", target, call_id, 1, f"<{target}>")
    answer = client.response(call_id, "OPTIONS")
    assert answer.status == 200

    # INVITE / 180 / 200 / ACK / BYE / 200: SIPp's uas scenario, one call.
    uas = sip_peers.sipp("uas")
    client = sip_peers.client(uas.address)
    target = f"sip:service@{uas.address[0]}:{uas.address[1]}"
    call_id = f"call-{uuid.uuid4().hex}"
    host, port = client.address
    client.request("INVITE", target, call_id, 1, f"<{target}>",
                   ["Content-Type: application/sdp"], sdp_offer(host, port + 2))
    ringing = client.response(call_id, "INVITE", final=False)
    assert ringing.status in (100, 180)
    ok = client.response(call_id, "INVITE")
    assert ok.status == 200
    assert ok.to.tag and ok.contacts and b"m=audio" in ok.body
    to = ok.headers.get("to") or ""
    remote = str(ok.contacts[0].uri)
    client.request("ACK", remote, call_id, 1, to)
    client.request("BYE", remote, call_id, 2, to)
    bye = client.response(call_id, "BYE")
    assert bye.status == 200
    uas.expect_success(timeout=10)
    assert "INVITE" in uas.messages()
    # Every answer SIPp sent parsed with the box's parser: none was dropped as malformed.
    counters = client.transport.counters()
    dropped = counters["dropped"]
    assert isinstance(dropped, dict) and not any(dropped.values()), dropped
    assert counters["delivered"] == 3  # SIPp's uas sends 180, 200 (INVITE), 200 (BYE)


def test_sipp_uac_calls_sipp_uas(sip_peers: PeerFactory) -> None:
    uas = sip_peers.sipp("uas")
    uac = sip_peers.sipp("uac", remote=uas.address)
    uac.expect_success(timeout=20)
    uas.expect_success(timeout=10)


def test_baresip_answers_options_headless(sip_peers: PeerFactory) -> None:
    ua = sip_peers.baresip()
    client = sip_peers.client(ua.address)
    call_id = f"opt-{uuid.uuid4().hex}"
    client.request("OPTIONS", ua.uri, call_id, 1, f"<{ua.uri}>")
    answer = client.response(call_id, "OPTIONS")
    assert isinstance(answer, Response) and answer.status == 200
    assert "INVITE" in (answer.headers.get("allow") or "")
    # It offers what the box records, on loopback (no sound card, no other interface).
    assert b"PCMU/8000" in answer.body and b"c=IN IP4 127.0.0.1" in answer.body
    assert "callrec-test" in ua.command("reginfo")["data"]


def test_baresip_auto_answers_a_sipp_call(sip_peers: PeerFactory) -> None:
    ua = sip_peers.baresip(answer="auto")
    uac = sip_peers.sipp("uac", remote=ua.address,
                         extra=["-s", "callrec-test", "-d", "500"])
    uac.expect_success(timeout=20)
    assert ua.wait_event("CALL_ESTABLISHED")
    assert ua.wait_event("CALL_CLOSED")


def test_baresip_dials_sipp_uas_and_hangs_up(sip_peers: PeerFactory) -> None:
    uas = sip_peers.sipp("uas")
    ua = sip_peers.baresip()
    ua.command("dial", f"sip:service@{uas.address[0]}:{uas.address[1]}")
    ua.wait_event("CALL_ESTABLISHED")
    ua.command("hangup")
    ua.wait_event("CALL_CLOSED")
    uas.expect_success(timeout=10)

