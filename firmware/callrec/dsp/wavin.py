"""Read any common WAV file as float32 mono 8 kHz samples (the DSP modules' input format).

Accepted: PCM 8-bit unsigned, 16, 24 and 32-bit signed; IEEE float 32/64-bit; G.711 A-law
and µ-law (format codes 6 and 7, common for telephone recordings); WAVE_FORMAT_EXTENSIBLE
wrapping PCM or float; any number of channels; any sample rate (resampled, `resample.py`).

Channels are mixed down (their mean) rather than taking the left one: a recorded stereo call
often has one party per channel, and mixing keeps both (and cannot clip).

The stdlib `wave` module reads plain PCM (format 1); a small RIFF chunk parser handles what
`wave` rejects in Python 3.11 (float, G.711, WAVE_FORMAT_EXTENSIBLE). Anything wrong raises
`WavError` (a ValueError) naming the file and the problem: missing, unreadable, not a WAV
file, unsupported encoding, or truncated (the data chunk claims more than the file holds).
A file whose data size was never patched (0 or the 0xFFFFFFFF streaming placeholder, with
audio after it: a recorder that died mid-call) is read to the end of the file.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callrec.dsp.g711 import ALAW_DECODE, ULAW_DECODE
from callrec.dsp.resample import resample
from callrec.dsp.signal import RATE, Samples

PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"  # KSDATAFORMAT_*


class WavError(ValueError):
    """A WAV file that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class _Wav:
    fmt: int  # PCM, FLOAT, ALAW or MULAW (the sub-format for WAVE_FORMAT_EXTENSIBLE)
    plain_pcm: bool  # format code 1 with a finalised header: the stdlib reader can read it
    rate: int
    channels: int
    bits: int
    data: bytes


def read_wav(path: str | Path) -> tuple[Samples, float]:
    """The file's audio as float32 mono 8 kHz samples, and its duration in seconds."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise WavError(p, "no such file") from None
    except IsADirectoryError:
        raise WavError(p, "is a directory, not a WAV file") from None
    except OSError as exc:
        raise WavError(p, f"cannot read ({exc.strerror or exc})") from None
    wav = _parse(p, raw)
    data = _pcm_via_wave(p, raw, wav) if wav.plain_pcm else wav.data
    frames = _decode(wav.fmt, wav.bits, data)
    if wav.channels > 1:
        frames = frames.reshape(-1, wav.channels).mean(axis=1, dtype=np.float64)
    mono = np.asarray(frames, dtype=np.float32)
    duration = mono.size / wav.rate
    return (resample(mono, wav.rate, RATE) if wav.rate != RATE else mono), duration


def _parse(path: Path, raw: bytes) -> _Wav:
    """Walk the RIFF chunks up to the data chunk."""
    if len(raw) < 12:
        raise WavError(path, f"not a WAV file ({len(raw)} bytes, too short for a RIFF header)")
    if raw[:4] in (b"RF64", b"BW64"):
        raise WavError(path, "RF64/BW64 (WAV over 4 GB) is not supported")
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError(path, "not a WAV file (no RIFF/WAVE header)")
    fmt_chunk: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = pos + 8
        if cid == b"data":
            if fmt_chunk is None:
                raise WavError(path, "data chunk before any fmt chunk")
            code, fmt, rate, channels, bits, align = _fmt(path, fmt_chunk)
            # A recorder that died before patching its header leaves 0 (or the streaming
            # placeholder 0xFFFFFFFF) with the audio after it: read to the end of the file.
            unfinished = size == 0xFFFFFFFF or (
                size == 0 and len(raw) > body and not _chunk_at(raw, body))
            if unfinished:
                size = len(raw) - body
                size -= size % align
            elif body + size > len(raw):
                have = (len(raw) - body) // align
                raise WavError(path, f"truncated: the data chunk announces {size // align} "
                                     f"frames, the file holds {have}")
            if size % align:
                raise WavError(path, f"data size {size} is not a whole number of "
                                     f"{align}-byte frames")
            return _Wav(fmt, code == PCM and not unfinished, rate, channels, bits,
                        raw[body:body + size])
        if cid == b"fmt ":
            fmt_chunk = raw[body:body + size]
            if len(fmt_chunk) < size:
                raise WavError(path, "truncated inside the fmt chunk")
        pos = body + size + (size & 1)  # chunks are padded to an even size
    if fmt_chunk is None:
        raise WavError(path, "no fmt chunk (not a WAV file, or truncated header)")
    raise WavError(path, "no data chunk (truncated, or not finalised)")


def _chunk_at(raw: bytes, pos: int) -> bool:
    """Does a plausible chunk header (4 printable ASCII characters, a size that fits) start at
    `pos`? Tells a genuinely empty data chunk followed by other chunks from audio."""
    cid = raw[pos:pos + 4]
    if len(raw) < pos + 8 or not all(32 <= c < 127 for c in cid):
        return False
    return pos + 8 + struct.unpack_from("<I", raw, pos + 4)[0] <= len(raw)


def _fmt(path: Path, chunk: bytes) -> tuple[int, int, int, int, int, int]:
    """(format code, sample format, rate, channels, bits per sample, block align)."""
    if len(chunk) < 16:
        raise WavError(path, f"fmt chunk too short ({len(chunk)} bytes)")
    code, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", chunk)
    fmt = code
    if code == EXTENSIBLE:
        if len(chunk) < 40 or chunk[26:40] != _GUID_TAIL:
            raise WavError(path, "WAVE_FORMAT_EXTENSIBLE with an unknown sub-format")
        fmt = struct.unpack_from("<H", chunk, 24)[0]
    if channels < 1:
        raise WavError(path, "no channels")
    if rate < 1:
        raise WavError(path, f"invalid sample rate {rate}")
    supported = {PCM: (8, 16, 24, 32), FLOAT: (32, 64), ALAW: (8,), MULAW: (8,)}
    if fmt not in supported:
        raise WavError(path, f"unsupported encoding (format code {fmt:#06x}); PCM, float, "
                             "A-law and µ-law are")
    if bits not in supported[fmt]:
        raise WavError(path, f"unsupported sample size: {bits}-bit "
                             f"{'float' if fmt == FLOAT else 'PCM'}")
    if align != channels * bits // 8:
        raise WavError(path, f"inconsistent block align {align} for {channels} x {bits} bits")
    return code, fmt, rate, channels, bits, align


def _pcm_via_wave(path: Path, raw: bytes, wav: _Wav) -> bytes:
    """Plain PCM through the stdlib reader (which checks the header its own way too)."""
    try:
        with wave.open(io.BytesIO(raw), "rb") as w:
            if (w.getsampwidth() * 8, w.getnchannels()) != (wav.bits, wav.channels):
                raise WavError(path, "inconsistent fmt chunk")
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error) as exc:
        raise WavError(path, f"unreadable WAV ({exc})") from None
    if len(data) != len(wav.data):
        raise WavError(path, f"the stdlib reader found {len(data)} bytes of audio, "
                             f"the chunk walk {len(wav.data)}")
    return data


def _decode(fmt: int, bits: int, data: bytes) -> npt.NDArray[np.float32]:
    """Interleaved samples as float32, full scale ±1."""
    if fmt == FLOAT:
        return np.frombuffer(data, "<f4" if bits == 32 else "<f8").astype(np.float32)
    if fmt in (ALAW, MULAW):
        return (_ALAW if fmt == ALAW else _MULAW)[np.frombuffer(data, np.uint8)]
    if bits == 8:  # unsigned, 128 = zero
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    if bits == 16:
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    if bits == 24:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return (v / float(1 << 23)).astype(np.float32)
    return (np.frombuffer(data, "<i4") / float(1 << 31)).astype(np.float32)


# G.711 files expand through the codec's own tables (bit-exact with ITU-T G.191).
_ALAW = (ALAW_DECODE / 32768.0).astype(np.float32)
_MULAW = (ULAW_DECODE / 32768.0).astype(np.float32)
