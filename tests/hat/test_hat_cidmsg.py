"""Caller-ID messages from the demodulator chip's byte stream (SDMF / MDMF)."""

from __future__ import annotations

from callrec_mcu.cidmsg import MDMF, SDMF, CidDecoder

SEIZURE = b"\x55" * 30


def message(kind: int, body: bytes) -> bytes:
    data = bytes([kind, len(body)]) + body
    return data + bytes([-sum(data) & 0xFF])


def mdmf(number: bytes | None, name: bytes | None, reason: bytes | None = None) -> bytes:
    body = b"\x01\x0811281505"
    if number is not None:
        body += bytes([0x02, len(number)]) + number
    if reason is not None:
        body += bytes([0x04, 1]) + reason
    if name is not None:
        body += bytes([0x07, len(name)]) + name
    return message(MDMF, body)


def test_mdmf_with_seizure_in_pieces() -> None:
    stream = SEIZURE + mdmf(b"0123456789", b"DUPONT JEAN")
    decoder = CidDecoder()
    results = [decoder.feed(stream[i : i + 3]) for i in range(0, len(stream), 3)]
    assert [r for r in results if r] == [("0123456789", "DUPONT JEAN")]


def test_sdmf_and_private_numbers() -> None:
    decoder = CidDecoder()
    assert decoder.feed(message(SDMF, b"11281505" + b"5551234")) == ("5551234", "")
    assert decoder.feed(message(SDMF, b"11281505P")) == ("", "")
    assert decoder.feed(mdmf(None, None, reason=b"P")) == ("", "")


def test_bad_checksum_is_dropped() -> None:
    decoder = CidDecoder()
    bad = bytearray(mdmf(b"0123", b"X"))
    bad[5] ^= 0x01
    assert decoder.feed(bytes(bad)) is None
    assert decoder.bad_checksum >= 1
    assert decoder.feed(mdmf(b"0123", b"X")) == ("0123", "X")


def test_noise_claiming_a_long_message_does_not_block_the_next() -> None:
    decoder = CidDecoder()
    assert decoder.feed(b"\x80\xf0\x12") is None  # a lost start: 240 bytes that never come
    assert decoder.feed(SEIZURE + mdmf(b"0612345678", b"MARTIN")) == ("0612345678", "MARTIN")


def test_non_printable_characters_are_dropped() -> None:
    assert CidDecoder().feed(mdmf(b"01\x0023", b"Zo\xebe")) == ("0123", "Zoe")
