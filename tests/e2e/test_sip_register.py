"""The office's registration through the box, and the box's keep-alive to the provider, with
real peers: an office phone (baresip) registering to the box's LAN address, a registrar (SIPp)
at the provider's address, then a call from the provider to the contact it learnt; and a
plain UDP socket as a provider that answers OPTIONS, then stops, then answers again."""

from __future__ import annotations

import itertools
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrec.sim.harness import Pulse
from sip_box import PROVIDER_HOST, SCENARIOS, SipBox, start_sip_box
from sip_peers import PeerFactory

pytestmark = pytest.mark.sip

PHONE_USER = "0140000000"
PHONE_PASSWORD = "phone-secret-42"  # a test secret, made up
PHONE_REALM = "registrar.test"  # not the box's configured realm: the phone answers it
KEEPALIVE_S = 5.0



def test_office_registers_through_the_box_then_receives_a_call(
        box: SipBox, sip_peers: PeerFactory) -> None:
    """baresip registers to the box; the box relays to SIPp's registrar with its own Contact;
    the 401 goes back to the phone (another realm than the box's credentials), its answer
    goes through unchanged and verifies; the 200 reaches the phone; then the provider calls
    the contact it was given, and the phone answers."""
    registrar = sip_peers.sipp(
        SCENARIOS / "uas_registrar_401.xml", host=PROVIDER_HOST, port=box.provider[1],
        timeout_s=60.0, extra=["-key", "realm", PHONE_REALM, "-key", "user", PHONE_USER,
                               "-key", "password", PHONE_PASSWORD])
    phone = sip_peers.baresip(user=PHONE_USER, host=box.pbx[0], port=box.pbx[1],
                              auth_pass=PHONE_PASSWORD, registrar=f"{box.lan[0]}:{box.lan[1]}")
    registrar.expect_success(timeout=30)
    # Its REGISTER_OK event may come before ctrl_tcp is connected: ask it instead.
    deadline = time.monotonic() + 10
    while "OK" not in (info := str(phone.command("reginfo").get("data", ""))):
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
    trace = registrar.messages()
    registers = [m for m in trace.split("REGISTER sip:")[1:]]
    assert len(registers) >= 2, trace
    contacts = re.findall(r"^Contact: *<sip:([^@>]*)@([^>;]*)", trace, re.M)
    box_trunk = f"{box.trunk[0]}:{box.trunk[1]}"
    assert contacts and all(hostport == box_trunk for _, hostport in contacts), contacts
    call_ids = set(re.findall(r"^Call-ID: *(\S+)", trace, re.M))
    assert len(call_ids) == 1, call_ids  # the box's one Call-ID for this registration
    assert box.pbx[0] not in "".join(re.findall(r"^(?:Via|Contact|Call-ID):.*$", trace, re.M))
    assert re.search(r"^Authorization: Digest username=\"0140000000\"", trace, re.M)
    # The status file is rewritten every few seconds for the SIP line's counters.
    deadline = time.monotonic() + 15
    while (reg := box.sip_status().get("registrations") or {}).get("last_status") != 200:
        assert time.monotonic() < deadline, reg
        time.sleep(0.5)
    assert reg["relayed"] >= 2 and reg["bound"] == 1 and 0 < reg["expires_in_s"] <= 60, reg
    # The provider calls the contact it learnt: the box relays it to the phone.
    contact_user = contacts[-1][0]
    caller = sip_peers.sipp(SCENARIOS / "uac_pcap_bye.xml", remote=box.trunk,
                            host=PROVIDER_HOST, port=box.provider[1], timeout_s=60.0,
                            extra=["-s", contact_user])
    phone.wait_event("CALL_ESTABLISHED", timeout=30)
    caller.expect_success(timeout=60)
    phone.wait_event("CALL_CLOSED", timeout=20)


# -- keep-alive ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keepalive_box(tmp_path_factory: pytest.TempPathFactory, pulse: Pulse,
                  media: dict[str, Path]) -> Iterator[SipBox]:
    b = start_sip_box(tmp_path_factory.mktemp("sipbox-ka"), pulse, media["prompt"],
                      keepalive_s=KEEPALIVE_S)
    try:
        yield b
    finally:
        b.app.stop()


def _ok(data: bytes) -> bytes:
    """A 200 to an OPTIONS: its Via, From, To (tagged), Call-ID, CSeq."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    keep = [line for line in head.split("\r\n")[1:]
            if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    keep = [line + ";tag=prov1" if line.lower().startswith("to:") else line for line in keep]
    return ("\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0"]) + "\r\n\r\n").encode()


def _sip_fault(box: SipBox) -> str:
    status = box.app.status() or {}
    return next((f["detail"] for f in status.get("faults", []) if f["part"] == "sip"), "")


def test_keepalive_options_and_the_unreachable_fault(keepalive_box: SipBox) -> None:
    box = keepalive_box
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as provider:
        provider.bind(box.provider)
        provider.settimeout(1.0)

        def options(answer: bool, until: float) -> list[tuple[float, bytes]]:
            got = []
            while time.monotonic() < until:
                try:
                    data, source = provider.recvfrom(65536)
                except TimeoutError:
                    continue
                assert data.startswith(b"OPTIONS sip:"), data[:80]
                assert source == box.trunk
                got.append((time.monotonic(), data))
                if answer:
                    provider.sendto(_ok(data), source)
            return got

        # Answered: one OPTIONS per interval, each its own CSeq, the same Call-ID.
        # (The first ones may be retransmissions of an OPTIONS sent before this socket.)
        got = options(True, time.monotonic() + 3 * KEEPALIVE_S + 1)
        firsts: dict[bytes, float] = {}
        for at, data in got:
            firsts.setdefault(re.search(rb"CSeq: *(\d+)", data).group(1), at)  # type: ignore[union-attr]
        times = sorted(firsts.values())[1:]
        assert len(times) >= 2, [g[1][:60] for g in got]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(KEEPALIVE_S - 1.5 < g < KEEPALIVE_S + 1.5 for g in gaps), gaps
        assert b"Max-Forwards: 70" in got[0][1]
        assert len({re.search(rb"Call-ID: *(\S+)", d).group(1) for _, d in got}) == 1  # type: ignore[union-attr]
        assert not _sip_fault(box)
        # Silent: retransmissions, then the fault (3 rounds unanswered, 15 s).
        deadline = time.monotonic() + 40
        while not _sip_fault(box):
            assert time.monotonic() < deadline, box.daemon_log()
            options(False, time.monotonic() + 1)
        detail = _sip_fault(box)
        assert f"does not answer OPTIONS at {box.provider[0]}:{box.provider[1]} since" in detail
        assert re.search(r"since \d\d:\d\d$", detail), detail
        # Answering again clears it.
        deadline = time.monotonic() + 20
        while _sip_fault(box):
            assert time.monotonic() < deadline, box.daemon_log()
            options(True, time.monotonic() + 1)
    assert PROVIDER_HOST == box.provider[0]
