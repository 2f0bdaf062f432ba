"""FSK caller ID end to end: every standard and message variant, damage, noise, level, timing."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from test_callerid_signals import at_level, band_noise, decode, embed, with_noise

from callrec.dsp.callerid import CallerIdDecoder, checksum_ok, decode_message
from callrec.dsp.callerid_types import CallerIdMessage
from callrec.dsp.gen_callerid import (
    build_message,
    etsi_message,
    fsk_burst,
    mdmf_message,
    mwi_message,
    sdmf_message,
)

STANDARDS = ["etsi-v23", "bell202"]
DT = "03151742"

# (id, message bytes, expected CLI fields)
VARIANTS = [
    ("etsi-number-name-date", etsi_message(number="0612345678", name="DUPONT JEAN", datetime=DT),
     {"number": "0612345678", "name": "DUPONT JEAN", "datetime": DT, "absence": None}),
    ("etsi-number-only", etsi_message(number="0612345678"),
     {"number": "0612345678", "name": None, "datetime": None, "absence": None}),
    ("etsi-private", etsi_message(absence="P", datetime=DT),
     {"number": None, "name": None, "datetime": DT, "absence": "P"}),
    ("etsi-unavailable", etsi_message(absence="O", datetime=DT),
     {"number": None, "name": None, "datetime": DT, "absence": "O"}),
    ("etsi-name-absent", etsi_message(number="+33612345678", name_absence="P", datetime=DT),
     {"number": "+33612345678", "name": None, "datetime": DT, "absence": None}),
    ("mdmf-number-name", mdmf_message(number="2125551234", name="SMITH JOHN", datetime=DT),
     {"number": "2125551234", "name": "SMITH JOHN", "datetime": DT, "absence": None}),
    ("mdmf-private", mdmf_message(absence="P", name_absence="P", datetime=DT),
     {"number": None, "name": None, "datetime": DT, "absence": "P"}),
    ("sdmf-number", sdmf_message(number="2125551234", datetime=DT),
     {"number": "2125551234", "name": None, "datetime": DT, "absence": None}),
    ("sdmf-private", sdmf_message(absence="P", datetime=DT),
     {"number": None, "name": None, "datetime": DT, "absence": "P"}),
    ("sdmf-unavailable", sdmf_message(absence="O", datetime=DT),
     {"number": None, "name": None, "datetime": DT, "absence": "O"}),
]


def fields(m: CallerIdMessage) -> dict[str, object]:
    j = m.as_json()
    return {k: j[k] for k in ("number", "name", "datetime", "absence")}


def random_message(rng: np.random.Generator, kind: str) -> tuple[bytes, str]:
    number = "0" + "".join(rng.choice(list("0123456789"), 9))
    dt = f"{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{rng.integers(0, 24):02d}" \
         f"{rng.integers(0, 60):02d}"
    if kind == "sdmf":
        return sdmf_message(number=number, datetime=dt), number
    return etsi_message(number=number, name="MARTIN SOPHIE", datetime=dt), number


def decoded_ok(x: np.ndarray, standard: str, number: str) -> bool:
    out = decode(x)
    return (len(out) == 1 and out[0].checksum_ok and out[0].number == number
            and out[0].standard == standard)


# ------------------------------------------------------------------------ message layer
def test_cli_json_has_exactly_the_cli_keys() -> None:
    m = decode_message(etsi_message(number="0612345678", name="A"), "etsi-v23", 1.0, 2.0)
    assert m.as_json() == {"standard": "etsi-v23", "number": "0612345678", "name": "A",
                           "datetime": None, "absence": None, "checksum_ok": True}
    assert m.message_type == 0x80 and (m.start_s, m.end_s) == (1.0, 2.0)


def test_parse_skips_unknown_parameters_and_keeps_fields_as_sent() -> None:
    msg = etsi_message(number=" 06 12-34", name="Zoé", called="0140000000", call_type=1,
                       name_absence=None)
    m = decode_message(msg, "etsi-v23")
    assert (m.number, m.name, m.checksum_ok) == (" 06 12-34", "Zoé", True)
    m = decode_message(etsi_message(absence="P", name_absence="O"), "etsi-v23")
    assert (m.absence, m.name_absence, m.number) == ("P", "O", None)


def test_parse_refuses_bad_checksum_wrong_length_and_malformed_parameters() -> None:
    bad = etsi_message(number="0612345678", corrupt_checksum=True)
    assert not checksum_ok(bad)
    m = decode_message(bad, "etsi-v23")
    assert not m.checksum_ok and m.number is None and m.name is None and m.message_type == 0x80
    assert not decode_message(bad[:-2], "etsi-v23").checksum_ok
    # A parameter claiming more bytes than the message has: refused even with a good sum.
    assert not decode_message(build_message(0x80, b"\x02\x09061"), "etsi-v23").checksum_ok


def test_message_waiting_has_a_type_and_no_number() -> None:
    out = decode(embed(0.2, fsk_burst(mwi_message(True), "etsi-v23"), 0.2))
    assert len(out) == 1
    assert (out[0].message_type, out[0].checksum_ok, out[0].number) == (0x82, True, None)
    # A number inside a message-waiting message is not a caller's: not reported.
    mwi = build_message(0x82, b"\x0b\x01\xff\x02\x040612")
    assert decode_message(mwi, "etsi-v23").number is None
    assert decode_message(mwi, "etsi-v23").checksum_ok
    # Telcordia SDMF message waiting (0x06).
    sdmf_mwi = build_message(0x06, b"BBB")
    out = decode(embed(0.2, fsk_burst(sdmf_mwi, "bell202"), 0.2))
    assert [(m.message_type, m.checksum_ok, m.number) for m in out] == [(0x06, True, None)]


# ------------------------------------------------------------------------ every variant
@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize(("msg", "expected"), [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])
def test_every_variant(standard: str, msg: bytes, expected: dict[str, object]) -> None:
    for mode in ("auto", standard):
        out = decode(embed(0.4, fsk_burst(msg, standard), 0.4), standard=mode)
        assert len(out) == 1
        assert out[0].standard == standard and out[0].checksum_ok
        assert fields(out[0]) == expected
        assert out[0].message_type == msg[0]


@pytest.mark.parametrize("standard", STANDARDS)
def test_bad_checksum_is_reported_without_a_number(standard: str) -> None:
    msg = etsi_message(number="0612345678", name="DUPONT", datetime=DT, corrupt_checksum=True)
    out = decode(embed(0.3, fsk_burst(msg, standard), 0.3))
    assert len(out) == 1
    assert out[0].as_json() == {"standard": standard, "number": None, "name": None,
                                "datetime": None, "absence": None, "checksum_ok": False}


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("keep", [0.25, 0.6, 0.95])
def test_truncated_message_is_bad(standard: str, keep: float) -> None:
    msg = sdmf_message(number="2125551234", datetime=DT)
    burst = fsk_burst(msg, standard, end_mark_bits=0)
    head = (300 + 180) * 8000 // 1200
    cut = burst[: head + int(keep * (len(burst) - head))]
    out = decode(embed(0.3, cut, 0.5))
    assert [(m.checksum_ok, m.number, m.standard) for m in out] == [(False, None, standard)]


def test_call_waiting_burst_without_seizure() -> None:
    # Off-hook (CIDCW) data: no channel seizure, a mark period of 80 bits (ETSI / GR-30).
    msg = etsi_message(number="0612345678", datetime=DT)
    out = decode(embed(at_level(band_noise(4000, 0.05, np.random.default_rng(3)), -20),
                       0.05, fsk_burst(msg, "etsi-v23", seizure_bits=0, mark_bits=80), 0.3))
    assert [m.number for m in out] == ["0612345678"]


# ------------------------------------------------------------------------ line conditions
@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("level", [-5.0, -15.0, -25.0, -35.0, -40.0, -45.0])
def test_levels(standard: str, level: float) -> None:
    rng = np.random.default_rng(int(-level))
    for kind in ("sdmf", "mdmf"):
        msg, number = random_message(rng, kind)
        assert decoded_ok(embed(0.2, fsk_burst(msg, standard, level), 0.3), standard, number)


def test_below_the_floor_nothing_is_decoded() -> None:
    # The receiver floor is -48 dBm0 (a quiet line must stay idle): bursts below it are ignored.
    msg = etsi_message(number="0612345678")
    assert decode(embed(0.2, fsk_burst(msg, "etsi-v23", -52.0), 0.3)) == []


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize(("snr", "level"), [(20.0, -15.0), (20.0, -35.0), (15.0, -15.0),
                                            (15.0, -35.0)])
def test_noise(standard: str, snr: float, level: float) -> None:
    rng = np.random.default_rng(int(snr * 100 - level))
    for trial in range(6):
        msg, number = random_message(rng, ("sdmf", "mdmf")[trial % 2])
        burst = fsk_burst(msg, standard, level, phase=float(rng.uniform(0, 6.3)))
        x = with_noise(embed(0.3, burst, 0.3), burst, snr, rng)
        assert decoded_ok(x, standard, number), trial


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize(("freq_error", "baud_error"),
                         [(-0.015, -0.01), (0.015, 0.01), (-0.015, 0.01), (0.015, -0.01),
                          (0.03, 0.0), (-0.03, 0.0), (0.0, 0.02), (0.0, -0.02)])
def test_frequency_and_bit_rate_errors(standard: str, freq_error: float,
                                       baud_error: float) -> None:
    msg, number = random_message(np.random.default_rng(7), "mdmf")
    burst = fsk_burst(msg, standard, -30, freq_error=freq_error, baud_error=baud_error)
    assert decoded_ok(embed(0.2, burst, 0.3), standard, number)


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("twist_db", [-10.0, -6.0, 6.0, 10.0])
def test_twist_with_noise(standard: str, twist_db: float) -> None:
    rng = np.random.default_rng(11)
    msg, number = random_message(rng, "mdmf")
    burst = fsk_burst(msg, standard, -25, twist_db=twist_db)
    snr = 15.0 if abs(twist_db) <= 6 else 20.0
    assert decoded_ok(with_noise(embed(0.2, burst, 0.3), burst, snr, rng), standard, number)


def test_marking_between_characters() -> None:
    msg, number = random_message(np.random.default_rng(5), "mdmf")
    burst = fsk_burst(msg, "bell202", marks_between_bytes=10)
    assert decoded_ok(embed(0.2, burst, 0.3), "bell202", number)


# ------------------------------------------------------------------------ stream behaviour
def test_speech_right_before_and_after_the_burst(speech: list[np.ndarray]) -> None:
    talk = at_level(speech[0][: 3 * 8000], -12)
    rng = np.random.default_rng(2)
    for standard in STANDARDS:
        msg, number = random_message(rng, "mdmf")
        burst = fsk_burst(msg, standard, -20)
        for x in (embed(talk, burst, talk), embed(talk, 0.05, burst, 0.05, talk)):
            assert decoded_ok(x, standard, number)


def test_two_messages_in_one_stream_etsi_then_bell() -> None:
    a = etsi_message(number="0612345678", name="DUPONT", datetime=DT)
    b = sdmf_message(number="2125551234", datetime=DT)
    x = embed(0.5, fsk_burst(a, "etsi-v23"), 1.0, fsk_burst(b, "bell202", -30), 0.5)
    out = decode(x)
    assert [(m.standard, m.number, m.checksum_ok) for m in out] == [
        ("etsi-v23", "0612345678", True), ("bell202", "2125551234", True)]
    # Times: from the start of the burst (seizure) to the end of the checksum's stop bit.
    first_end = 0.5 + (300 + 180 + 10 * len(a)) / 1200
    assert abs(out[0].start_s - 0.5) < 0.006 and abs(out[0].end_s - first_end) < 0.002
    second = 0.5 + len(fsk_burst(a, "etsi-v23")) / 8000 + 1.0
    assert abs(out[1].start_s - second) < 0.006


def test_back_to_back_messages_without_a_gap() -> None:
    # Some exchanges send two messages (e.g. call set-up then message waiting) in one burst.
    a = etsi_message(number="0612345678")
    b = mwi_message(True)
    x = embed(0.3, fsk_burst(a, "etsi-v23", end_mark_bits=60), fsk_burst(
        b, "etsi-v23", seizure_bits=0, mark_bits=0), 0.3)
    out = decode(x)
    assert [(m.message_type, m.number) for m in out] == [(0x80, "0612345678"), (0x82, None)]


def test_chunk_size_independence() -> None:
    rng = np.random.default_rng(4)
    a = fsk_burst(etsi_message(number="0612345678", name="X", datetime=DT), "etsi-v23", -25)
    b = fsk_burst(sdmf_message(number="2125551234", datetime=DT), "bell202", -35)
    c = fsk_burst(etsi_message(number="0698765432", corrupt_checksum=True), "bell202")
    x = embed(0.37, a, 0.61, b, 0.2, c[: len(c) * 9 // 10], 0.8, c, 0.3)
    x = with_noise(x, b, 20.0, rng)
    reference = decode(x, chunk=len(x))
    assert [(m.number, m.checksum_ok) for m in reference] == [
        ("0612345678", True), ("2125551234", True), (None, False), (None, False)]
    for chunk in (1, 7, 160, 800):
        assert [asdict(m) for m in decode(x, chunk=chunk)] == [asdict(m) for m in reference]


def test_forced_standard_uses_one_receiver_and_its_label() -> None:
    msg = sdmf_message(number="2125551234", datetime=DT)
    x = embed(0.2, fsk_burst(msg, "bell202"), 0.3)
    assert [m.standard for m in decode(x, standard="bell202")] == ["bell202"]
    # The V.23 receiver alone also reads a Bell burst (tones 100 Hz apart) and says V.23.
    assert [m.standard for m in decode(x, standard="etsi-v23")] == ["etsi-v23"]
    with pytest.raises(ValueError):
        CallerIdDecoder("dtmf")


def test_messages_come_out_soon_after_the_burst() -> None:
    msg = etsi_message(number="0612345678")
    burst = fsk_burst(msg, "etsi-v23")
    dec = CallerIdDecoder()
    x = embed(0.2, burst, 1.0)
    end = 0.2 + len(burst) / 8000
    got_at = None
    for a in range(0, len(x), 800):
        if dec.feed(x[a : a + 800]):
            got_at = (a + 800) / 8000
            break
    assert got_at is not None and got_at - end < 0.5


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    from test_callerid_signals import SPEECH_FR, speech_corpus

    return speech_corpus(tmp_path_factory.mktemp("cid_speech"), [("fr", SPEECH_FR, [])])
