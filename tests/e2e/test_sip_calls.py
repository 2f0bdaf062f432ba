"""SIP calls through the box, between real peers: SIPp (scenarios in tests/data/sip/scenarios,
speech from SIPp's own g711a.pcap) and baresip, a real user agent from Debian.

Every flow is checked where it matters: the peers' own verdict (SIPp's exit status, baresip's
events), and the box's recordings, decrypted: two channels, the office on the left and the
remote party on the right, each compared by correlation with what that party sent.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audiocheck import best_match, read_wav
from callrec.privacy.donotrecord import normalise_number
from sip_box import PBX_HOST, PROVIDER_HOST, SCENARIOS, SipBox, pcap_audio
from sip_peers import Baresip, PeerFactory, Sipp

pytestmark = pytest.mark.sip

SPEECH_S = 7.0  # g711a.pcap
TALK_S = 8.5  # how long the office stays in a call it hangs up: the speech, and a margin
SIPP_TIMEOUT_S = 60.0  # SIPp's own global timeout: generous, the machine is shared
STRANGER_HOST = "127.0.0.99"  # neither configured peer



def test_incoming_call_recorded_on_two_channels(box: SipBox, sip_peers: PeerFactory,
                                                tmp_path: Path) -> None:
    """Provider (SIPp) calls the office (baresip, a 440 Hz tone as its voice); the provider
    speaks for 7 s and hangs up. The recording: the office's tone on channel 0, the provider's
    speech bit for bit on channel 1, the caller's number from From, the announcement's proof."""
    box.mark()
    office = sip_peers.baresip(user="0140000000", host=box.pbx[0], port=box.pbx[1])
    caller = sip_peers.sipp(SCENARIOS / "uac_pcap_bye.xml", remote=box.trunk,
                            host=PROVIDER_HOST, port=box.provider[1],
                            extra=["-s", "0140000000"])
    caller.expect_success(timeout=40)
    office.wait_event("CALL_CLOSED")
    (meta,) = box.new_recordings()
    assert meta["direction"] == "in" and meta["line"] == "sip"
    assert meta["caller_number"] == "0612345678"
    assert meta["end_reason"] == "remote hangup"
    assert meta["audio"]["channels"] == 2 and meta["channel_names"] == ["office", "remote"]
    assert meta["clock_synchronised"] is True  # the harness's CALLREC_CLOCK
    proof = meta["announcement"]
    assert proof["completed"] and proof["sha256"]
    # The prompt library's version that played (the installed prompt, adopted as version 1).
    assert [(v["version"], v["sha256"]) for v in proof["versions"]] == [
        ("in-fr-1", proof["sha256"])]
    assert proof["samples_sent"]["trunk"] == proof["samples_sent"]["lan"] > 8000
    audio = box.channels(meta["id"], tmp_path)
    assert 8.5 < len(audio) / 8000 < 10.0  # answer to BYE: 9 s
    # Its first packet (30 ms) was spoken before the answer by the timeline's reckoning (a
    # packet's audio ends as it is sent), so it is partly before the recording's start.
    r, _ = best_match(pcap_audio()[240:], audio[:, 1])
    assert r > 0.99, f"remote channel vs the speech SIPp sent: r = {r:.3f}"
    office_r, _ = best_match(pcap_audio()[8000:24000], audio[:, 0])
    assert office_r < 0.2  # the office channel does not carry the caller
    spectrum = abs(np.fft.rfft(audio[8000:16000, 0]))
    assert abs(int(spectrum.argmax()) - 440) <= 2  # 1 Hz bins: baresip's tone


# -- helpers -----------------------------------------------------------------------------
def office_ua(sip_peers: PeerFactory, box: SipBox, answer: str = "auto") -> Baresip:
    """The office's phone (baresip, a 440 Hz tone as its voice) as the box's PBX peer."""
    return sip_peers.baresip(user="0140000000", host=box.pbx[0], port=box.pbx[1],
                             answer=answer)


def provider_uas(sip_peers: PeerFactory, box: SipBox, scenario: str) -> Sipp:
    """The provider's side of an outgoing call: a SIPp UAS on the configured trunk peer."""
    return sip_peers.sipp(SCENARIOS / scenario, host=PROVIDER_HOST, port=box.provider[1],
                          timeout_s=SIPP_TIMEOUT_S)


def provider_uac(sip_peers: PeerFactory, box: SipBox, scenario: str) -> Sipp:
    """The provider's side of an incoming call: a SIPp UAC calling the box's trunk side, from
    the configured trunk peer's port (where the box sends its own requests, such as BYE)."""
    return sip_peers.sipp(SCENARIOS / scenario, remote=box.trunk, host=PROVIDER_HOST,
                          port=box.provider[1], timeout_s=SIPP_TIMEOUT_S,
                          extra=["-s", "0140000000"])


def dial(office: Baresip, box: SipBox, number: str) -> None:
    office.command("dial", f"sip:{number}@{box.lan[0]}:{box.lan[1]}")


def outcomes(box: SipBox) -> dict[str, int]:
    counts: dict[str, int] = box.sip_status().get("outcomes") or {}
    return counts


def wait_outcome(box: SipBox, before: dict[str, int], outcome: str,
                 timeout: float = 20.0) -> dict[str, Any]:
    """The SIP status once `outcome` was counted once more than in `before` (status.json is
    rewritten on the daemon's events: a call's end is one)."""
    deadline = time.monotonic() + timeout
    while True:
        sip = box.sip_status()
        now = sip.get("outcomes") or {}
        if now.get(outcome, 0) > before.get(outcome, 0):
            assert now.get(outcome, 0) == before.get(outcome, 0) + 1, (before, now)
            return sip
        assert time.monotonic() < deadline, (
            f"outcome {outcome!r} not counted: before {before}, now {now}\n{box.daemon_log()}")
        time.sleep(0.2)


def check_two_channels(audio: np.ndarray, speech_from: int = 240) -> None:
    """Channel 1: the provider's speech bit for bit; channel 0: the office's 440 Hz tone."""
    r, _ = best_match(pcap_audio()[speech_from:], audio[:, 1])
    assert r > 0.99, f"remote channel vs the speech SIPp sent: r = {r:.3f}"
    office_r, _ = best_match(pcap_audio()[8000:24000], audio[:, 0])
    assert office_r < 0.2  # the office channel does not carry the provider
    spectrum = abs(np.fft.rfft(audio[8000:16000, 0]))
    assert abs(int(spectrum.argmax()) - 440) <= 2  # 1 Hz bins: baresip's tone


# -- outgoing calls and hang-ups from either side -----------------------------------------
def test_outgoing_call_office_hangs_up(box: SipBox, sip_peers: PeerFactory,
                                       tmp_path: Path) -> None:
    """The office dials an international number; the provider (SIPp UAS) answers with PCMA and
    speaks for 7 s; the office hangs up. The recording: direction out, the number dialled as
    the Request-URI had it (normalise_number makes it national), the office's tone on
    channel 0, the provider's speech on channel 1."""
    box.mark()
    before = outcomes(box)
    provider = provider_uas(sip_peers, box, "uas_answer_pcap_wait_bye.xml")
    office = office_ua(sip_peers, box)
    dial(office, box, "+33612345678")
    office.wait_event("CALL_ESTABLISHED", timeout=20)
    time.sleep(TALK_S)
    office.command("hangup")
    office.wait_event("CALL_CLOSED", timeout=20)
    provider.expect_success(timeout=30)
    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["line_type"] == "sip"
    assert meta["called_number"] == "+33612345678"
    assert normalise_number(meta["called_number"]) == "0612345678"
    assert meta["caller_number"] is None
    assert meta["end_reason"] == "hangup"
    assert meta["announcement"]["completed"]
    audio = box.channels(meta["id"], tmp_path)
    assert TALK_S - 1.0 < len(audio) / 8000 < TALK_S + 2.0  # answer to BYE
    check_two_channels(audio)
    sip = wait_outcome(box, before, "recorded")
    assert sip["calls"] == 0 and sip["recording"] == 0


def test_incoming_call_office_hangs_up(box: SipBox, sip_peers: PeerFactory,
                                       tmp_path: Path) -> None:
    """Provider (SIPp UAC) calls the office, speaks 7 s and waits; the office hangs up: the
    box sends BYE to the provider, which SIPp expects and answers."""
    box.mark()
    office = office_ua(sip_peers, box)
    caller = provider_uac(sip_peers, box, "uac_pcap_wait_bye.xml")
    office.wait_event("CALL_ESTABLISHED", timeout=20)
    time.sleep(TALK_S)
    office.command("hangup")
    office.wait_event("CALL_CLOSED", timeout=20)
    caller.expect_success(timeout=30)
    (meta,) = box.new_recordings()
    assert meta["direction"] == "in" and meta["caller_number"] == "0612345678"
    assert meta["called_number"] is None
    assert meta["end_reason"] == "hangup"
    audio = box.channels(meta["id"], tmp_path)
    assert TALK_S - 1.0 < len(audio) / 8000 < TALK_S + 2.0
    check_two_channels(audio)


def test_outgoing_call_provider_hangs_up(box: SipBox, sip_peers: PeerFactory,
                                         tmp_path: Path) -> None:
    """The office dials a national number; the provider (SIPp UAS) answers, speaks 7 s and
    hangs up 9 s after the answer with a BYE of its own: the office sees the call closed."""
    box.mark()
    provider = provider_uas(sip_peers, box, "uas_answer_pcap_bye.xml")
    office = office_ua(sip_peers, box)
    dial(office, box, "0612345678")
    office.wait_event("CALL_ESTABLISHED", timeout=20)
    office.wait_event("CALL_CLOSED", timeout=30)
    provider.expect_success(timeout=30)
    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["called_number"] == "0612345678"
    assert meta["end_reason"] == "remote hangup"
    audio = box.channels(meta["id"], tmp_path)
    assert 8.5 < len(audio) / 8000 < 10.5  # answer to BYE: 9 s
    check_two_channels(audio)


# -- calls that never connect: nothing recorded --------------------------------------------
def test_incoming_call_cancelled_while_ringing(box: SipBox, sip_peers: PeerFactory) -> None:
    """The provider gives up while the office's phone rings: SIPp gets 200 to its CANCEL and
    487 to its INVITE from the box, the box cancels the office's leg, nothing is recorded."""
    box.mark()
    before = outcomes(box)
    office = office_ua(sip_peers, box, answer="manual")
    caller = provider_uac(sip_peers, box, "uac_cancel_after_ringing.xml")
    office.wait_event("CALL_INCOMING", timeout=20)
    caller.expect_success(timeout=30)
    office.wait_event("CALL_CLOSED", timeout=20)
    assert not [e for e in office.events if e.get("type") == "CALL_ESTABLISHED"]
    sip = wait_outcome(box, before, "cancelled")
    assert sip["calls"] == 0 and sip["recording"] == 0
    box.assert_no_new_recording()


@pytest.mark.parametrize(("scenario", "status", "outcome"), [
    ("uas_busy_486.xml", 486, "busy"),
    ("uas_decline_603.xml", 603, "rejected"),
])
def test_outgoing_call_refused(box: SipBox, sip_peers: PeerFactory, scenario: str,
                               status: int, outcome: str) -> None:
    """The provider rings, then refuses the office's call: the box acknowledges the refusal,
    relays it to the office (whose phone reports that code), counts it, records nothing."""
    box.mark()
    before = outcomes(box)
    provider = provider_uas(sip_peers, box, scenario)
    office = office_ua(sip_peers, box)
    dial(office, box, "0612345678")
    closed = office.wait_event("CALL_CLOSED", timeout=20)
    assert str(status) in closed.get("param", ""), closed
    assert not [e for e in office.events if e.get("type") == "CALL_ESTABLISHED"]
    provider.expect_success(timeout=30)
    wait_outcome(box, before, outcome)
    box.assert_no_new_recording()


# -- early media ----------------------------------------------------------------------------
def test_early_media_relayed_but_recording_starts_at_answer(
        box: SipBox, sip_peers: PeerFactory, tmp_path: Path) -> None:
    """The provider sends 183 with SDP and starts its speech (an announcement before the
    answer), then answers 3 s later, the speech going on. The office hears the early media
    (baresip's first RTP before the answer); the recording starts at the answer: it lasts
    answer to BYE, and its remote channel starts about 3 s into the speech."""
    box.mark()
    forwarded_before = int(box.sip_status().get("relay", {}).get("forwarded", 0))
    provider = provider_uas(sip_peers, box, "uas_early_media_answer.xml")
    office = office_ua(sip_peers, box)
    dial(office, box, "0612345678")
    office.wait_event("CALL_PROGRESS", timeout=20)
    office.wait_event("CALL_RTPESTAB", timeout=10)  # early media reached the office
    assert not [e for e in office.events if e.get("type") == "CALL_ESTABLISHED"], (
        "the early media arrived only after the answer")
    office.wait_event("CALL_ESTABLISHED", timeout=20)
    answered = time.monotonic()
    time.sleep(5.0)
    office.command("hangup")
    office.wait_event("CALL_CLOSED", timeout=20)
    talked = time.monotonic() - answered
    provider.expect_success(timeout=30)
    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["end_reason"] == "hangup"
    audio = box.channels(meta["id"], tmp_path)
    duration = len(audio) / 8000
    assert talked - 1.5 < duration < talked + 0.5, (duration, talked)  # not from the 183
    # Where the speech's fourth second sits in the recording: about 1 s in (answer at 3 s).
    r, at = best_match(pcap_audio()[4 * 8000:6 * 8000], audio[:, 1])
    assert r > 0.99, f"remote channel vs the speech SIPp sent: r = {r:.3f}"
    assert 0.5 < at / 8000 < 1.6, f"the speech's 4th second at {at / 8000:.2f} s"
    forwarded = int(box.sip_status().get("relay", {}).get("forwarded", 0))
    assert forwarded - forwarded_before > 100  # 30 ms packets both ways


# -- keep-alives and strangers --------------------------------------------------------------
def options(source_host: str, box_addr: tuple[str, int], wait_s: float) -> bytes | None:
    """Send an OPTIONS from `source_host` (an ephemeral port) to the box: its answer, or None
    when nothing came back within `wait_s`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source_host, 0))
        host, port = s.getsockname()
        target = f"sip:{box_addr[0]}:{box_addr[1]}"
        msg = (f"OPTIONS {target} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
               "Max-Forwards: 70\r\n"
               f"From: <sip:keepalive@{host}>;tag={uuid.uuid4().hex[:10]}\r\n"
               f"To: <{target}>\r\n"
               f"Call-ID: ka-{uuid.uuid4().hex}\r\n"
               "CSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n").encode()
        s.settimeout(wait_s)
        for _attempt in range(3):  # UDP: a lost datagram is retried, as a UA would
            s.sendto(msg, box_addr)
            try:
                data, source = s.recvfrom(65536)
            except TimeoutError:
                continue
            assert source == box_addr, f"answered from {source}, not {box_addr}"
            return data
        return None


def test_options_keepalives_answered_for_peers_only(box: SipBox,
                                                    sip_peers: PeerFactory) -> None:
    """Each side's configured peer host gets 200 to its OPTIONS; a stranger, or a peer on the
    other side's address, gets nothing at all, and the transport counts it as a stranger."""
    before = box.sip_status().get("transport", {})
    for host, addr in ((PBX_HOST, box.lan), (PROVIDER_HOST, box.trunk)):
        answer = options(host, addr, wait_s=3.0)
        assert answer is not None, f"no answer to OPTIONS from {host} on {addr}"
        assert answer.startswith(b"SIP/2.0 200 "), answer[:80]
    for host, addr in ((STRANGER_HOST, box.lan), (STRANGER_HOST, box.trunk),
                       (PROVIDER_HOST, box.lan), (PBX_HOST, box.trunk)):
        assert options(host, addr, wait_s=0.7) is None, f"{host} answered on {addr}"
    # status.json is rewritten on the daemon's events (not on a dropped datagram): a short
    # refused call makes one, then the counters are those of the probes above.
    status_before = outcomes(box)
    provider = provider_uas(sip_peers, box, "uas_busy_486.xml")
    office = office_ua(sip_peers, box)
    dial(office, box, "0612345678")
    office.wait_event("CALL_CLOSED", timeout=20)
    provider.expect_success(timeout=30)
    transport = wait_outcome(box, status_before, "busy")["transport"]
    assert transport["sent_options_200"] - before.get("sent_options_200", 0) >= 2
    # 4 addresses probed 3 times each, all dropped unanswered.
    stranger = transport["dropped"].get("stranger", 0)
    assert stranger - before.get("dropped", {}).get("stranger", 0) >= 12, transport


def test_announcement_heard_by_the_office_then_the_caller(
        box: SipBox, sip_peers: PeerFactory, media: dict[str, Path]) -> None:
    """What the office phone actually decoded (baresip's own dump): the consent prompt first,
    the caller held back while it plays, then the caller's speech."""
    box.mark()
    office = sip_peers.baresip(user="0140000000", host=box.pbx[0], port=box.pbx[1],
                               dump_audio=True)
    caller = sip_peers.sipp(SCENARIOS / "uac_pcap_bye.xml", remote=box.trunk,
                            host=PROVIDER_HOST, port=box.provider[1],
                            extra=["-s", "0140000000"])
    caller.expect_success(timeout=40)
    office.wait_event("CALL_CLOSED")
    box.new_recordings()
    (dump,) = office.heard()
    heard, rate = read_wav(dump)
    prompt, prompt_rate = read_wav(media["prompt"])
    assert rate == prompt_rate == 8000
    r, at = best_match(prompt, heard)
    assert r > 0.9, f"the office did not hear the prompt (r = {r:.3f})"
    assert at < 8000  # within the first second of the call
    # While it played, nothing of the caller reached the office; after it, the caller did.
    speech = pcap_audio()
    during = heard[at:at + len(prompt)]
    assert best_match(speech[8000:12000], during)[0] < 0.3
    r_after, after_at = best_match(speech[24000:40000], heard)
    assert r_after > 0.9 and after_at > at + len(prompt)


def test_offer_the_box_cannot_record_is_refused(box: SipBox, sip_peers: PeerFactory) -> None:
    """G.729 only: 488 from the box, nothing reaches the office, nothing is recorded."""
    box.mark()
    office = sip_peers.baresip(user="0140000000", host=box.pbx[0], port=box.pbx[1])
    caller = sip_peers.sipp(SCENARIOS / "uac_g729_only.xml", remote=box.trunk,
                            host=PROVIDER_HOST, port=box.provider[1],
                            extra=["-s", "0140000000"])
    caller.expect_success(timeout=20)
    assert "488 Not Acceptable Here" in caller.messages()
    box.assert_no_new_recording(settle_s=1.0)
    assert not any(e.get("type") == "CALL_INCOMING" for e in office.events)


def test_late_offer_from_the_office(box: SipBox, sip_peers: PeerFactory,
                                    tmp_path: Path) -> None:
    """A PBX whose INVITE carries no SDP: the box offers to the provider itself, offers the
    provider's choice to the office in its 200, takes the answer from the ACK; both parties'
    speech (SIPp's pcap from each side) is recorded on its channel, bit for bit."""
    box.mark()
    provider = provider_uas(sip_peers, box, "uas_answer_pcap_wait_bye.xml")
    office = sip_peers.sipp(SCENARIOS / "uac_late_offer.xml", remote=box.lan, host=box.pbx[0],
                            port=box.pbx[1], timeout_s=SIPP_TIMEOUT_S,
                            extra=["-s", "0612345678"])
    office.expect_success(timeout=40)
    provider.expect_success(timeout=20)
    (meta,) = box.new_recordings()
    assert meta["direction"] == "out" and meta["called_number"] == "0612345678"
    assert meta["announcement"]["completed"]
    audio = box.channels(meta["id"], tmp_path)
    speech = pcap_audio()[240:]
    for channel in (0, 1):
        r, _ = best_match(speech, audio[:, channel])
        assert r > 0.99, f"channel {channel}: r = {r:.3f}"
