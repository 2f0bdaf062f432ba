"""Caller-ID signal generators: message bytes (SDMF, MDMF, ETSI) and FSK bursts.

Used by the tests, the benchmark and the line simulator. Message layouts:
- ETSI EN 300 659-3 §5: message type (0x80 call set-up, 0x82 message waiting...), message
  length, parameters as (type, length, value), checksum.
- Telcordia GR-30-CORE: SDMF 0x04 = length, "MMDDhhmm", number (or "O"/"P"), checksum; MDMF
  0x80 = parameters like ETSI.
- Checksum (both): two's complement of the modulo-256 sum of every preceding byte, so that
  a correct message sums to zero.
"""

from __future__ import annotations

import math

import numpy as np

from .callerid_types import MSG_CALL_SETUP, MSG_MWI, MSG_SDMF
from .fsk import SPECS
from .signal import RATE, Samples, dbm0_to_peak

# Parameter types (ETSI EN 300 659-3 §5.4 table; Telcordia GR-30-CORE uses the same codes).
P_DATETIME = 0x01
P_NUMBER = 0x02
P_CALLED = 0x03
P_ABSENCE = 0x04
P_NAME = 0x07
P_NAME_ABSENCE = 0x08
P_VISUAL_INDICATOR = 0x0B
P_CALL_TYPE = 0x11


def checksum(body: bytes) -> int:
    """Two's complement of the modulo-256 sum of `body`."""
    return (-sum(body)) & 0xFF


def build_message(msg_type: int, payload: bytes, corrupt_checksum: bool = False) -> bytes:
    """Type, length, payload and checksum (optionally wrong, for tests)."""
    if len(payload) > 255:
        raise ValueError("caller-ID payload longer than 255 bytes")
    body = bytes([msg_type, len(payload)]) + payload
    cs = checksum(body)
    if corrupt_checksum:
        cs ^= 0x5A
    return body + bytes([cs])


def _param(code: int, value: str | bytes) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if len(raw) > 255:
        raise ValueError(f"parameter 0x{code:02x} too long")
    return bytes([code, len(raw)]) + raw


def _mdmf_payload(
    number: str | None,
    name: str | None,
    datetime: str | None,
    absence: str | None,
    name_absence: str | None,
) -> bytes:
    payload = b""
    if datetime is not None:
        payload += _param(P_DATETIME, datetime)
    if number is not None:
        payload += _param(P_NUMBER, number)
    if absence is not None:
        payload += _param(P_ABSENCE, absence)
    if name is not None:
        payload += _param(P_NAME, name)
    if name_absence is not None:
        payload += _param(P_NAME_ABSENCE, name_absence)
    return payload


def etsi_message(
    number: str | None = None,
    name: str | None = None,
    datetime: str | None = None,
    absence: str | None = None,
    name_absence: str | None = None,
    *,
    called: str | None = None,
    call_type: int | None = None,
    corrupt_checksum: bool = False,
) -> bytes:
    """ETSI EN 300 659-3 call set-up message (type 0x80) with checksum."""
    payload = _mdmf_payload(number, name, datetime, absence, name_absence)
    if called is not None:
        payload += _param(P_CALLED, called)
    if call_type is not None:
        payload += _param(P_CALL_TYPE, bytes([call_type]))
    return build_message(MSG_CALL_SETUP, payload, corrupt_checksum)


def mdmf_message(
    number: str | None = None,
    name: str | None = None,
    datetime: str | None = None,
    absence: str | None = None,
    name_absence: str | None = None,
    *,
    corrupt_checksum: bool = False,
) -> bytes:
    """Telcordia MDMF (type 0x80) with checksum."""
    payload = _mdmf_payload(number, name, datetime, absence, name_absence)
    return build_message(MSG_CALL_SETUP, payload, corrupt_checksum)


def sdmf_message(
    number: str | None = None,
    datetime: str = "01010000",
    absence: str | None = None,
    *,
    corrupt_checksum: bool = False,
) -> bytes:
    """Telcordia SDMF (type 0x04): "MMDDhhmm" then the number, or "O"/"P" when absent."""
    if len(datetime) != 8:
        raise ValueError("SDMF date-time is exactly 8 characters MMDDhhmm")
    tail = number if number is not None else (absence or "O")
    return build_message(MSG_SDMF, (datetime + tail).encode("latin-1"), corrupt_checksum)


def mwi_message(active: bool = True, *, corrupt_checksum: bool = False) -> bytes:
    """ETSI message-waiting indication (type 0x82) with a visual indicator parameter."""
    payload = _param(P_VISUAL_INDICATOR, bytes([0xFF if active else 0x00]))
    return build_message(MSG_MWI, payload, corrupt_checksum)


def message_bits(
    message: bytes,
    seizure_bits: int = 300,
    mark_bits: int = 180,
    marks_between_bytes: int = 0,
    end_mark_bits: int = 5,
) -> list[int]:
    """Line bits of a burst: channel seizure 0101..., mark period, async characters."""
    bits = [i & 1 for i in range(seizure_bits)]
    bits += [1] * mark_bits
    for k, byte in enumerate(message):
        if k and marks_between_bytes:
            bits += [1] * marks_between_bytes
        bits.append(0)  # start bit
        bits += [(byte >> i) & 1 for i in range(8)]  # data, LSB first
        bits.append(1)  # stop bit
    bits += [1] * end_mark_bits
    return bits


def fsk_burst(
    message: bytes,
    standard: str,
    level_dbm0: float = -12.0,
    seizure_bits: int = 300,
    mark_bits: int = 180,
    rate: int = RATE,
    freq_error: float = 0.0,
    baud_error: float = 0.0,
    *,
    twist_db: float = 0.0,
    marks_between_bytes: int = 0,
    end_mark_bits: int = 5,
    phase: float = 0.0,
) -> Samples:
    """Phase-continuous FSK burst carrying `message` ("etsi-v23" or "bell202").

    `freq_error` and `baud_error` are fractions (0.01 = +1 %) applied to both tones and to the
    bit rate; the mark is sent at `level_dbm0` and the space `twist_db` higher.
    """
    spec = SPECS[standard]
    bits = np.array(
        message_bits(message, seizure_bits, mark_bits, marks_between_bytes, end_mark_bits),
        dtype=np.int64,
    )
    spb = rate / (spec.baud * (1.0 + baud_error))
    n = math.ceil(len(bits) * spb)
    which = np.minimum((np.arange(n) / spb).astype(np.int64), len(bits) - 1)
    line = bits[which]
    freq = np.where(line == 1, spec.mark_hz, spec.space_hz) * (1.0 + freq_error)
    amp_mark = dbm0_to_peak(level_dbm0)
    amp_space = dbm0_to_peak(level_dbm0 + twist_db)
    amp = np.where(line == 1, amp_mark, amp_space)
    ph = phase + 2 * np.pi * np.concatenate(([0.0], np.cumsum(freq[:-1]))) / rate
    return (amp * np.sin(ph)).astype(np.float32)
