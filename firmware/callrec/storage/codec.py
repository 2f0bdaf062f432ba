"""Storage formats for finished recordings: lossless (FLAC), compact (Ogg/Opus with DTX), WAV.

Capture always writes WAV (`wavstream`); `transcode_recording` converts a finished recording
after hang-up, atomically (temporary file, fsync, rename, directory fsync).

Compact mode is libsndfile's Ogg/Opus (via `soundfile`) plus our own discontinuous
transmission (DTX). libsndfile exposes only `compression_level` (a bitrate: 1.0 ≈ 6 kbit/s,
0.99 ≈ 8.5 kbit/s; `bitrate_mode` is refused for Opus by libsndfile 1.2.2) and no DTX, and
its SILK encoder still spends 6-9 bytes on every 20 ms frame of a pause. So:

1. the call is encoded as is (line noise included) at `COMPACT_LEVEL`;
2. a voice-activity detector (frame energy against the call's own noise floor, with
   pre-roll and hangover) marks the pauses;
3. in the Ogg stream, every packet that lies wholly inside a pause is replaced by a 1-byte
   Opus packet (TOC only, a zero-length frame of the same duration): exactly what libopus's
   own DTX emits. Decoders (libopus: Chromium, Firefox, libsndfile) conceal such frames with
   comfort noise shaped like the preceding background, so the file keeps its exact duration
   and plays in real time; a short real packet is kept every `DTX_REFRESH_FRAMES` frames so
   the comfort noise follows the line's background, as Opus DTX does.

The speech itself is never altered, only the pauses are stored as comfort-noise frames.
`bench/codec.py` (real speech, telephone channel, ~45 % pauses): plain Opus at 0.995 gives
342 h/GB at PESQ-NB 3.85; with DTX 456 h/GB at 3.81 (goal: >= 400 h/GB at >= 3.5).

Two-channel recordings (a SIP call: 0 = the office side, 1 = the remote party) are stored as
one Ogg/Opus stream of two mono Opus streams (channel mapping family 1, stereo layout, two
uncoupled streams; RFC 7845 §5.1.1), each encoded and DTX'd as a mono call, not as libopus's
coupled stereo: at `COMPACT_LEVEL` libopus folds a coupled stereo signal to mono (its
stereo needs ~16 kbit/s), which would mix the two parties, and even when it keeps stereo
its DTX can drop only frames where both parties are silent, whereas in a conversation each
side is silent about half the time. Each stream keeps its own noise floor and pauses.
`bench/codec.py`: 229-243 h/GB at PESQ-NB 3.75-3.81 per channel (two independent sides,
seeds 1-3); libopus's coupled stereo at 0.99 (the least that stays stereo) with DTX on
frames where both sides pause gave 152 h/GB where this gave 275 (tests' speech call).
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from callrec.storage.atomic_json import write_atomic

Mode = Literal["compact", "lossless", "wav"]
Source = str | os.PathLike[str] | bytes | npt.NDArray[np.generic]

RATE = 8000
COMPACT_LEVEL = 0.995  # libsndfile Opus compression_level (bitrate) for speech frames
FRAME_MS = 20  # libsndfile's Opus frame duration
VAD_MARGIN_DB = 9.0  # a frame is speech when this far above the call's noise floor
VAD_FLOOR_DBFS = -70.0  # never call anything quieter than this speech
VAD_PREROLL_MS = 60  # speech starts this much before the first loud frame
VAD_HANGOVER_MS = 240  # and ends this much after the last one
DTX_MIN_FRAMES = 3  # shorter pauses are coded normally
DTX_REFRESH_FRAMES = 20  # keep one real packet every 400 ms of pause (background update)

SUFFIX: dict[str, str] = {"compact": ".opus", "lossless": ".flac", "wav": ".wav"}
MIME: dict[str, str] = {"compact": "audio/ogg; codecs=opus", "lossless": "audio/flac",
                        "wav": "audio/wav"}


def hours_per_gb(nbytes: int, seconds: float) -> float:
    """Hours of audio per 10^9 bytes at the rate of `nbytes` for `seconds` of audio."""
    if nbytes <= 0:
        raise ValueError("nbytes must be positive")
    return 1e9 / (nbytes / seconds) / 3600.0


def _sf() -> Any:
    import soundfile  # optional at import time: only the transcoder needs libsndfile

    return soundfile


def load_frames(src: Source, rate: int = RATE, channels: int = 1
                ) -> tuple[npt.NDArray[np.int16], int]:
    """16-bit frames, shape (samples, channels), and rate: from a path (the file's own
    channels), interleaved PCM16 bytes or an array (1-D: interleaved) of `channels`."""
    if isinstance(src, (str, os.PathLike)):
        data, file_rate = _sf().read(os.fspath(src), dtype="int16", always_2d=True)
        return np.ascontiguousarray(data), int(file_rate)
    if channels == 1:
        pcm, rate = load_pcm(src, rate)
        return pcm.reshape(-1, 1), rate
    if isinstance(src, bytes):
        arr = np.frombuffer(src, dtype="<i2").astype(np.int16)
    else:
        arr = np.asarray(src)
        if arr.dtype.kind == "f":
            arr = np.round(np.clip(arr.astype(np.float64), -1.0, 32767 / 32768) * 32768.0)
        arr = arr.astype(np.int16)
    return arr.reshape(-1, channels), rate


def load_pcm(src: Source, rate: int = RATE) -> tuple[npt.NDArray[np.int16], int]:
    """Mono 16-bit samples and rate from a path (any libsndfile format), PCM16 bytes or array."""
    if isinstance(src, (str, os.PathLike)):
        data, file_rate = _sf().read(os.fspath(src), dtype="int16", always_2d=True)
        return np.ascontiguousarray(data[:, 0]), int(file_rate)
    if isinstance(src, bytes):
        return np.frombuffer(src, dtype="<i2").astype(np.int16), rate
    arr = np.asarray(src).reshape(-1)
    if arr.dtype.kind == "f":
        arr = np.round(np.clip(arr.astype(np.float64), -1.0, 32767 / 32768) * 32768.0)
    return arr.astype(np.int16), rate


# --- voice activity -------------------------------------------------------------------------


def frame_energies_db(pcm: npt.NDArray[np.int16], rate: int = RATE) -> npt.NDArray[np.float64]:
    """Mean power (dBFS) of each whole `FRAME_MS` frame of `pcm` (a trailing part is ignored)."""
    frame = rate * FRAME_MS // 1000
    n = pcm.size // frame
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)


def speech_frames(energy_db: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Per frame: True where speech (with pre-roll and hangover) may be present, judged
    against the call's own noise floor (its 10th percentile of frame energy)."""
    n = energy_db.size
    if n < 4:
        return np.ones(n, dtype=bool)
    floor = float(np.percentile(energy_db, 10))
    loud = energy_db > max(floor + VAD_MARGIN_DB, VAD_FLOOR_DBFS)
    active = loud.copy()
    for k in range(1, -(-VAD_HANGOVER_MS // FRAME_MS) + 1):
        active[k:] |= loud[:-k]
    for k in range(1, -(-VAD_PREROLL_MS // FRAME_MS) + 1):
        active[:-k] |= loud[k:]
    return active


def speech_mask(pcm: npt.NDArray[np.int16], rate: int = RATE) -> npt.NDArray[np.bool_]:
    """Per-sample True where speech (with pre-roll and hangover) may be present."""
    frame = rate * FRAME_MS // 1000
    active = speech_frames(frame_energies_db(pcm, rate))
    mask = np.ones(pcm.size, dtype=bool)  # a trailing partial frame counts as speech
    mask[: active.size * frame] = np.repeat(active, frame)
    return mask


# --- Ogg ------------------------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ b]
    return crc


def ogg_packets(data: bytes) -> tuple[list[bytes], list[int], int]:
    """(packets, granule position of the page each packet completes on, stream serial).

    For Opus written by libsndfile, a page's granule is the running total of its packets'
    48 kHz samples (pre-skip included), the last page's less any end trimming."""
    packets: list[bytes] = []
    granules: list[int] = []
    cur = bytearray()
    pos = 0
    serial = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        granule, serial = struct.unpack_from("<qI", data, pos + 6)
        nseg = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + nseg]
        body = pos + 27 + nseg
        for lace in lacing:
            cur += data[body : body + lace]
            body += lace
            if lace < 255:
                packets.append(bytes(cur))
                granules.append(granule)
                cur = bytearray()
        pos = body
    return packets, granules, serial


def _page(serial: int, seq: int, granule: int, flags: int, packets: list[bytes]) -> bytes:
    lacing = bytearray()
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    header = bytearray(b"OggS\x00" + bytes([flags]) + struct.pack("<qIII", granule, serial, seq, 0))
    header += bytes([len(lacing)]) + lacing
    page = header + b"".join(packets)
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


def ogg_write(packets: list[bytes], granules: list[int], serial: int, header_packets: int = 2,
              max_packets: int = 50) -> bytes:
    """Ogg/Opus stream: headers on their own pages, then pages of up to `max_packets`."""
    out = [_page(serial, 0, 0, 0x02, [packets[0]])]
    for p in packets[1:header_packets]:
        out.append(_page(serial, len(out), 0, 0, [p]))
    audio = list(range(header_packets, len(packets)))
    for start in range(0, len(audio), max_packets):
        idx = audio[start : start + max_packets]
        last = start + max_packets >= len(audio)
        out.append(_page(serial, len(out), granules[idx[-1]], 0x04 if last else 0,
                         [packets[i] for i in idx]))
    return b"".join(out)


# --- Opus -----------------------------------------------------------------------------------

_FRAME_48K = (480, 960, 1920, 2880)  # SILK/hybrid frame sizes by config % 4 (10..60 ms)


def opus_samples_48k(packet: bytes) -> int:
    """Duration of an Opus packet at 48 kHz (RFC 6716 §3.1)."""
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        per_frame = _FRAME_48K[config % 4]
    elif config < 16:
        per_frame = 480 if config % 2 == 0 else 960
    else:
        per_frame = (120, 240, 480, 960)[config % 4]
    code = toc & 3
    frames = 1 if code == 0 else 2 if code in (1, 2) else packet[1] & 0x3F
    return per_frame * frames


def opus_dtx(ogg: bytes, active: npt.NDArray[np.bool_], rate: int = RATE,
             refresh: int = DTX_REFRESH_FRAMES) -> bytes:
    """Replace the packets of an Ogg/Opus stream that lie inside pauses by 1-byte zero-length
    Opus frames (DTX). `active`: per `FRAME_MS` frame of the input, False in a pause (frames
    past its end count as speech). The stream's duration and granules are unchanged."""
    packets, granules, serial = ogg_packets(ogg)
    if len(packets) < 3 or not packets[0].startswith(b"OpusHead"):
        raise ValueError("not an Ogg/Opus stream")
    preskip = struct.unpack_from("<H", packets[0], 10)[0]
    scale = 48000 // rate
    frame = rate * FRAME_MS // 1000
    margin = frame  # one frame either side: the encoder's look-ahead
    # Prefix sums of speech frames, so "any speech in [a, b)" is O(1) per packet.
    speech = np.concatenate(([0], np.cumsum(active.astype(np.int64))))
    n = active.size * frame
    pos48 = 0
    run = 0
    out = packets[:2]
    ends = granules[:2]
    for p in packets[2:]:
        dur = opus_samples_48k(p)
        a = max(0, (pos48 - preskip) // scale - margin)
        b = (pos48 + dur - preskip) // scale + margin
        pos48 += dur
        ends.append(pos48)
        # Past the last whole frame (the call's end, the encoder's padding): not a pause.
        pause = a < b <= n and speech[-(-b // frame)] == speech[a // frame]
        run = run + 1 if pause else 0
        if pause and run > DTX_MIN_FRAMES and (refresh <= 0 or run % refresh != 0):
            out.append(bytes([p[0] & 0xFC]))  # same config, code 0, zero-length frame
        else:
            out.append(p)
    if granules[-1] < ends[-1]:  # end trimming: the last page's granule is below the sum
        ends[-1] = granules[-1]
    return ogg_write(out, ends, serial)


def _self_delimited(packet: bytes) -> bytes:
    """An Opus packet in self-delimiting framing (RFC 6716 Appendix B): the form of every
    stream's packet but the last in a multistream packet, its last frame's length added."""
    toc, code = packet[0], packet[0] & 3
    if code == 3:  # libsndfile's 20 ms SILK packets never use it; refuse, never guess
        raise ValueError("cannot reframe an Opus code-3 packet")

    def length(n: int) -> bytes:
        return bytes([n]) if n < 252 else bytes([252 + (n & 3), (n - 252 - (n & 3)) >> 2])

    if code == 0:  # one frame: its length
        return bytes([toc]) + length(len(packet) - 1) + packet[1:]
    if code == 1:  # two frames of equal size: that size once
        return bytes([toc]) + length((len(packet) - 1) // 2) + packet[1:]
    # code 2: the first frame's length is coded; the second's is added after it
    first = packet[1]
    skip = 1 if first < 252 else 2
    size1 = first if first < 252 else packet[2] * 4 + first
    size2 = len(packet) - 1 - skip - size1
    return bytes([toc]) + packet[1 : 1 + skip] + length(size2) + packet[1 + skip :]


def opus_multistream(streams: list[bytes]) -> bytes:
    """One Ogg/Opus stream of the mono Ogg/Opus `streams` (same settings, same length), each
    an uncoupled stream of its own channel (family 1: channel i = stream i, so two are left,
    right). Every packet joins the streams' packets of the same time, all but the last
    self-delimited (RFC 6716 Appendix B); granules are the first stream's (all are equal)."""
    parsed = [ogg_packets(s) for s in streams]
    packets, granules, serial = parsed[0]
    for other, other_granules, _ in parsed[1:]:
        if len(other) != len(packets) or other_granules != granules:
            raise ValueError("the channels' Opus streams do not line up")
    n = len(streams)
    head = bytearray(packets[0][:19])
    if not head.startswith(b"OpusHead") or head[9] != 1:
        raise ValueError("not a mono Ogg/Opus stream")
    head[9], head[18] = n, 1  # channel count, mapping family 1
    head += bytes([n, 0, *range(n)])  # stream count, coupled streams, channel i -> stream i
    out = [bytes(head), packets[1]]
    for i in range(2, len(packets)):
        parts = [p[i] for p, _, _ in parsed]
        if len({opus_samples_48k(p) for p in parts}) != 1:
            raise ValueError("the channels' Opus packets differ in duration")
        out.append(b"".join(_self_delimited(p) for p in parts[:-1]) + parts[-1])
    return ogg_write(out, granules, serial)


# --- encode / decode ------------------------------------------------------------------------


class StreamEncoder:
    """Encode a recording block by block, so a long call never sits in memory as samples:
    only the encoded bytes and one energy value per 20 ms frame and channel are kept (1 h of
    call: about 8 MB of Opus before DTX, 180,000 frame energies per channel). `write(pcm)` any
    number of times, then `finish()` for the stored file's bytes (`level`, `dtx`, `refresh`:
    compact mode's settings, overridable for the benchmark). `channels` > 1: `pcm` is
    interleaved frames (or an array of shape (samples, channels)); compact mode then codes
    each channel as its own mono stream (see the module's docstring), FLAC and WAV as
    ordinary multichannel files. `samples` counts frames (samples per channel)."""

    def __init__(self, mode: Mode = "compact", rate: int = RATE, channels: int = 1,
                 level: float = COMPACT_LEVEL, dtx: bool = True,
                 refresh: int = DTX_REFRESH_FRAMES) -> None:
        if mode not in SUFFIX:
            raise ValueError(f"unknown mode {mode!r}")
        if not 1 <= channels <= 8:  # Ogg/Opus family 1's limit
            raise ValueError(f"unsupported channel count {channels}")
        self.mode, self.rate, self.channels, self.refresh = mode, rate, channels, refresh
        self.samples = 0
        self._dtx = mode == "compact" and dtx
        self._frame = rate * FRAME_MS // 1000
        # One encoder per channel in compact mode (mono streams), else one for all channels.
        streams = channels if mode == "compact" else 1
        self._carry = [np.empty(0, dtype=np.int16) for _ in range(streams)]  # partial frames
        self._energies: list[list[npt.NDArray[np.float64]]] = [[] for _ in range(streams)]
        self._bufs = [io.BytesIO() for _ in range(streams)]
        fmt, subtype = {"wav": ("WAV", "PCM_16"), "lossless": ("FLAC", "PCM_16"),
                        "compact": ("OGG", "OPUS")}[mode]
        extra = {"compression_level": level} if mode == "compact" else {}
        per_file = 1 if mode == "compact" else channels
        self._files = [_sf().SoundFile(buf, "w", rate, per_file, subtype, format=fmt, **extra)
                       for buf in self._bufs]

    def write(self, pcm: npt.NDArray[np.int16]) -> None:
        frames = pcm.reshape(-1, self.channels)
        self.samples += frames.shape[0]
        if len(self._files) == 1:
            self._files[0].write(pcm if self.channels == 1 else frames)
            columns = [pcm.reshape(-1)] if self.channels == 1 else []
        else:
            columns = [np.ascontiguousarray(frames[:, ch]) for ch in range(self.channels)]
            for file, column in zip(self._files, columns, strict=True):
                file.write(column)
        if self._dtx:
            for ch, column in enumerate(columns):
                carry = self._carry[ch]
                block = np.concatenate((carry, column)) if carry.size else column
                whole = block.size - block.size % self._frame
                self._energies[ch].append(frame_energies_db(block[:whole], self.rate))
                self._carry[ch] = block[whole:].copy()

    def _stream(self, ch: int) -> bytes:
        self._files[ch].close()  # flushes libsndfile's last pages into the buffer
        data = self._bufs[ch].getvalue()
        if not self._dtx:
            return data
        parts = self._energies[ch]
        energies = np.concatenate(parts) if parts else np.empty(0)
        # Each channel's pauses against its own noise floor: one party's silence is coded
        # as comfort noise while the other talks.
        return opus_dtx(data, speech_frames(energies), self.rate, self.refresh)

    def finish(self) -> bytes:
        streams = [self._stream(ch) for ch in range(len(self._files))]
        return streams[0] if len(streams) == 1 else opus_multistream(streams)


def encode_bytes(src: Source, mode: Mode = "compact", rate: int = RATE,
                 level: float = COMPACT_LEVEL, dtx: bool = True,
                 refresh: int = DTX_REFRESH_FRAMES, channels: int = 1) -> bytes:
    """The stored file's bytes for `src` (a path, whose channels count; PCM16 bytes or an
    array at `rate`, interleaved when `channels` > 1) in `mode`; see `StreamEncoder`."""
    if channels == 1 and not isinstance(src, (str, os.PathLike)):
        pcm, rate = load_pcm(src, rate)
    else:
        pcm, rate = load_frames(src, rate, channels)
        channels = pcm.shape[1]
        if channels == 1:
            pcm = pcm.reshape(-1)
    enc = StreamEncoder(mode, rate, channels, level, dtx, refresh)
    enc.write(pcm)
    return enc.finish()


def encode(src: Source, out_path: str | os.PathLike[str], mode: Mode = "compact",
           rate: int = RATE) -> int:
    """Write `src` (a path, PCM16 bytes or an array at `rate`) to `out_path` atomically;
    returns the stored size in bytes."""
    data = encode_bytes(src, mode, rate)
    write_atomic(Path(out_path), data)
    return len(data)


def decode_frames(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """16-bit frames, shape (samples, channels), and rate of a stored file's bytes."""
    pcm, rate = _sf().read(io.BytesIO(data), dtype="int16", always_2d=True)
    return np.ascontiguousarray(pcm), int(rate)


def decode_file_bytes(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Mono 16-bit samples and rate of a stored file's bytes (Ogg/Opus, FLAC, WAV)."""
    pcm, rate = _sf().read(io.BytesIO(data), dtype="int16", always_2d=True)
    return np.ascontiguousarray(pcm[:, 0]), int(rate)


def decode(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float32], int]:
    """Mono float32 samples and rate of a stored recording (any mode)."""
    data, rate = _sf().read(os.fspath(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data[:, 0]), int(rate)
