"""RFC 4475 torture messages through the SIP message parser, and mutations of a valid INVITE.

The 50 files (49 RFC messages plus the archive's extra `test.dat`) are copied in
`tests/data/sip/rfc4475` (from the project's shared test data; $CALLREC_SIP_TORTURE_DIR points
elsewhere), checked against their SHA256SUMS first. The expected handling of each is in that
folder's README and `expected.json`; this test checks our parser
against it: valid and odd messages parse (the application answers 4xx/5xx to the odd ones),
invalid ones raise SipParseError saying "answer 400" or "drop", never anything else and never
slowly.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from callrec.sip.headers import parse_challenge
from callrec.sip.message import (
    MAX_DATAGRAM,
    Request,
    Response,
    SipParseError,
    called_number,
    caller_number,
    parse_datagram,
)
from callrec.sip.uri import OtherUri, SipUri

REPO = Path(__file__).resolve().parents[2]
TORTURE = Path(
    os.environ.get("CALLREC_SIP_TORTURE_DIR", REPO / "tests/data/sip/rfc4475")
)
# Generous against a loaded CI machine; a parse takes well under a millisecond.
PER_MESSAGE_TIMEOUT_S = 2.0


def _require_fixture() -> None:
    if not (TORTURE / "SHA256SUMS").is_file():
        pytest.fail(
            f"RFC 4475 torture set missing: {TORTURE} (SHA256SUMS not found): it is part of "
            "the repository (tests/data/sip/rfc4475), or set CALLREC_SIP_TORTURE_DIR."
        )


def _sums() -> dict[str, str]:
    _require_fixture()
    out: dict[str, str] = {}
    for line in (TORTURE / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        out[name.strip()] = digest
    return out


def _expected() -> dict[str, Any]:
    _require_fixture()
    data: dict[str, Any] = json.loads((TORTURE / "expected.json").read_text())
    return data


def _names() -> list[str]:
    # Read at collection. A missing folder must fail, not collect zero cases and pass: it
    # yields one placeholder case that fails in _require_fixture.
    path = TORTURE / "expected.json"
    if not path.is_file():
        return ["<torture set missing>"]
    return sorted(json.loads(path.read_text())["files"])


def bounded_parse(data: bytes) -> Request | Response | SipParseError:
    """Parse on a worker thread so that a hang fails the test instead of wedging it; anything
    but SipParseError is a failure too."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(parse_datagram(data))
        except SipParseError as exc:
            result.append(exc)
        except BaseException as exc:  # reported below as the failure
            result.append(("unexpected", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(PER_MESSAGE_TIMEOUT_S)
    assert not worker.is_alive(), f"parse did not finish in {PER_MESSAGE_TIMEOUT_S} s"
    (outcome,) = result
    assert isinstance(outcome, Request | Response | SipParseError), f"raised {outcome!r}"
    return outcome


def test_checksums_first() -> None:
    """The bytes are the test: CRLFs, NULs and UTF-8 that an editor or git would change."""
    sums = _sums()
    dat = sorted(p.name for p in TORTURE.glob("*.dat"))
    assert len(dat) == 50, "49 RFC 4475 messages plus test.dat"
    assert set(dat) <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((TORTURE / name).read_bytes()).hexdigest() == digest, name
    expected = _expected()
    assert sorted(expected["files"]) == dat
    assert expected["counts"] == {"valid": 15, "valid-but-semantically-odd": 13, "invalid": 22}


# Where RFC 4475 allows a choice, this parser:
#  - accepts baddate (lenient_ok; the RFC prefers ignoring a Date nobody uses, and we never
#    parse Date);
#  - drops baddn, insuf and test.dat instead of answering: the archive copy of baddn has no
#    end of its header section (a datagram cut short), insuf and test.dat lack what a 400
#    must echo (Call-ID, From, To; Via, CSeq).
ACCEPTED_INVALID = {"baddate.dat"}
DROPPED_INVALID_REQUESTS = {"baddn.dat", "insuf.dat", "test.dat"}


@pytest.mark.parametrize("name", _names())
def test_torture_message_is_handled_as_documented(name: str) -> None:
    expected = _expected()["files"][name]
    data = (TORTURE / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    outcome = bounded_parse(data)
    kind, cls = expected["kind"], expected["class"]
    if cls in ("valid", "valid-but-semantically-odd") or name in ACCEPTED_INVALID:
        assert not isinstance(outcome, SipParseError), f"{name}: {outcome}"
        if kind == "request":
            assert isinstance(outcome, Request) and outcome.method == expected["method"]
        else:
            assert isinstance(outcome, Response) and outcome.status == expected["status"]
        # What was accepted must survive forwarding: serialize, parse again, same bytes.
        again = parse_datagram(outcome.serialize())
        assert again.serialize() == outcome.serialize()
        return
    assert isinstance(outcome, SipParseError), f"{name} parsed but is invalid"
    # The reason may go into a log or a reason phrase: it never quotes the message (numbers).
    assert not re.search(r"[0-9]{3}", outcome.reason), outcome.reason
    if kind == "response" or name in DROPPED_INVALID_REQUESTS:
        assert outcome.action == "drop", outcome.reason
        assert outcome.answer is None
        return
    codes = [expected["expected_response"], *expected["also_acceptable"]]
    assert 400 in codes, f"{name}: documented codes {codes}"
    assert outcome.action == "answer 400", outcome.reason
    answer = outcome.answer
    assert answer is not None
    # The 400 echoes the request's own fields, so its sender can match it (RFC 3261 8.2.6.2).
    assert answer.call_id.startswith(name.removesuffix(".dat"))
    assert answer.via and answer.cseq and answer.from_ and answer.to


def test_handling_totals() -> None:
    counts = {"parsed": 0, "answer 400": 0, "drop": 0}
    for name in _names():
        outcome = bounded_parse((TORTURE / name).read_bytes())
        counts["parsed" if not isinstance(outcome, SipParseError) else outcome.action] += 1
    print(f"\ntorture set: {counts}")
    # 15 valid + 13 odd + baddate; 18 invalid requests answered; 2 responses + 3 dropped.
    assert counts == {"parsed": 29, "answer 400": 16, "drop": 5}


def test_baddn_terminated_variant_gets_a_400_for_its_display_name() -> None:
    _require_fixture()
    outcome = bounded_parse((TORTURE / "variants/baddn-terminated.dat").read_bytes())
    assert isinstance(outcome, SipParseError) and outcome.action == "answer 400"
    assert "display name" in outcome.reason


def _parse(name: str) -> Request | Response:
    _require_fixture()
    return parse_datagram((TORTURE / name).read_bytes())


def _request(name: str) -> Request:
    message = _parse(name)
    assert isinstance(message, Request)
    return message


def test_wsinv_whitespace_folding_and_compact_forms() -> None:
    m = _request("wsinv.dat")  # 3.1.1.1
    assert m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.to.tag == "1918181833n" and m.from_.tag == "98asjd8"
    assert m.from_.display == 'J Rosenberg \\"'
    assert m.max_forwards == 68 and (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.headers.get("subject") == ""
    (contact,) = m.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(m.body) == 150


def test_escapes_in_uris() -> None:
    m = _request("esc01.dat")  # 3.1.1.3: escapes in the user part and URI parameters
    ruri = m.request_uri
    assert isinstance(ruri, SipUri) and ruri.user == "sips:user@example.com"
    assert ruri.host == "example.net"
    assert isinstance(m.to.uri, SipUri) and m.to.uri.user == "user"
    assert isinstance(m.from_.uri, SipUri) and m.from_.uri.user == "I have spaces"
    curi = m.contacts[0].uri
    assert isinstance(curi, SipUri) and curi.user == "caller"
    assert curi.params == (("lr", None), ("name", "value%41"))
    m = _request("escnull.dat")  # 3.1.1.4: %00 is a character, the AOR is not cut there
    assert isinstance(m.to.uri, SipUri) and m.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts if isinstance(c.uri, SipUri)] == ["\x00", "\x00\x00"]
    ruri = _request("semiuri.dat").request_uri  # 3.1.1.9: ';' belongs to the user part
    assert isinstance(ruri, SipUri) and ruri.user == "user;par=u@example.net"
    assert ruri.host == "example.com" and ruri.params == ()
    m = _request("esc02.dat")  # 3.1.1.5: % that is not an escape, in a method and a branch
    assert m.method == "RE%47IST%45R" and m.vias[0].branch == "z9hG4bK209%fzsnel234"
    assert m.to.display == "%Z%45" and len(m.contacts) == 2  # "C%6Fntact" is another header
    (c,) = _request("regescrt.dat").contacts  # 3.3.14: a header in a Contact URI is allowed
    assert isinstance(c.uri, SipUri) and c.uri.headers == (("Route", "<sip:sip.example.com>"),)


def test_intmeth_wide_range_of_valid_characters() -> None:
    m = _request("intmeth.dat")  # 3.1.1.2
    assert m.method == m.cseq.method == "!interesting-Method0123456789_*+`.%indeed'~"
    ruri = m.request_uri
    assert isinstance(ruri, SipUri)
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_long_values_and_other_valid_messages() -> None:
    assert _request("lwsdisp.dat").from_.display == "caller"  # 3.1.1.6
    m = _request("longreq.dat")  # 3.1.1.7: 34 Via fields under every spelling of the name
    assert len(m.vias) == 34 and len(m.call_id) == 141
    assert isinstance(m.to.uri, SipUri) and m.to.uri.port == 6000
    assert m.to.display is not None and m.to.display.startswith("I have a user name of extreme")
    assert m.from_.tag is not None and len(m.from_.tag) == 155
    m = _request("dblreq.dat")  # 3.1.1.8: the trailing INVITE goes with Content-Length
    assert m.method == "REGISTER" and m.body == b"" and b"INVITE" not in m.serialize()
    assert [v.transport for v in _request("transports.dat").vias] == [
        "UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]  # 3.1.1.10
    m = _request("mpart01.dat")  # 3.1.1.11: a binary body with NULs, kept byte for byte
    assert len(m.body) == 553 and m.body.count(b"\x00") == 2
    assert m.vias[0].rport == ""
    r = _parse("unreason.dat")  # 3.1.1.12
    assert isinstance(r, Response) and r.reason.startswith("= 2**3 * 5**2 но сто")
    r = _parse("noreason.dat")  # 3.1.1.13
    assert isinstance(r, Response) and (r.status, r.reason) == (100, "")
    (c1,) = _request("cparam01.dat").contacts  # 3.3.12/13: header vs URI parameter
    (c2,) = _request("cparam02.dat").contacts
    assert c1.params == (("unknownparam", None),) and isinstance(c1.uri, SipUri)
    assert c1.uri.params == () and isinstance(c2.uri, SipUri)
    assert c2.uri.params == (("unknownparam", None),) and c2.params == ()
    m = _request("inv2543.dat")  # 3.4.1: no Content-Length on UDP: body to the datagram's end
    assert m.body.startswith(b"v=0") and m.max_forwards is None and m.vias[0].branch is None
    assert caller_number(m) == "+13035551111" and called_number(m) == "+16505552222"


def test_odd_messages_parse_with_what_the_application_needs() -> None:
    assert _request("badvers.dat").version == "SIP/7.0"  # -> 505
    assert _request("badbranch.dat").vias[0].branch == "z9hG4bK"  # -> 400 statelessly
    assert isinstance(_request("unkscm.dat").request_uri, OtherUri)  # -> 416
    novel = _request("novelsc.dat").request_uri
    assert isinstance(novel, OtherUri) and novel.scheme == "soap.beep"
    m = _request("unksm2.dat")  # URIs of unknown schemes in To, From, Contact
    assert [str(m.to.uri), str(m.from_.uri), str(m.contacts[0].uri)] == [
        "isbn:2983792873", "http://www.example.com", "name:John_Smith"]
    assert _request("zeromf.dat").max_forwards == 0  # -> 483 at a proxy
    auth = parse_challenge(_request("regaut01.dat").headers.get("authorization") or "")
    assert auth.scheme == "NoOneKnowsThisScheme" and auth.get("opaque-data") == "here"
    assert _request("bext01.dat").headers.get("proxy-require") == (
        "noProxiesSupportThis, norDoAnyProxiesSupportThis")
    assert [v.host for v in _parse("bcast.dat").vias] == ["192.0.2.198", "255.255.255.255"]


# --- mutations of a valid INVITE ------------------------------------------------------------

INVITE = (
    b"INVITE sip:+33612345678@trunk.example.net;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Office" <sip:+33612345678@trunk.example.net;user=phone>\r\n'
    b'From: "Caller" <sip:0145678901@pbx.example.org>;tag=1928301774\r\n'
    b"P-Asserted-Identity: <tel:+33-1-45-67-89-01>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.org\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:office@192.0.2.10>, \"Alt\" <sip:alt@[2001:db8::1]:5070>;q=0.5\r\n"
    b"Route: <sip:proxy.example.net;lr>\r\n"
    b'Authorization: Digest username="office", realm="trunk", nonce="abc", uri="sip:x", '
    b'response="0123456789abcdef0123456789abcdef"\r\n'
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 129\r\n"
    b"\r\n"
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def _mutations(rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(400):  # byte flips, insertions, deletions
        data = bytearray(INVITE)
        for _ in range(rng.randint(1, 8)):
            op, pos = rng.randrange(3), rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                data.insert(pos, rng.choice(b'\r\n :;,<>"\\@%[]\x00\t'))
            elif len(data) > 1:
                del data[pos]
        out.append(bytes(data))
    out += [INVITE[:n] for n in range(0, len(INVITE), 7)]  # truncations
    head, body = INVITE.split(b"\r\n\r\n", 1)
    out += [
        head + b"\r\nX-Many: 1" * 150 + b"\r\n\r\n" + body,  # many headers, within the limit
        head + b"\r\nX-Many: 1" * 1_000 + b"\r\n\r\n" + body,  # beyond it
        head + b"\r\nX-Fold: a" + b"\r\n b" * 30_000 + b"\r\n\r\n",  # endless folding
        head.replace(b"Via: ", b"Via: " + b"SIP/2.0/UDP h;branch=x," * 200) + b"\r\n\r\n",
        head.replace(b"Via: ", b"Via: " + b"SIP/2.0/UDP h;branch=x," * 2_000) + b"\r\n\r\n",
        head.replace(b"CSeq: 314159", b"CSeq: " + b"9" * 5_000) + b"\r\n\r\n",
        head.replace(b"Content-Length: 129", b"Content-Length: " + b"9" * 5_000) + b"\r\n\r\n",
        head + b"\r\n\r\n" + b"\x00" * (1 << 20),  # 1 MiB body
        head + b"\r\n\r\n" + body * (MAX_DATAGRAM // len(body)),
        b"\r\n" * 30_000,  # keep-alives and nothing else
        b"",
    ]
    # Deep nesting of quotes and brackets, below and above the header length limit, in the
    # fields that are parsed (From/To/Contact/Route) and in one that is only kept.
    for n in (2_500, 30_000):
        for name in (b"To: ", b"From: ", b"Contact: ", b"Route: ", b"Content-Type: "):
            for filler in (b'"' * n, b'"' + b'\\"' * n + b'" ', b"<" * n, b"<>," * n,
                           b"(" * n, b"<" * n + b">" * n, b'<"' * n, b";" * n, b"\\" * n):
                out.append(head.replace(name, name + filler) + b"\r\n\r\n" + body)
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_mutations_only_raise_sip_parse_error_in_bounded_time() -> None:
    assert isinstance(parse_datagram(INVITE), Request)
    rng = random.Random(4475)  # fixed seed: a failure is reproducible
    times: list[float] = []
    outcomes = {"parsed": 0, "answer 400": 0, "drop": 0}
    for data in _mutations(rng):
        outcome = bounded_parse(data)
        t0 = time.perf_counter()  # timed again outside the worker thread's start-up
        try:
            parse_datagram(data)
        except SipParseError:
            pass
        times.append(time.perf_counter() - t0)
        if isinstance(outcome, SipParseError):
            outcomes[outcome.action] += 1
            continue
        outcomes["parsed"] += 1
        # A harmless mutation: what would be forwarded is stable.
        again = parse_datagram(outcome.serialize())
        assert again.serialize() == outcome.serialize()
        if outcome.headers.get("content-length") is not None:  # else serialize adds it
            assert again == outcome
    worst = max(times)
    print(f"\nmutations: {len(times)} {outcomes}, p50 {_percentile(times, 0.5) * 1e3:.3f} ms, "
          f"p99 {_percentile(times, 0.99) * 1e3:.3f} ms, worst {worst * 1e3:.3f} ms")
    assert worst < 0.25


def test_valid_corpus_parse_time() -> None:
    _require_fixture()
    expected = _expected()["files"]
    corpus = [
        (TORTURE / n).read_bytes() for n, e in expected.items() if e["class"] != "invalid"
    ] + [INVITE]
    times: list[float] = []
    for _ in range(50):
        for data in corpus:
            t0 = time.perf_counter()
            parse_datagram(data)
            times.append(time.perf_counter() - t0)
    p50, p99 = _percentile(times, 0.5), _percentile(times, 0.99)
    print(f"\nvalid corpus: {len(corpus)} messages x 50, p50 {p50 * 1e6:.0f} us, "
          f"p99 {p99 * 1e6:.0f} us, max {max(times) * 1e6:.0f} us")
    assert p99 < 0.02
