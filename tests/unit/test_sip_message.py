"""The SIP message layer: parsing, canonical serialization, URIs, header fields, limits and
the phone numbers taken from SIP headers."""

from __future__ import annotations

import pytest

from callrec.privacy.donotrecord import normalise_number
from callrec.sip.headers import (
    HeaderError,
    parse_challenge,
    parse_cseq,
    parse_name_addr,
    parse_via,
    split_list,
)
from callrec.sip.message import (
    MAX_DATAGRAM,
    MAX_HEADERS,
    MAX_LINE,
    MAX_LIST_VALUES,
    Headers,
    Request,
    Response,
    SipParseError,
    called_number,
    caller_number,
    canonical_name,
    number_of_header,
    parse_datagram,
)
from callrec.sip.uri import OtherUri, SipUri, TelUri, UriError, number_of_uri, parse_uri


def build(*headers: str, start: str = "INVITE sip:bob@example.com SIP/2.0",
          body: bytes = b"", length: bool = True) -> bytes:
    base = [
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
        "From: <sip:alice@example.com>;tag=1",
        "To: <sip:bob@example.com>",
        "Call-ID: c1@192.0.2.1",
        "CSeq: 1 " + (start.split(" ")[0] if not start.startswith("SIP/") else "INVITE"),
        "Max-Forwards: 70",
    ]
    names = {h.split(":")[0].strip().lower() for h in headers}
    lines = [start, *[b for b in base if b.split(":")[0].lower() not in names], *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_request(data: bytes) -> Request:
    message = parse_datagram(data)
    assert isinstance(message, Request)
    return message


# --- round trips -------------------------------------------------------------------------

ROUND_TRIP = [
    build(body=b"v=0\r\n"),
    build("v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com",
          "X-Unknown-Header:   keep  me  ", "m: <sip:a@[2001:db8::1]:5070;transport=udp>"),
    build(start="SIP/2.0 180 Ringing"),
    build(start="SIP/2.0 486 Busy Here", body=b"\x00\xff binary"),
    build(start="OPTIONS sips:+33123456789@trunk.example.net;user=phone SIP/2.0"),
]


@pytest.mark.parametrize("data", ROUND_TRIP)
def test_round_trip_parse_serialize_parse(data: bytes) -> None:
    first = parse_datagram(data)
    wire = first.serialize()
    second = parse_datagram(wire)
    assert second == first
    assert second.serialize() == wire  # canonical: serializing is idempotent


def test_serializer_canonical_names_unknown_headers_as_received() -> None:
    m = parse_request(build("i: x@y", "X-Odd-NAME:  value\twith tab", length=False,
                            body=b"abc").replace(b"Call-ID: c1@192.0.2.1\r\n", b""))
    wire = m.serialize().decode()
    assert "Call-ID: x@y\r\n" in wire
    assert "X-Odd-NAME: value\twith tab\r\n" in wire
    assert wire.endswith("Content-Length: 3\r\n\r\nabc")  # added: the body's real length


def test_serializer_writes_the_body_length_after_an_edit() -> None:
    m = parse_request(build(body=b"12345"))
    m.body = b"12"
    assert b"Content-Length: 2\r\n\r\n12" in m.serialize()


def test_request_and_response_fields() -> None:
    r = parse_datagram(build(start="SIP/2.0 200 OK fine"))
    assert isinstance(r, Response)
    assert (r.status, r.reason, r.version) == (200, "OK fine", "SIP/2.0")
    q = parse_request(build(start="INVITE sip:bob@example.com sip/2.0"))
    assert q.version == "SIP/2.0" and q.method == "INVITE"


# --- compact forms, folding, multiple values ------------------------------------------------

@pytest.mark.parametrize(("compact", "long"), [
    ("i", "call-id"), ("m", "contact"), ("f", "from"), ("t", "to"), ("v", "via"),
    ("l", "content-length"), ("c", "content-type"), ("k", "supported"), ("s", "subject"),
    ("e", "content-encoding"), ("o", "event"), ("u", "allow-events"), ("r", "refer-to"),
    ("b", "referred-by"), ("x", "session-expires"),
])
def test_compact_forms(compact: str, long: str) -> None:
    assert canonical_name(compact.upper()) == canonical_name(long.title()) == long


def test_compact_forms_in_a_message() -> None:
    data = (b"INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
            b"f: <sip:a@example.com>;tag=9\r\nt: sip:bob@example.com\r\ni: abc\r\n"
            b"CSeq: 2 INVITE\r\nm: <sip:a@h>\r\nc: application/sdp\r\nl: 3\r\n\r\nabc")
    m = parse_request(data)
    assert m.from_.tag == "9" and m.call_id == "abc" and m.headers.get("Content-Type")
    assert m.body == b"abc" and m.contacts[0].uri.raw == "sip:a@h"
    assert b"From: <sip:a@example.com>;tag=9\r\n" in m.serialize()


def test_folding_is_one_space() -> None:
    m = parse_request(build("Subject: first\r\n  second\r\n\tthird",
                            "CSeq: 7\r\n INVITE"))
    assert m.headers.get("subject") == "first second third"
    assert m.cseq.number == 7


def test_multi_value_split_outside_quotes_and_brackets() -> None:
    value = '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5, <sip:k@b.example>, sip:l@c.example'
    assert split_list(value) == [
        '"Doe, John" <sip:j@a.example;x=1,2>;q=0.5', "<sip:k@b.example>", "sip:l@c.example"]
    m = parse_request(build("Contact: " + value.replace(";x=1,2", ""),
                            "Route: <sip:p1.example;lr>, <sip:p2.example;lr>",
                            "Route: <sip:p3.example;lr>"))
    assert [c.display for c in m.contacts] == ["Doe, John", None, None]
    assert len(m.headers.values("route")) == 3
    with pytest.raises(HeaderError):
        split_list("a,,b")
    with pytest.raises(HeaderError):
        split_list('"unterminated, b')


def test_headers_multimap() -> None:
    h = Headers()
    h.add("Via", "a")
    h.add("v", "b")
    h.add("X-Y", "1")
    assert h.get_all("VIA") == ["a", "b"] and h.get("x-y") == "1"
    h.set("via", "c")
    assert h.get_all("via") == ["c"] and [f.name for f in h] == ["via", "X-Y"]
    h.prepend("Via", "d")
    assert h.get_all("via") == ["d", "c"] and h.remove("v") == 2 and len(h) == 1


# --- header fields --------------------------------------------------------------------------

def test_via_fields() -> None:
    v = parse_via("SIP / 2.0 / udp [2001:db8::9] : 5070 ;branch=z9hG4bKx;received=192.0.2.7"
                  ";rport=5071")
    assert (v.protocol, v.transport, v.host, v.port) == ("SIP/2.0", "UDP", "[2001:db8::9]", 5070)
    assert (v.branch, v.received, v.rport) == ("z9hG4bKx", "192.0.2.7", "5071")
    assert parse_via("SIP/2.0/UDP h;rport").rport == ""
    for bad in ("SIP/2.0 h", "SIP/2.0/UDP", "SIP/2.0/UDP h;;branch=1", "SIP/2.0/UDP h:99999"):
        with pytest.raises(HeaderError):
            parse_via(bad)


def test_cseq_and_name_addr() -> None:
    assert parse_cseq("  4711   ACK ") == parse_cseq("4711 ACK")
    for bad in ("1", "x INVITE", "2147483648 INVITE", "1 INVITE extra"):
        with pytest.raises(HeaderError):
            parse_cseq(bad)
    na = parse_name_addr('"A \\"B\\"" <sip:a@h>;tag=x ; other')
    assert (na.display, na.tag, na.params[1]) == ('A "B"', "x", ("other", None))
    assert parse_name_addr("Bob Smith <tel:+1-555>").display == "Bob Smith"
    for bad in ("< sip:a@h>", "Bell, A <sip:a@h>", '"x <sip:a@h>', "sip:a@h?x=y",
                "<sip:a@h", "<sip:a@h>;", '"x" sip:a@h'):
        with pytest.raises(HeaderError):
            parse_name_addr(bad)


def test_digest_parameters() -> None:
    c = parse_challenge('Digest realm="trunk.example, inc", nonce="a\\"b", algorithm=MD5, '
                        'qop="auth,auth-int", stale=FALSE')
    assert c.scheme == "Digest" and c.get("realm") == "trunk.example, inc"
    assert c.get("nonce") == 'a"b' and c.get("qop") == "auth,auth-int" and c.get("stale") == "FALSE"
    for bad in ('Digest realm="x', "Digest realm", "Digest realm=a b", ""):
        with pytest.raises(HeaderError):
            parse_challenge(bad)


# --- URIs -------------------------------------------------------------------------------------

def test_sip_uri_parts() -> None:
    u = parse_uri("sips:al%69ce:se%63ret@[2001:DB8::1]:5061;transport=tcp;lr?subject=hi%20there&x=")
    assert isinstance(u, SipUri)
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips", "alice", "secret", "[2001:db8::1]", 5061)
    assert u.params == (("transport", "tcp"), ("lr", None)) and u.param("LR") == ""
    assert u.headers == (("subject", "hi there"), ("x", ""))
    assert str(u) == u.raw
    host_only = parse_uri("sip:Example.COM")
    assert isinstance(host_only, SipUri) and host_only.user is None
    assert host_only.host == "example.com"
    tel = parse_uri("tel:+33-1-23-45-67-89;phone-context=+33")
    assert isinstance(tel, TelUri) and tel.params == (("phone-context", "+33"),)
    assert isinstance(parse_uri("urn:service:sos"), OtherUri)
    for bad in ("sip:", "sip:a@", "sip:a@h:70000", "sip:a@[::zz]", "sip:a@h;", "sip:a@h;;x",
                "sip:a b@h", "sip:a@h?x", "tel:abc", "nocolon", "sip:a@h_o", "x:<y>"):
        with pytest.raises(UriError):
            parse_uri(bad)


# --- phone numbers (same normalisation as analog caller ID) ---------------------------------

@pytest.mark.parametrize(("uri", "number"), [
    ("tel:+33-1-45-67-89-01", "+33145678901"),
    ("tel:01.45.67.89.01;phone-context=+33", "0145678901"),
    ("sip:+33145678901@trunk.example.net;user=phone", "+33145678901"),
    ("sip:+33(0)1%2045%2067%2089%2001;isub=12@gw.example;user=phone", "+330145678901"),
    ("sip:0145678901@pbx.example.org", "0145678901"),
    ("sip:%2B33145678901@pbx.example.org", "+33145678901"),
    ("sip:alice@example.org", None),
    ("sip:*31%23@example.org;user=phone", None),  # a service code, not a number
    ("sip:pbx.example.org", None),
    ("urn:service:sos", None),
])
def test_number_of_uri(uri: str, number: str | None) -> None:
    assert number_of_uri(parse_uri(uri)) == number


def test_numbers_from_the_four_header_kinds() -> None:
    m = parse_request(build(
        'From: "Reception" <sip:+33145678901@trunk.example.net;user=phone>;tag=5',
        "P-Asserted-Identity: \"Main\" <sip:0145678902@trunk.example.net>, <tel:+33145678903>",
        "To: <tel:06-12-34-56-78>",
        start="INVITE sip:0033612345679@trunk.example.net SIP/2.0",
    ))
    assert caller_number(m) == "0145678902"  # P-Asserted-Identity first
    assert caller_number(m, trust_asserted=False) == "+33145678901"  # From
    assert called_number(m) == "0033612345679"  # Request-URI
    assert number_of_header(m.headers.get("to")) == "0612345678"  # To
    # The same numbers as the analog caller ID of those calls.
    assert normalise_number(caller_number(m, trust_asserted=False)) == "0145678901"
    assert normalise_number(called_number(m)) == "0612345679"
    by_name = parse_request(build("To: <sip:0612345678@pbx.example>",
                                  start="INVITE sip:reception@pbx.example SIP/2.0"))
    assert called_number(by_name) == "0612345678"  # Request-URI names no number: To does
    assert caller_number(by_name) is None
    assert number_of_header("garbage <<<") is None


# --- errors and limits ------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "action"), [
    (build("Content-Length: 10", length=False, body=b"short"), "answer 400"),
    (build("CSeq: 1 BYE"), "answer 400"),
    (build("Call-ID: a", "Call-ID: b"), "answer 400"),
    (build(start="INVITE  sip:bob@example.com SIP/2.0"), "answer 400"),
    (build(start="INVITE sip:bob@example.com?Route=x SIP/2.0"), "answer 400"),
    (build(start="INVITE sip:bob@example.com"), "answer 400"),
    (build("Max-Forwards: 256"), "answer 400"),
    (build("Route: sip:p.example;lr"), "answer 400"),
    (build("X-Bad: a\x01b"), "answer 400"),
    (build("no colon here"), "answer 400"),
    (build(start="SIP/2.0 700 Too Big"), "drop"),  # a response is never answered
    (build("CSeq: x INVITE", start="SIP/2.0 200 OK"), "drop"),
    (build().replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n", b""), "drop"),
    (build()[:-2], "drop"),  # no end of the header section
    (b"\r\n\r\n", "drop"),
    (b"", "drop"),
])
def test_parse_errors_say_answer_or_drop(data: bytes, action: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_datagram(data)
    assert info.value.action == action, info.value.reason
    if action == "answer 400":
        answer = info.value.answer
        assert answer is not None and answer.via[0].startswith("SIP/2.0/UDP 192.0.2.1")


def test_keepalive_crlfs_before_a_message_are_ignored() -> None:
    assert parse_request(b"\r\n\r\n" + build()).method == "INVITE"


def test_limits() -> None:
    body = b"x" * (MAX_DATAGRAM - len(build(body=b"")) - 10)
    assert len(parse_request(build(body=body)).body) == len(body)
    with pytest.raises(SipParseError, match="too large"):
        parse_datagram(build(body=b"x" * MAX_DATAGRAM))
    many = [f"X-H{i}: {i}" for i in range(MAX_HEADERS - 7)]
    assert len(parse_request(build(*many)).headers) == MAX_HEADERS
    with pytest.raises(SipParseError, match="too many header fields"):
        parse_datagram(build(*many, "X-One-More: 1", "X-Two-More: 1"))
    with pytest.raises(SipParseError, match="too long"):
        parse_datagram(build("Subject: " + "a" * MAX_LINE))
    vias = ", ".join(f"SIP/2.0/UDP h{i}" for i in range(MAX_LIST_VALUES + 1))
    with pytest.raises(SipParseError, match="too many"):
        parse_datagram(build("Via: " + vias))


def test_content_length_and_datagram_body() -> None:
    trailing = build(body=b"abc") + b"junk after the message"
    assert parse_request(trailing).body == b"abc"  # RFC 3261 18.3: extra octets discarded
    assert parse_request(build(body=b"abc", length=False)).body == b"abc"  # to the end
    for bad in ("Content-Length: -1", "Content-Length: 1x", "Content-Length: 99999999999"):
        with pytest.raises(SipParseError):
            parse_datagram(build(bad, length=False))
