"""SDP parsing, serialisation and the offer/answer steps of the media anchor (callrec.sip.sdp).

The offers below are shaped like what real peers send:
  * SIPP_UAC, SIPP_UAS: the built-in `uac` / `uas` scenarios of SIPp (src/scenario.cpp),
    with [local_ip] = 127.0.0.1 and [media_port] = 6000;
  * SIPP_UAC_PCAP: SIPp's built-in `uac_pcap` scenario (PCMA + telephone-event 0-11,16);
  * BARESIP: baresip's offer quoted in https://github.com/baresip/baresip/issues/3258 (many
    codecs, telephone-event on payload type 10, a=rtcp-rsize, ssrc, mid, label);
  * RTPENGINE: the audio section of https://github.com/sipwise/rtpengine/issues/2044 (Opus,
    PCMA, telephone-event at 48000 and 8000 Hz, a=rtcp, maxptime).
"""

from __future__ import annotations

import pytest

from callrec.sip import sdp
from callrec.sip.sdp import NotRecordableError, SdpError


def crlf(text: str) -> str:
    return "\r\n".join(text.strip("\n").split("\n")) + "\r\n"


SIPP_UAC = crlf("""
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""")

SIPP_UAS = SIPP_UAC.replace("6000", "6002")

SIPP_UAC_PCAP = crlf("""
v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
""")

BARESIP = crlf("""
v=0
o=- 2237437666 647389653 IN IP4 192.168.168.187
s=-
c=IN IP4 192.168.168.187
t=0 0
m=audio 8570 RTP/AVP 96 97 98 9 99 100 101 102 103 18 104 8 0 10
a=rtpmap:96 AMR-WB/16000
a=rtpmap:97 AMR/8000
a=rtpmap:98 opus/48000/2
a=fmtp:98 stereo=0;sprop-stereo=0;maxaveragebitrate=28000;cbr=0;useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:99 G7221/16000
a=fmtp:99 bitrate=32000
a=rtpmap:100 G726-40/8000
a=rtpmap:101 G726-32/8000
a=rtpmap:102 G726-24/8000
a=rtpmap:103 G726-16/8000
a=rtpmap:18 G729/8000
a=rtpmap:104 CODEC2/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:10 telephone-event/8000
a=fmtp:10 0-15
a=sendrecv
a=rtcp-rsize
a=ssrc:3299428848 cname:sip:bar@test.tutpro.com
a=mid:0
a=minptime:20
a=ptime:20
a=label:1
""")

RTPENGINE = crlf("""
v=0
o=- 1545997027 1 IN IP4 203.0.113.7
s=-
t=0 0
m=audio 11492 RTP/AVP 8 96 97 101
c=IN IP4 203.0.113.7
a=rtpmap:8 PCMA/8000
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 telephone-event/48000
a=fmtp:97 0-15
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
a=rtcp:11493
a=ptime:20
a=maxptime:140
""")

WITH_VIDEO_AND_ICE = crlf("""
v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=call
i=an office call
c=IN IP4 192.0.2.10
b=AS:256
t=0 0
a=ice-ufrag:F7gI
a=ice-pwd:x9cml/YzichV2+XlhiMu8g
m=audio 49170 RTP/AVPF 0 8 18 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-fb:* nack
a=rtcp-fb:18 trr-int 100
a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host
a=rtcp:49171 IN IP4 192.0.2.10
a=x-vendor-thing:42
m=video 51372 RTP/AVP 96
a=rtpmap:96 H264/90000
z=0 0
""")


# -- parsing and serialising --


@pytest.mark.parametrize("body", [SIPP_UAC, SIPP_UAC_PCAP, BARESIP, RTPENGINE,
                                  WITH_VIDEO_AND_ICE])
def test_round_trip_is_exact(body: str) -> None:
    parsed = sdp.parse(body.encode())
    assert parsed.serialize() == body
    assert sdp.parse(parsed.serialize()).serialize() == body


def test_bare_lf_and_trailing_blank_lines_are_accepted() -> None:
    lf = SIPP_UAC.replace("\r\n", "\n") + "\n"
    assert sdp.parse(lf).serialize() == SIPP_UAC


def test_fields_of_a_real_offer() -> None:
    s = sdp.parse(BARESIP)
    assert s.origin == sdp.Origin("-", "2237437666", 647389653, "IP4", "192.168.168.187")
    assert s.connection == sdp.Connection("IP4", "192.168.168.187")
    (m,) = s.media
    assert (m.kind, m.port, m.proto, m.port_count) == ("audio", 8570, "RTP/AVP", None)
    assert m.formats[-3:] == ["8", "0", "10"]
    maps = m.rtpmaps()
    assert maps[10] == sdp.RtpMap(10, "telephone-event", 8000) and maps[10].telephone_event
    assert maps[98] == sdp.RtpMap(98, "opus", 48000, 2) and not maps[98].recordable
    assert maps[0].recordable and maps[8].recordable
    assert m.fmtp(10) == "0-15" and m.fmtp(0) is None
    assert m.ptime == 20 and m.direction == "sendrecv"
    assert m.attribute("mid") == "0" and m.attribute("rtcp-rsize") == ""
    assert m.attribute("nope") is None


def test_static_payload_types_need_no_rtpmap_and_media_level_c_wins() -> None:
    s = sdp.parse(RTPENGINE)
    assert s.connection is None
    m = s.media[0]
    assert s.connection_of(m) == sdp.Connection("IP4", "203.0.113.7")
    noms = sdp.parse(SIPP_UAC.replace("a=rtpmap:0 PCMU/8000\r\n", ""))
    assert noms.media[0].rtpmaps() == {0: sdp.RtpMap(0, "PCMU", 8000)}


def test_ipv6_and_fqdn_connections() -> None:
    v6 = sdp.parse(SIPP_UAC.replace("IN IP4 127.0.0.1", "IN IP6 2001:db8::1"))
    assert v6.connection == sdp.Connection("IP6", "2001:db8::1")
    fqdn = sdp.parse(SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example.com"))
    assert fqdn.connection is not None and fqdn.connection.address == "pbx.example.com"


def too_many_lines() -> str:
    return SIPP_UAC + "a=x\r\n" * 200


def test_rtpmap_without_clock_rate_is_read_but_never_chosen() -> None:
    """RFC 4475's valid "esc01" and "longreq" carry "a=rtpmap:31 LPC" (no rate): the offer
    stands, the format has rate 0, and a recordable codec without its rate is not taken."""
    lpc = SIPP_UAC + "m=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
    offer = sdp.parse(lpc)
    assert offer.media[1].rtpmaps()[31].clock_rate == 0
    assert sdp.restrict_offer(offer).media[1].port == 0
    bare = sdp.parse(SIPP_UAC.replace("m=audio 6000 RTP/AVP 0", "m=audio 6000 RTP/AVP 0 97")
                     + "a=rtpmap:97 PCMA\r\n")
    assert sdp.read_media(sdp.restrict_offer(bare)).codecs == {0: "PCMU"}


@pytest.mark.parametrize(("body", "why"), [
    ("", "start with v=0"),
    ("v=1\r\n", "start with v=0"),
    ("V=0\r\n", "not <type>=<value>"),
    ("v=0\r\ns=-\r\n", "o= must follow"),
    ("v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\n", "o= must follow"),
    (SIPP_UAC.replace("53655765", "x5"), "bad o="),
    (SIPP_UAC.replace("o=user1 53655765 2353687637 IN IP4", "o=user1 1 2 IN"), "bad o="),
    (SIPP_UAC.replace("2353687637", "1" * 21), "bad o="),
    (SIPP_UAC.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1",
                      "o=user1 1 2 IN IP4 ::1"), "not an IP4"),
    (SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 999.1.1.1"), "bad address"),
    (SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 <script>"), "bad address"),
    (SIPP_UAC.replace("c=IN IP4", "c=ATM IP4"), "bad c="),
    (SIPP_UAC.replace("c=IN IP4 127.0.0.1\r\n", ""), "no c="),
    (SIPP_UAC.replace("t=0 0", "c=IN IP4 1.2.3.4"), "two c="),
    (SIPP_UAC.replace("s=-\r\n", ""), "exactly one s="),
    (SIPP_UAC.replace("s=-", "s=-\r\ns=x"), "exactly one s="),
    (SIPP_UAC + "s=x\r\n", "s= in a media"),
    (SIPP_UAC + "v=0\r\n", "only once"),
    (SIPP_UAC.replace("t=0 0", "t=0 0\r\n\r\nk=x"), "not <type>=<value>"),
    (SIPP_UAC.replace("t=0 0", "garbage"), "not <type>=<value>"),
    (SIPP_UAC.replace("s=-", "s=\x07"), "control character"),
    (SIPP_UAC.replace("m=audio 6000", "m=audio 70000"), "port"),
    (SIPP_UAC.replace("m=audio 6000", "m=audio 6x"), "port"),
    (SIPP_UAC.replace("m=audio 6000", "m=audio 6000/0"), "port count"),
    (SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP 128"), "out of range"),
    (SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP"), "bad m="),
    (SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP " + " ".join(["0"] * 33)), "formats"),
    (SIPP_UAC + "m=audio 6002 RTP/AVP 0\r\n" * 8, "m= lines"),
    (SIPP_UAC.replace("PCMU/8000", "PCMU/0"), "bad a=rtpmap"),
    (SIPP_UAC.replace("rtpmap:0", "rtpmap:200"), "bad a=rtpmap"),
    (SIPP_UAC + "a=fmtp:x 0-15\r\n", "bad a=fmtp"),
    (SIPP_UAC + "a=sendrecv:yes\r\n", "takes no value"),
    (SIPP_UAC + "a=:x\r\n", "attribute name"),
    (SIPP_UAC + "a=x" + "y" * 1000 + "\r\n", "longer than"),
    (too_many_lines(), "lines"),
])
def test_malformed_sdp_is_refused(body: str, why: str) -> None:
    with pytest.raises(SdpError, match=why):
        sdp.parse(body)


def test_size_and_encoding_limits() -> None:
    big = SIPP_UAC + ("a=" + "x" * 900 + "\r\n") * 9
    with pytest.raises(SdpError, match="larger than"):
        sdp.parse(big)
    with pytest.raises(SdpError, match="larger than"):
        sdp.parse(big.encode())
    with pytest.raises(SdpError, match="UTF-8"):
        sdp.parse(SIPP_UAC.encode().replace(b"s=-", b"s=\xff"))


def test_bad_ptime_is_reported_when_read() -> None:
    for value in ("abc", "0", "5000"):
        m = sdp.parse(SIPP_UAC + f"a=ptime:{value}\r\n").media[0]
        with pytest.raises(SdpError, match="ptime"):
            _ = m.ptime
    assert sdp.parse(SIPP_UAC + "a=ptime:20.0\r\n").media[0].ptime == 20


# -- restricting an offer --


def test_restrict_keeps_g711_and_telephone_event_in_the_offerers_order() -> None:
    out = sdp.restrict_offer(sdp.parse(BARESIP))
    m = out.media[0]
    assert m.formats == ["8", "0", "10"] and m.port == 8570
    assert [v for k, v in m.lines if k == "a"] == [
        "rtpmap:8 PCMA/8000", "rtpmap:0 PCMU/8000", "rtpmap:10 telephone-event/8000",
        "fmtp:10 0-15", "sendrecv", "rtcp-rsize", "ssrc:3299428848 cname:sip:bar@test.tutpro.com",
        "mid:0", "minptime:20", "ptime:20", "label:1"]
    sdp.parse(out.serialize())  # still valid SDP


def test_restrict_picks_the_8khz_telephone_event() -> None:
    m = sdp.restrict_offer(sdp.parse(RTPENGINE)).media[0]
    assert m.formats == ["8", "101"]
    assert m.fmtp(101) == "0-16" and m.fmtp(97) is None and m.fmtp(96) is None


def test_restrict_declines_video_and_keeps_wildcard_feedback() -> None:
    out = sdp.restrict_offer(sdp.parse(WITH_VIDEO_AND_ICE))
    audio, video = out.media
    assert audio.formats == ["0", "8", "101"]
    attrs = audio.values("a")
    assert "rtcp-fb:* nack" in attrs and "rtcp-fb:18 trr-int 100" not in attrs
    assert "fmtp:18 annexb=no" not in audio.values("a")
    assert "x-vendor-thing:42" in audio.values("a")  # unknown attributes pass through
    assert video.port == 0 and video.formats == ["96"]


def test_restrict_uses_a_later_audio_stream_and_declines_the_rest() -> None:
    body = SIPP_UAC.replace("m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                            "m=audio 6000 RTP/AVP 18\r\nm=audio 6002 RTP/AVP 8\r\n"
                            "m=audio 6004 RTP/AVP 0\r\n")
    out = sdp.restrict_offer(sdp.parse(body))
    assert [(m.port, m.formats) for m in out.media] == [(0, ["18"]), (6002, ["8"]), (0, ["0"])]


@pytest.mark.parametrize("change", [
    ("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 18\r\na=rtpmap:18 G729/8000"),
    ("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000"),
    ("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 96\r\na=rtpmap:96 PCMU/16000"),
    ("RTP/AVP 0", "RTP/SAVP 0"),  # SRTP: encrypted end to end, nothing to record
    ("m=audio 6000", "m=audio 0"),  # already declined
    ("m=audio 6000 RTP/AVP 0", "m=image 6000 udptl t38"),
])
def test_an_offer_with_nothing_recordable_is_refused_with_488(change: tuple[str, str]) -> None:
    with pytest.raises(NotRecordableError) as e:
        sdp.restrict_offer(sdp.parse(SIPP_UAC.replace(*change)))
    assert e.value.status == 488 and e.value.reason == "Not Acceptable Here"


def test_dynamic_pcmu_is_recordable() -> None:
    body = SIPP_UAC.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
                            "RTP/AVP 96\r\na=rtpmap:96 pcmu/8000")
    assert sdp.restrict_offer(sdp.parse(body)).media[0].formats == ["96"]


def test_restrict_does_not_modify_its_input() -> None:
    s = sdp.parse(BARESIP)
    sdp.restrict_offer(s)
    assert s.serialize() == BARESIP


# -- anchoring --


def test_anchor_points_audio_at_the_relay_and_drops_bypass_attributes() -> None:
    out = sdp.anchor_media(sdp.restrict_offer(sdp.parse(WITH_VIDEO_AND_ICE)), "10.0.0.2", 40000)
    audio, video = out.media
    assert out.connection == sdp.Connection("IP4", "10.0.0.2")
    assert audio.port == 40000 and video.port == 0
    text = out.serialize()
    assert "192.0.2.10 49170" not in text and "a=candidate" not in text
    assert "a=rtcp:" not in text and "ice-ufrag" not in text and "ice-pwd" not in text
    assert "a=rtcp-fb:* nack" in text and "b=AS:256" in text and "z=0 0" in text
    assert out.origin.address == "192.0.2.10"  # the originator's job, see SdpOriginator


def test_anchor_rewrites_media_level_c_and_ipv6_relay() -> None:
    out = sdp.anchor_media(sdp.parse(RTPENGINE), "2001:db8::5", 30000)
    assert out.connection is None
    assert out.media[0].connection == sdp.Connection("IP6", "2001:db8::5")
    assert out.media[0].port == 30000


def test_anchor_inserts_c_in_rfc_order_when_needed() -> None:
    s = sdp.parse(SIPP_UAC)
    s.lines = [(k, v) for k, v in s.lines if k != "c"]
    s.media[0].lines.insert(0, ("c", "IN IP4 1.2.3.4"))
    s.connection = sdp.Connection("IP4", "5.6.7.8")
    assert s.lines[:2] == [("s", "-"), ("c", "IN IP4 5.6.7.8")]


@pytest.mark.parametrize("body", [
    SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"),
    RTPENGINE.replace("c=IN IP4 203.0.113.7", "c=IN IP4 0.0.0.0"),
])
def test_anchor_keeps_an_rfc2543_hold_address(body: str) -> None:
    out = sdp.anchor_media(sdp.parse(body), "10.0.0.2", 40000)
    assert sdp.read_media(out).on_hold
    assert "0.0.0.0" in out.serialize() and "10.0.0.2" not in out.serialize()


@pytest.mark.parametrize(("address", "port"), [("relay.local", 4000), ("10.0.0.1", 0),
                                               ("10.0.0.1", 70000)])
def test_anchor_refuses_a_bad_relay(address: str, port: int) -> None:
    with pytest.raises(SdpError):
        sdp.anchor_media(sdp.parse(SIPP_UAC), address, port)


# -- o= versions --


def test_originator_increments_the_version_only_when_the_sdp_changes() -> None:
    orig = sdp.SdpOriginator(session_id=42, address="10.0.0.2")
    offer = sdp.anchor_media(sdp.parse(SIPP_UAC), "10.0.0.2", 40000)
    first = orig.stamp(offer)
    assert first.origin == sdp.Origin("callrec", "42", 1, "IP4", "10.0.0.2")
    # The peer refreshes the session (RFC 4028) and bumps its version without change.
    refresh = sdp.parse(SIPP_UAC.replace("2353687637", "2353687638"))
    assert orig.stamp(sdp.anchor_media(refresh, "10.0.0.2", 40000)).origin.version == 1
    hold = sdp.parse(SIPP_UAC + "a=sendonly\r\n")
    assert orig.stamp(sdp.anchor_media(hold, "10.0.0.2", 40000)).origin.version == 2
    assert orig.stamp(sdp.anchor_media(hold, "10.0.0.2", 40000)).origin.version == 2
    # The peer re-sends its old version number for a changed body: the box still counts up.
    assert orig.stamp(offer).origin.version == 3
    assert orig.version == 3
    assert "o=callrec 42 3 IN IP4 10.0.0.2\r\n" in orig.stamp(offer).serialize()


def test_originator_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sdp.SdpOriginator(session_id=-1, address="10.0.0.2")
    with pytest.raises(ValueError):
        sdp.SdpOriginator(session_id=1, address="not-an-ip")


# -- reading an answer --


def test_read_sipp_answer() -> None:
    st = sdp.read_media(sdp.parse(SIPP_UAS))
    assert (st.payload_type, st.codec, st.codecs) == (0, "PCMU", {0: "PCMU"})
    assert st.telephone_event_pt is None and st.direction == "sendrecv" and not st.on_hold
    assert (st.address, st.port, st.ptime) == ("127.0.0.1", 6002, None)


def test_read_answer_with_events_and_several_codecs() -> None:
    st = sdp.read_media(sdp.parse(BARESIP))
    assert (st.payload_type, st.codec) == (8, "PCMA")
    assert st.codecs == {8: "PCMA", 0: "PCMU"} and st.telephone_event_pt == 10
    assert st.ptime == 20


@pytest.mark.parametrize(("extra", "direction", "hold"), [
    ("a=sendonly\r\n", "sendonly", True),
    ("a=inactive\r\n", "inactive", True),
    ("a=recvonly\r\n", "recvonly", False),
    ("a=sendrecv\r\n", "sendrecv", False),
])
def test_read_direction(extra: str, direction: str, hold: bool) -> None:
    st = sdp.read_media(sdp.parse(SIPP_UAS + extra))
    assert (st.direction, st.on_hold) == (direction, hold)


def test_session_level_direction_and_media_override() -> None:
    session_hold = SIPP_UAS.replace("t=0 0", "t=0 0\r\na=sendonly")
    assert sdp.read_media(sdp.parse(session_hold)).on_hold
    resumed = session_hold + "a=sendrecv\r\n"
    assert not sdp.read_media(sdp.parse(resumed)).on_hold


def test_rfc2543_hold_reads_as_hold() -> None:
    st = sdp.read_media(sdp.parse(SIPP_UAS.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")))
    assert st.on_hold and st.direction == "sendrecv" and st.address == "0.0.0.0"


@pytest.mark.parametrize("body", [
    SIPP_UAS.replace("m=audio 6002", "m=audio 0"),
    SIPP_UAS.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 18"),
])
def test_an_answer_without_recordable_audio_is_refused(body: str) -> None:
    with pytest.raises(NotRecordableError):
        sdp.read_media(sdp.parse(body))


def test_offer_answer_through_the_box() -> None:
    """baresip calls out; the box restricts and anchors the offer towards the trunk (SIPp uas
    answers PCMA), then anchors the answer back: each side sees only the relay."""
    to_trunk = sdp.SdpOriginator(7, "198.51.100.2")
    to_office = sdp.SdpOriginator(8, "192.168.168.1")
    offer = sdp.parse(BARESIP)
    sent = to_trunk.stamp(sdp.anchor_media(sdp.restrict_offer(offer), "198.51.100.2", 41000))
    assert sent.media[0].formats == ["8", "0", "10"]
    answer = sdp.parse(SIPP_UAS.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
                                        "RTP/AVP 8 10\r\na=rtpmap:8 PCMA/8000\r\n"
                                        "a=rtpmap:10 telephone-event/8000\r\na=fmtp:10 0-15"))
    trunk_side = sdp.read_media(answer, offer=sent)
    assert (trunk_side.codec, trunk_side.telephone_event_pt) == ("PCMA", 10)
    back = to_office.stamp(sdp.anchor_media(answer, "192.168.168.1", 41002))
    office_view = sdp.read_media(sdp.parse(back.serialize()))
    assert (office_view.address, office_view.port) == ("192.168.168.1", 41002)
    assert back.origin.username == "callrec"


def test_an_answer_is_checked_against_its_offer() -> None:
    offer = sdp.restrict_offer(sdp.parse(SIPP_UAC_PCAP))
    good = sdp.parse(SIPP_UAS.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
                                      "RTP/AVP 8\r\na=rtpmap:8 PCMA/8000"))
    assert sdp.read_media(good, offer=offer).codec == "PCMA"
    with pytest.raises(SdpError, match="not offered"):
        sdp.read_media(sdp.parse(SIPP_UAS.replace("RTP/AVP 0", "RTP/AVP 18 0")), offer=offer)
    with pytest.raises(SdpError, match="m= lines"):
        sdp.read_media(sdp.parse(SIPP_UAS + "m=video 0 RTP/AVP 96\r\n"), offer=offer)
