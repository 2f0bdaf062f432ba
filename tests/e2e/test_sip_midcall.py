"""SIP calls through the box, beyond connect-talk-hang-up: hold and resume by re-INVITE from
either side, the provider's digest challenges (answered by the box with its configured
credentials, passed through to the office for another realm, wrong credentials), the media
timeout, and the caller's refusal key sent as RFC 4733 telephone-events.

Real peers (SIPp scenarios in tests/data/sip/scenarios, baresip as the office where a real
phone's behaviour matters). Every test checks the peers' verdict (SIPp's exit status and its
message trace, baresip's events) and the box's side: its recordings decrypted and compared
by correlation with what each party sent, their metadata, the access log and the SIP line's
counters on the status page.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiocheck import best_match
from callrec.audit import open_audit_for_reading
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
from callrec.storage.open_store import open_keys
from sip_box import (
    MEDIA_TIMEOUT_S,
    PROVIDER_HOST,
    SCENARIOS,
    TRUNK_PASSWORD,
    TRUNK_REALM,
    TRUNK_USER,
    SipBox,
    pcap_audio,
)
from sip_peers import Baresip, PeerFactory, Sipp
from support import digest_params

pytestmark = pytest.mark.sip

RATE = 8000
SPEECH_S = 7.05  # g711a.pcap, first packet to last
CALLER = "0612345678"  # the provider's caller in the UAC scenarios; the number dialled out
OFFICE = "0140000000"
OFFICE_PASSWORD = "office-secret-42"  # the office phone's own account at the provider



# -- what the peers saw ---------------------------------------------------------------------
@dataclass
class Traced:
    at: float  # wall clock, seconds (the peers run on this machine: comparable)
    sent: bool
    text: str

    @property
    def start_line(self) -> str:
        return self.text.split("\r\n", 1)[0].split("\n", 1)[0]

    def is_request(self, method: str) -> bool:
        return self.start_line.startswith(method + " ")

    def is_response(self, status: int) -> bool:
        return self.start_line.startswith(f"SIP/2.0 {status} ")

    def header(self, name: str) -> str | None:
        m = re.search(rf"^{re.escape(name)}:[ \t]*(.*?)\r?$", self.text, re.M | re.I)
        return m.group(1) if m else None

    @property
    def cseq(self) -> int:
        return int((self.header("CSeq") or "0").split()[0])


_SEPARATOR = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)


def trace(sipp: Sipp) -> list[Traced]:
    """SIPp's -trace_msg log: every message it sent or received, with its time."""
    text = (sipp.workdir / "messages.log").read_text(errors="replace")
    parts = _SEPARATOR.split(text)
    out = []
    for stamp, body in zip(parts[1::2], parts[2::2], strict=True):
        what, _, message = body.strip("\n").partition("\n")
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append(Traced(at, "sent" in what, message.strip("\n")))
    return out


def first(messages: list[Traced], sent: bool, pred: Any, nth: int = 0) -> Traced:
    found = [m for m in messages if m.sent == sent and pred(m)]
    assert len(found) > nth, f"message #{nth} not found among {[m.start_line for m in messages]}"
    return found[nth]


def requests(messages: list[Traced], method: str, sent: bool) -> list[Traced]:
    """One per transaction (CSeq): retransmissions are not counted."""
    seen: dict[int, Traced] = {}
    for m in messages:
        if m.sent == sent and m.is_request(method):
            seen.setdefault(m.cseq, m)
    return list(seen.values())


def check_digest(value: str, method: str, username: str, password: str, realm: str,
                 nonce: str) -> None:
    """The credentials a peer received, checked by an implementation of the test's own
    (RFC 2617, MD5, qop=auth or none): the right account, the provider's nonce, and a
    response computed from the password."""
    p = digest_params(value)
    assert (p["username"], p["realm"], p["nonce"]) == (username, realm, nonce), p
    assert p.get("algorithm", "MD5").upper() == "MD5", p

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()  # the protocol's own hash

    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{p['uri']}")
    if p.get("qop"):
        assert p["qop"] == "auth", p
        expected = md5(f"{ha1}:{nonce}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
    else:
        expected = md5(f"{ha1}:{nonce}:{ha2}")
    assert p["response"] == expected, f"digest response does not verify: {p}"


# -- the box's side -------------------------------------------------------------------------
def outcomes(box: SipBox) -> dict[str, int]:
    return dict(box.sip_status().get("outcomes") or {})


def wait_outcome(box: SipBox, before: dict[str, int], outcome: str,
                 timeout: float = 15.0) -> dict[str, int]:
    """The line's outcome counters once `outcome` went up by one since `before`; nothing
    else may have changed (one call per test)."""
    deadline = time.monotonic() + timeout
    while True:
        now = outcomes(box)
        if now.get(outcome, 0) > before.get(outcome, 0):
            changed = {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before)
                       if now.get(k, 0) != before.get(k, 0)}
            assert changed == {outcome: 1}, changed
            return now
        assert time.monotonic() < deadline, (
            f"outcome {outcome!r} not counted: {before} -> {now}\n{box.daemon_log()}")
        time.sleep(0.2)


def wait_idle_line(box: SipBox, timeout: float = 10.0) -> None:
    """No call left on the line (the box released everything it held)."""
    deadline = time.monotonic() + timeout
    while box.sip_status().get("calls"):
        assert time.monotonic() < deadline, f"calls still up: {box.sip_status()}"
        time.sleep(0.2)


def refusals(box: SipBox) -> list[dict[str, Any]]:
    journal, _ = open_audit_for_reading(box.app.config)
    return [e for e in journal.entries() if e["action"] == "call.refused"]


def pseudonym_of(box: SipBox, number: str) -> str:
    config = box.app.config
    return Pseudonymizer(pseudonym_key(open_keys(config), config.data_dir))(number)


def tone_hz(x: np.ndarray) -> int:
    """The strongest frequency of one second of audio (1 Hz bins)."""
    return int(abs(np.fft.rfft(x[:RATE])).argmax())


def speech_at(channel: np.ndarray, start_s: float = 0.0,
              end_s: float | None = None) -> tuple[float, float]:
    """(r, offset in seconds from the recording's start) of SIPp's speech in a stretch of
    one channel. Its first packet (30 ms) may precede the recording: it is left out."""
    lo = int(start_s * RATE)
    hi = len(channel) if end_s is None else int(end_s * RATE)
    r, offset = best_match(pcap_audio()[240:], channel[lo:hi])
    return r, (lo + offset - 240) / RATE


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def incoming(sip_peers: PeerFactory, box: SipBox, scenario: str,
             timeout_s: float = 60.0) -> tuple[Baresip, Sipp]:
    """The office (baresip, auto-answer, a 440 Hz tone) called by the provider (SIPp)."""
    office = sip_peers.baresip(user=OFFICE, host=box.pbx[0], port=box.pbx[1])
    return office, provider_uac(sip_peers, box, scenario, timeout_s)


def provider_uac(sip_peers: PeerFactory, box: SipBox, scenario: str,
                 timeout_s: float = 60.0) -> Sipp:
    """The provider calling the office. On the configured provider port: the box sends
    its own requests (re-INVITE, BYE) to the configured peer, never to an address a message
    names."""
    return sip_peers.sipp(SCENARIOS / scenario, remote=box.trunk, host=PROVIDER_HOST,
                          port=box.provider[1], extra=["-s", OFFICE], timeout_s=timeout_s)


def provider_uas(sip_peers: PeerFactory, box: SipBox, scenario: str, realm: str,
                 user: str = "", password: str = "") -> Sipp:
    keys = ["-key", "realm", realm]
    if user:
        keys += ["-key", "user", user, "-key", "password", password]
    return sip_peers.sipp(SCENARIOS / scenario, host=PROVIDER_HOST, port=box.provider[1],
                          extra=keys, timeout_s=40)


# -- 1. hold and resume ---------------------------------------------------------------------
def test_provider_holds_and_resumes_by_reinvite(box: SipBox, sip_peers: PeerFactory,
                                                tmp_path: Path) -> None:
    """The provider speaks 7 s, holds (re-INVITE a=sendonly) for 6.5 s, longer than the
    media timeout, resumes (a=sendrecv) and speaks again. The office (baresip) answers both
    re-INVITEs through the box; the box releases nothing, and one recording spans the whole
    call: the second speech at its place on the timeline, silence for the hold."""
    box.mark()
    before = outcomes(box)
    office, caller = incoming(sip_peers, box, "uac_hold_resume.xml")
    caller.expect_success(timeout=60)
    office.wait_event("CALL_ESTABLISHED", timeout=5)
    office.wait_event("CALL_CLOSED", timeout=10)

    msgs = trace(caller)
    # Both re-INVITEs answered 200 (the scenario's own order), and no BYE from the box.
    assert sorted({m.cseq for m in msgs if not m.sent and m.is_response(200)}) == [1, 2, 3, 4]
    assert not [m for m in msgs if not m.sent and m.is_request("BYE")], "box released the call"
    acks = [m for m in msgs if m.sent and m.is_request("ACK")]
    play1, play2 = acks[0].at, acks[2].at  # each speech starts as its ACK goes out
    bye = first(msgs, True, lambda m: m.is_request("BYE")).at
    # The SDP the provider got back said what the office answered: recvonly on hold.
    hold_answer = next(m for m in msgs if not m.sent and m.is_response(200) and m.cseq == 2)
    assert "a=recvonly" in hold_answer.text or "a=inactive" in hold_answer.text

    (meta,) = box.new_recordings()
    assert meta["direction"] == "in" and meta["end_reason"] == "remote hangup"
    assert meta["caller_number"] == CALLER
    audio = box.channels(meta["id"], tmp_path)
    assert abs(len(audio) / RATE - (bye - play1)) < 1.0, (len(audio) / RATE, bye - play1)
    r1, at1 = speech_at(audio[:, 1], 0.0, 8.0)
    r2, at2 = speech_at(audio[:, 1], 8.0 + 4.0)
    assert r1 > 0.99 and r2 > 0.99, f"provider's speech: r = {r1:.3f}, after resume {r2:.3f}"
    # The second speech where it was spoken: the hold took its time on the timeline.
    assert abs((at2 - at1) - (play2 - play1)) < 0.25, (at2 - at1, play2 - play1)
    held = audio[int((at1 + SPEECH_S + 1.0) * RATE):int((at2 - 0.5) * RATE), 1]
    assert len(held) > 5 * RATE and rms(held) < 10, "the hold is silence on the remote channel"
    assert abs(tone_hz(audio[int((at2 + 1) * RATE):, 0]) - 440) <= 2  # office after resume

    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


def test_office_holds_rfc2543_style_and_resumes(box: SipBox, sip_peers: PeerFactory,
                                                tmp_path: Path) -> None:
    """The office (a SIPp UAS) answers and speaks, holds the old way (re-INVITE with
    c=0.0.0.0) for 6.5 s, resumes with its address, speaks again; the provider answers the
    re-INVITEs the box sends it, speaks after the answer and after the resume, hangs up.
    Both channels carry both speeches at their places; no BYE from the box to either side."""
    box.mark()
    before = outcomes(box)
    office = sip_peers.sipp(SCENARIOS / "uas_office_hold_resume.xml", host=box.pbx[0],
                            port=box.pbx[1], timeout_s=60)
    caller = provider_uac(sip_peers, box, "uac_answer_reinvites.xml")
    caller.expect_success(timeout=60)
    office.expect_success(timeout=10)

    provider_msgs, office_msgs = trace(caller), trace(office)
    # The provider got the office's hold and resume, as re-INVITEs of the box's own dialog,
    # the hold still saying c=0.0.0.0 (an RFC 2543 hold address is kept).
    reinvites = requests(provider_msgs, "INVITE", sent=False)
    assert len(reinvites) == 2 and "c=IN IP4 0.0.0.0" in reinvites[0].text
    assert "c=IN IP4 0.0.0.0" not in reinvites[1].text
    assert not requests(provider_msgs, "BYE", sent=False), "box sent BYE to the provider"
    assert len(requests(office_msgs, "BYE", sent=False)) == 1  # the provider's, relayed

    p_play1 = first(provider_msgs, True, lambda m: m.is_request("ACK")).at
    p_play2 = [m for m in provider_msgs if not m.sent and m.is_request("ACK")][1].at
    o_play1 = first(office_msgs, False, lambda m: m.is_request("ACK")).at
    o_play2 = [m for m in office_msgs if m.sent and m.is_request("ACK")][1].at

    (meta,) = box.new_recordings()
    assert meta["direction"] == "in" and meta["end_reason"] == "remote hangup"
    audio = box.channels(meta["id"], tmp_path)
    for ch, play1, play2 in ((0, o_play1, o_play2), (1, p_play1, p_play2)):
        r1, at1 = speech_at(audio[:, ch], 0.0, 8.5)
        r2, at2 = speech_at(audio[:, ch], 12.0)
        assert r1 > 0.99 and r2 > 0.99, f"channel {ch}: r = {r1:.3f}, after resume {r2:.3f}"
        assert abs((at2 - at1) - (play2 - play1)) < 0.25, (ch, at2 - at1, play2 - play1)
    # The two channels in step: each party's first speech where it started, relative to
    # the other's (both peers' clocks are this machine's).
    _, o_at1 = speech_at(audio[:, 0], 0.0, 8.5)
    _, p_at1 = speech_at(audio[:, 1], 0.0, 8.5)
    assert abs((o_at1 - p_at1) - (o_play1 - p_play1)) < 0.25

    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


# -- 2. digest authentication towards the provider --------------------------------------------
@pytest.mark.parametrize(("scenario", "field"), [("uas_challenge_407.xml", "Proxy-Authorization"),
                                                 ("uas_challenge_401.xml", "Authorization")])
def test_box_answers_the_providers_challenge(box: SipBox, sip_peers: PeerFactory,
                                             tmp_path: Path, scenario: str, field: str) -> None:
    """The office (baresip, no credentials of its own) calls out; the provider challenges the
    INVITE in the configured realm; the box answers with the configured account (the 401
    provider checks it with SIPp's verifyauth, the test checks either from SIPp's trace),
    the office sees a normal call, and it is recorded."""
    box.mark()
    before = outcomes(box)
    provider = provider_uas(sip_peers, box, scenario, TRUNK_REALM, TRUNK_USER, TRUNK_PASSWORD)
    office = sip_peers.baresip(user=OFFICE, host=box.pbx[0], port=box.pbx[1])
    office.command("dial", f"sip:{CALLER}@{box.lan[0]}:{box.lan[1]}")
    office.wait_event("CALL_ESTABLISHED", timeout=15)
    time.sleep(SPEECH_S + 1.0)
    office.command("hangup")
    office.wait_event("CALL_CLOSED")
    provider.expect_success(timeout=15)

    msgs = trace(provider)
    invites = requests(msgs, "INVITE", sent=False)
    assert len(invites) == 2, [m.start_line for m in msgs]
    assert invites[0].header(field) is None
    assert invites[1].cseq == invites[0].cseq + 1
    assert invites[1].header("Call-ID") == invites[0].header("Call-ID")
    challenge = first(msgs, True, lambda m: m.is_response(407) or m.is_response(401))
    nonce = digest_params(challenge.header("Proxy-Authenticate")
                          or challenge.header("WWW-Authenticate") or "")["nonce"]
    check_digest(invites[1].header(field) or "", "INVITE", TRUNK_USER, TRUNK_PASSWORD,
                 TRUNK_REALM, nonce)
    # The ACK of the challenge, then the ACK of the 200 (with the credentials, RFC 3261
    # 13.2.2.4), each once per transaction.
    assert [m.cseq for m in requests(msgs, "ACK", sent=False)] == [1, 2]

    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["called_number"] == CALLER
    assert meta["end_reason"] == "hangup"
    audio = box.channels(meta["id"], tmp_path)
    r, _ = speech_at(audio[:, 1])
    assert r > 0.99, f"provider's speech: r = {r:.3f}"
    assert abs(tone_hz(audio[RATE:2 * RATE, 0]) - 440) <= 2
    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


@pytest.mark.parametrize(("scenario", "field"), [("uas_challenge_407.xml", "Proxy-Authorization"),
                                                 ("uas_challenge_401.xml", "Authorization")])
def test_challenge_for_another_realm_goes_to_the_office(
        box: SipBox, sip_peers: PeerFactory, tmp_path: Path, scenario: str, field: str) -> None:
    """The provider challenges in a realm the box has no credentials for: the box passes the
    challenge to the office, whose phone (baresip with its own password) answers it through
    the box; the provider gets the office's credentials, never the box's, and answers."""
    box.mark()
    before = outcomes(box)
    provider = provider_uas(sip_peers, box, scenario, "other.test", OFFICE, OFFICE_PASSWORD)
    office = sip_peers.baresip(user=OFFICE, host=box.pbx[0], port=box.pbx[1],
                               auth_pass=OFFICE_PASSWORD)
    office.command("dial", f"sip:{CALLER}@{box.lan[0]}:{box.lan[1]}")
    office.wait_event("CALL_ESTABLISHED", timeout=15)
    time.sleep(3.5)
    office.command("hangup")
    office.wait_event("CALL_CLOSED")
    provider.expect_success(timeout=15)

    msgs = trace(provider)
    invites = requests(msgs, "INVITE", sent=False)
    assert len(invites) == 2, [m.start_line for m in msgs]
    challenge = first(msgs, True, lambda m: m.is_response(407) or m.is_response(401))
    nonce = digest_params(challenge.header("Proxy-Authenticate")
                          or challenge.header("WWW-Authenticate") or "")["nonce"]
    check_digest(invites[1].header(field) or "", "INVITE", OFFICE, OFFICE_PASSWORD,
                 "other.test", nonce)
    # The office's credentials only: the box added none of its own.
    assert len(re.findall(r"^(Proxy-)?Authorization:", invites[1].text, re.M | re.I)) == 1

    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["called_number"] == CALLER
    audio = box.channels(meta["id"], tmp_path)
    r, _ = best_match(pcap_audio()[240:240 + 2 * RATE], audio[:, 1])
    assert r > 0.99, f"provider's speech: r = {r:.3f}"
    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


def test_wrong_trunk_credentials_give_the_office_403_without_a_loop(
        box: SipBox, sip_peers: PeerFactory) -> None:
    """A provider that refuses the box's credentials (challenges again, not stale): the box
    tries once, then the office gets 403 (not the challenge), nothing is recorded, and the
    provider sees two INVITEs, no third."""
    box.mark()
    before = outcomes(box)
    provider = provider_uas(sip_peers, box, "uas_challenge_always.xml", TRUNK_REALM)
    office = sip_peers.sipp(SCENARIOS / "uac_expect_403.xml", remote=box.lan, host=box.pbx[0],
                            port=box.pbx[1], extra=["-s", CALLER], timeout_s=20)
    office.expect_success(timeout=20)
    provider.expect_success(timeout=15)  # its 3 s wait for a third INVITE included

    msgs = trace(provider)
    assert len(requests(msgs, "INVITE", sent=False)) == 2
    assert [m.cseq for m in requests(msgs, "ACK", sent=False)] == [1, 2]
    forbidden = first(trace(office), False, lambda m: m.is_response(403))
    assert "trunk credentials" in (forbidden.header("Warning") or "")
    assert forbidden.header("Proxy-Authenticate") is None
    box.assert_no_new_recording()
    wait_outcome(box, before, "failed")
    wait_idle_line(box)


# -- 3. media timeout ----------------------------------------------------------------------
def test_media_timeout_when_the_provider_goes_silent(box: SipBox, sip_peers: PeerFactory,
                                                     tmp_path: Path) -> None:
    """The provider speaks 7 s, then sends nothing and does not hang up; the office (baresip)
    goes on sending its tone. About MEDIA_TIMEOUT_S after the provider's last packet the box
    sends BYE to both sides and closes the recording (end_reason media_timeout) with all the
    speech in it."""
    box.mark()
    before = outcomes(box)
    office, caller = incoming(sip_peers, box, "uac_pcap_wait_bye.xml", timeout_s=40)
    caller.expect_success(timeout=40)  # it ends only on the box's BYE
    office.wait_event("CALL_CLOSED", timeout=5)  # the office got its BYE too

    msgs = trace(caller)
    play = first(msgs, True, lambda m: m.is_request("ACK")).at
    bye = first(msgs, False, lambda m: m.is_request("BYE"))
    silent_for = bye.at - (play + SPEECH_S)
    assert MEDIA_TIMEOUT_S - 0.5 < silent_for < MEDIA_TIMEOUT_S + 2.5, silent_for
    assert "media timeout" in (bye.header("Reason") or "")

    (meta,) = box.new_recordings()
    assert meta["end_reason"] == "media_timeout"
    audio = box.channels(meta["id"], tmp_path)
    assert abs(len(audio) / RATE - (bye.at - play)) < 1.0, (len(audio) / RATE, bye.at - play)
    r, at = speech_at(audio[:, 1])
    assert r > 0.99 and at < 0.5, f"provider's speech: r = {r:.3f} at {at:.2f} s"
    assert abs(tone_hz(audio[-2 * RATE:, 0]) - 440) <= 2  # the office to the end
    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


def test_media_timeout_when_the_provider_never_sends(box: SipBox, sip_peers: PeerFactory,
                                                     tmp_path: Path) -> None:
    """A provider that answers its own call's 200 with no RTP at all: the box releases the
    call MEDIA_TIMEOUT_S after the answer, both ways."""
    box.mark()
    before = outcomes(box)
    office, caller = incoming(sip_peers, box, "uac_silent_wait_bye.xml", timeout_s=30)
    caller.expect_success(timeout=30)
    office.wait_event("CALL_CLOSED", timeout=5)

    msgs = trace(caller)
    answered = first(msgs, False, lambda m: m.is_response(200) and m.cseq == 1).at
    bye = first(msgs, False, lambda m: m.is_request("BYE")).at
    assert MEDIA_TIMEOUT_S - 0.5 < bye - answered < MEDIA_TIMEOUT_S + 2.5, bye - answered

    # The prompt (shorter than the timeout) completed: the call was recorded until released.
    (meta,) = box.new_recordings()
    assert meta["end_reason"] == "media_timeout"
    audio = box.channels(meta["id"], tmp_path)
    assert abs(len(audio) / RATE - (bye - answered)) < 1.0
    assert rms(audio[:, 1]) < 10  # the provider said nothing
    assert abs(tone_hz(audio[-2 * RATE:, 0]) - 440) <= 2
    wait_outcome(box, before, "recorded")
    wait_idle_line(box)


# -- 4. the refusal key as RFC 4733 telephone-events ------------------------------------------
def test_refusal_key_9_during_the_announcement(box: SipBox, sip_peers: PeerFactory) -> None:
    """The caller presses 9 (telephone-event, PT 101) while the announcement plays: the call
    goes on (the caller speaks and hangs up 8 s later, the office stays connected until
    then), nothing is written, the outcome is not_recorded, and the access log has the
    refusal under the caller's pseudonym with the prompt it heard."""
    box.mark()
    before = outcomes(box)
    refused_before = len(refusals(box))
    office, caller = incoming(sip_peers, box, "uac_key9_pcap_bye.xml", timeout_s=40)
    caller.expect_success(timeout=40)
    office.wait_event("CALL_ESTABLISHED", timeout=5)
    office.wait_event("CALL_CLOSED", timeout=5)
    msgs = trace(caller)
    assert not requests(msgs, "BYE", sent=False), "the box ended the refused call"

    box.assert_no_new_recording()
    wait_outcome(box, before, "not_recorded")
    entries = refusals(box)
    assert len(entries) == refused_before + 1
    entry = entries[-1]
    assert entry["target"] == pseudonym_of(box, CALLER) and entry["actor"] == "system"
    assert entry["details"]["direction"] == "in" and entry["details"]["line"] == "sip"
    assert entry["details"]["reason"] == "refusal key"
    assert entry["details"]["prompt_sha256"]
    assert CALLER not in json.dumps(entry)
    wait_idle_line(box)


def test_key_1_is_not_a_refusal(box: SipBox, sip_peers: PeerFactory, tmp_path: Path) -> None:
    """The same call with key 1: recorded as any other, no refusal in the access log."""
    box.mark()
    before = outcomes(box)
    refused_before = len(refusals(box))
    office, caller = incoming(sip_peers, box, "uac_key1_pcap_bye.xml", timeout_s=40)
    caller.expect_success(timeout=40)
    office.wait_event("CALL_CLOSED", timeout=5)

    (meta,) = box.new_recordings()
    assert meta["end_reason"] == "remote hangup"
    audio = box.channels(meta["id"], tmp_path)
    r, _ = speech_at(audio[:, 1])
    assert r > 0.99, f"provider's speech: r = {r:.3f}"
    wait_outcome(box, before, "recorded")
    assert len(refusals(box)) == refused_before
    wait_idle_line(box)
