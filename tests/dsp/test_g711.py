"""G.711 against a straightforward scalar port of the reference C (Sun g711.c / ITU-T G.191),
written here independently of the vectorised tables in `callrec.dsp.g711`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from callrec.dsp.g711 import (
    ALAW_DECODE,
    ULAW_DECODE,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

# -- reference: line-by-line ports of the C functions -------------------------------------

SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
BIAS = 0x84
CLIP = 8159


def search(val: int, table: list[int]) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def linear2ulaw(pcm_val: int) -> int:
    pcm_val = pcm_val >> 2  # Python's >> on negatives is arithmetic, like the reference
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm_val > CLIP:
        pcm_val = CLIP
    pcm_val += BIAS >> 2
    seg = search(pcm_val, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    uval = (seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)
    return uval ^ mask


def ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & 0x0F) << 3) + BIAS
    t <<= (u_val & 0x70) >> 4
    return BIAS - t if u_val & 0x80 else t - BIAS


def linear2alaw(pcm_val: int) -> int:
    pcm_val = pcm_val >> 3
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = search(pcm_val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    if seg < 2:
        aval |= (pcm_val >> 1) & 0xF
    else:
        aval |= (pcm_val >> seg) & 0xF
    return aval ^ mask


def alaw2linear(a_val: int) -> int:
    a_val ^= 0x55
    t = (a_val & 0x0F) << 4
    seg = (a_val & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if a_val & 0x80 else -t


ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)

# -- decoding ---------------------------------------------------------------------------


def test_ulaw_decode_table_is_the_reference() -> None:
    assert ulaw_decode(ALL_CODES).tolist() == [ulaw2linear(c) for c in range(256)]


def test_alaw_decode_table_is_the_reference() -> None:
    assert alaw_decode(ALL_CODES).tolist() == [alaw2linear(c) for c in range(256)]


@pytest.mark.parametrize(("code", "value"), [
    (0x00, -32124), (0x01, -31100), (0x0F, -16764), (0x10, -15996), (0x7E, -8), (0x7F, 0),
    (0x80, 32124), (0x8F, 16764), (0xFE, 8), (0xFF, 0),
])
def test_ulaw_standard_values(code: int, value: int) -> None:
    assert int(ULAW_DECODE[code]) == value


@pytest.mark.parametrize(("code", "value"), [
    (0xD5, 8), (0x55, -8), (0x2A, -32256), (0xAA, 32256), (0x00, -5504), (0x01, -5248),
    (0x80, 5504), (0xD4, 24), (0x54, -24),
])
def test_alaw_standard_values(code: int, value: int) -> None:
    assert int(ALAW_DECODE[code]) == value


def test_decode_takes_bytes_and_keeps_shapes() -> None:
    assert ulaw_decode(b"\x00\xff\x80").tolist() == [-32124, 0, 32124]
    assert alaw_decode(bytearray(b"\xd5\x55")).tolist() == [8, -8]
    assert ulaw_decode(ALL_CODES.reshape(16, 16)).shape == (16, 16)
    assert ulaw_decode(ALL_CODES).dtype == np.int16 and alaw_decode(ALL_CODES).dtype == np.int16


# -- encoding ---------------------------------------------------------------------------


def test_ulaw_encode_of_every_sample_is_the_reference() -> None:
    reference = np.array([linear2ulaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
    np.testing.assert_array_equal(ulaw_encode(ALL_SAMPLES), reference)


def test_alaw_encode_of_every_sample_is_the_reference() -> None:
    reference = np.array([linear2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
    np.testing.assert_array_equal(alaw_encode(ALL_SAMPLES), reference)


def test_encode_types() -> None:
    assert ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)).tolist() == [
        0xFF, 0x7E, 0x80, 0x00]
    assert alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)).tolist() == [
        0xD5, 0x55, 0xAA, 0x2A]
    assert ulaw_encode([1000, -1000]).dtype == np.uint8  # integer lists in range are fine
    assert alaw_encode(ALL_SAMPLES[::-7]).tolist() == alaw_encode(ALL_SAMPLES[::-7].copy()).tolist()
    with pytest.raises(TypeError):
        ulaw_encode(np.array([0.5]))
    with pytest.raises(TypeError):
        alaw_encode(np.array([40000]))
    with pytest.raises(TypeError):
        ulaw_decode(np.array([256]))


# -- round trips ------------------------------------------------------------------------


def test_alaw_decode_then_encode_gives_every_code_back() -> None:
    np.testing.assert_array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_ulaw_decode_then_encode_gives_every_code_back_but_minus_zero() -> None:
    """µ-law has two zeros: 0xFF (+0) and 0x7F (−0). Both decode to 0, which encodes as
    0xFF: the only code that does not come back."""
    again = ulaw_encode(ulaw_decode(ALL_CODES))
    assert np.flatnonzero(again != ALL_CODES).tolist() == [0x7F]
    assert int(again[0x7F]) == 0xFF


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode),
                                                (alaw_encode, alaw_decode)])
def test_encode_then_decode_is_a_monotonic_quantiser(
    encode: Callable[[npt.ArrayLike], npt.NDArray[np.uint8]],
    decode: Callable[[npt.ArrayLike], npt.NDArray[np.int16]],
) -> None:
    y = decode(encode(ALL_SAMPLES)).astype(np.int64)
    assert np.all(np.diff(y) >= 0)
    # Error within half a step of the coarsest segment (1024 for µ-law's top, A-law's too).
    assert np.abs(y - ALL_SAMPLES).max() <= 1024 + 132
    # Quantising a quantised value changes nothing.
    np.testing.assert_array_equal(decode(encode(y.astype(np.int16))), y)
