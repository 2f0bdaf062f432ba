"""ITU-T G.711 µ-law and A-law, vectorised, bit-exact with the reference algorithms.

The reference is the classic Sun Microsystems g711.c as revised for ITU-T G.191 (the STL):
  - µ-law takes the top 14 bits of a 16-bit sample (x >> 2), clips the magnitude to 8159,
    adds the bias 33 (0x84 >> 2), finds the segment (8 of them, each twice as wide as the
    one before) and keeps 4 mantissa bits; the code is sent inverted (0xFF for +0).
  - A-law takes the top 13 bits (x >> 3), uses |x| − 1 for negative values, finds the
    segment and keeps 4 mantissa bits; even bits are inverted (XOR 0x55), the sign bit set
    for positive values.
Decoding gives the middle of each quantisation interval, in the 16-bit range:
µ-law 0x00 → −32124, 0x80 → 32124, 0xFF and 0x7F → 0; A-law 0xD5 → 8, 0x55 → −8,
0x2A → −32256, 0xAA → 32256.

Both laws are computed once as tables at import (numpy, no loops): 256 entries to decode,
65536 to encode, so coding any array is a single indexing operation. Decode → encode gives
back every code, except µ-law's two zeros: 0x7F ("−0") decodes to 0, which encodes as 0xFF
("+0"). Encode → decode is the G.711 quantiser (lossy, by design).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
CodeArray = npt.NDArray[np.uint8]

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_BIAS = 0x84  # 132, in the 16-bit domain (33 in the 14-bit one)
_ULAW_CLIP = 8159  # largest 14-bit magnitude before the bias


def _ulaw_decode_table() -> Int16Array:
    u = ~np.arange(256, dtype=np.int64) & 0xFF  # codes are sent inverted
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _alaw_decode_table() -> Int16Array:
    a = np.arange(256, dtype=np.int64) ^ 0x55  # even bits are sent inverted
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    # Segment 0 is linear (step 16 around 8); segment s ≥ 1 starts at 256·2^(s−1).
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _ulaw_encode_table() -> CodeArray:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 2  # 14-bit, arithmetic shift
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag)  # first segment whose end ≥ mag
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> CodeArray:
    pcm = np.arange(-32768, 32768, dtype=np.int64) >> 3  # 13-bit, arithmetic shift
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag)
    mantissa = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


ULAW_DECODE: Int16Array = _ulaw_decode_table()
ALAW_DECODE: Int16Array = _alaw_decode_table()
# Indexed by the sample's bit pattern as uint16 (0 … 65535), i.e. int16 value mod 65536.
_ULAW_ENCODE = np.roll(_ulaw_encode_table(), -32768)
_ALAW_ENCODE = np.roll(_alaw_encode_table(), -32768)


def _as_int16(samples: npt.ArrayLike) -> Int16Array:
    a = np.asarray(samples)
    if a.dtype == np.int16:
        return a
    if a.dtype.kind not in "iu" or (a.size and (a.min() < -32768 or a.max() > 32767)):
        raise TypeError("G.711 encodes 16-bit PCM: int16 samples expected")
    return a.astype(np.int16)


def _as_codes(codes: npt.ArrayLike | bytes) -> CodeArray:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    a = np.asarray(codes)
    if a.dtype != np.uint8:
        if a.dtype.kind not in "iu" or (a.size and (a.min() < 0 or a.max() > 255)):
            raise TypeError("G.711 codes are bytes: uint8 values expected")
        a = a.astype(np.uint8)
    return a


def ulaw_encode(samples: npt.ArrayLike) -> CodeArray:
    """16-bit PCM (int16, any shape) → µ-law codes (uint8, same shape)."""
    return _ULAW_ENCODE[_as_int16(samples).view(np.uint16)]


def ulaw_decode(codes: npt.ArrayLike | bytes) -> Int16Array:
    """µ-law codes (uint8 array or bytes) → 16-bit PCM (int16)."""
    return ULAW_DECODE[_as_codes(codes)]


def alaw_encode(samples: npt.ArrayLike) -> CodeArray:
    """16-bit PCM (int16, any shape) → A-law codes (uint8, same shape)."""
    return _ALAW_ENCODE[_as_int16(samples).view(np.uint16)]


def alaw_decode(codes: npt.ArrayLike | bytes) -> Int16Array:
    """A-law codes (uint8 array or bytes) → 16-bit PCM (int16)."""
    return ALAW_DECODE[_as_codes(codes)]
