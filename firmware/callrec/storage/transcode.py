"""The transcoding worker: one finished recording's captured PCM to its stored format.

Run by the daemon's `Transcoder` as a child process, `python -m callrec.storage.transcode`,
for three reasons: the encoder (libsndfile, numpy work on the whole call) never shares the
daemon's interpreter lock with capture; libsndfile is never loaded into the long-running
daemon (its memory goes when the child exits); and the child runs at the lowest CPU
priority, so on a single-core Pi a new call's capture always wins.

The request comes as one JSON object on standard input (never in argv, which other users
can read in /proc): {"id", "format": "opus"|"flac", "rate", "channels" (absent: 1; 2 for a
SIP call, its PCM interleaved), "parts": [{"path", "bytes"}], "out", "key": base64 or
null}. The child needs no access to the key store: the daemon hands it the recording's own
key and nothing else.

The output is written to <out>.tmp, made durable, checked (decoded: it must hold as many
samples and channels as the input, so no audio is lost), then renamed to <out> and the
folder synced. A crash or kill at any instant leaves either no <out> or a complete one; the
captured file is removed by the daemon only after the recording's metadata names the new
file. On success the child prints {"bytes": stored size, "samples": n} and exits 0; on
failure it prints the reason on stderr and exits 1.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from callrec.storage.atomic_json import fsync_dir, write_atomic
from callrec.storage.audio_files import TMP_SUFFIX, PcmPart, container_id
from callrec.storage.codec import Mode, StreamEncoder, _sf
from callrec.storage.crypto import EncryptedWriter

MODES: dict[str, Mode] = {"opus": "compact", "flac": "lossless"}
# Four seconds of 8 kHz mono PCM16 per read: few calls, little memory. A multiple of every
# frame size (2 or 4 bytes), so a block never ends inside a frame.
BLOCK_BYTES = 16000 * 4


class TranscodeError(Exception):
    """The recording could not be transcoded; its captured audio is untouched."""


def encode_parts(parts: list[PcmPart], fmt: str, rate: int, channels: int = 1
                 ) -> tuple[bytes, int]:
    """The stored file's bytes for the recording made of `parts` (interleaved frames of
    `channels`), and its sample count per channel."""
    enc = StreamEncoder(MODES[fmt], rate, channels)
    frame = 2 * channels
    for part in parts:
        for start in range(0, part.size, BLOCK_BYTES):
            chunk = part.read(start, min(part.size, start + BLOCK_BYTES))
            chunk = chunk[: len(chunk) - len(chunk) % frame]  # a part's torn last frame
            if chunk:
                enc.write(np.frombuffer(chunk, dtype="<i2").astype(np.int16))
    return enc.finish(), enc.samples


def check_decodes(data: bytes, samples: int, rate: int, channels: int = 1) -> None:
    """The encoded file must decode to the input's length (Opus: to the sample, thanks to
    its pre-skip and end granule) and channels; anything else means audio would be lost."""
    with _sf().SoundFile(io.BytesIO(data)) as f:
        frames, file_rate, file_channels = f.frames, f.samplerate, f.channels
    if file_rate != rate or frames != samples or file_channels != channels:
        raise TranscodeError(
            f"the encoded file decodes to {frames} samples x {file_channels} channels at "
            f"{file_rate} Hz, not {samples} x {channels} at {rate} Hz"
        )


def write_output(out: Path, data: bytes, rec_id: str, fmt: str, key: bytes | None) -> int:
    """Durably write `data` to `out` (encrypted under `key` when given) via a temporary
    name; returns the size of the file on disk."""
    if key is None:
        write_atomic(out, data)  # its temporary name ends in .tmp too: tidied if cut short
        return out.stat().st_size
    tmp = out.with_name(out.name + TMP_SUFFIX)
    tmp.unlink(missing_ok=True)  # left by a transcoding that was killed
    try:
        with EncryptedWriter(tmp, key, container_id(rec_id, fmt)) as writer:
            writer.write(data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)
    return out.stat().st_size


def run(request: dict[str, Any]) -> dict[str, Any]:
    rec_id, fmt, rate = str(request["id"]), str(request["format"]), int(request["rate"])
    channels = int(request.get("channels") or 1)
    if fmt not in MODES:
        raise TranscodeError(f"unknown format {fmt!r}")
    if channels not in (1, 2):
        raise TranscodeError(f"unsupported channel count {channels}")
    key = base64.b64decode(request["key"]) if request.get("key") else None
    parts: list[PcmPart] = []
    try:
        for part in request["parts"]:
            limit = part.get("bytes")
            parts.append(PcmPart(Path(part["path"]), rec_id, key,
                                 int(limit) if limit is not None else None))
        data, samples = encode_parts(parts, fmt, rate, channels)
    finally:
        for opened in parts:
            opened.close()
    check_decodes(data, samples, rate, channels)
    size = write_output(Path(request["out"]), data, rec_id, fmt, key)
    return {"bytes": len(data), "stored_bytes": size, "samples": samples,
            "peak_rss_kb": peak_rss_kb()}


def peak_rss_kb() -> int | None:
    """This process's peak resident memory since it started (VmHWM: not getrusage, whose
    ru_maxrss keeps the parent's size across the fork and exec that started us)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def main() -> int:
    try:
        os.nice(19)  # capture and the web UI first, always
    except OSError:
        pass
    try:
        request = json.loads(sys.stdin.buffer.read())
        result = run(request)
    except (OSError, ValueError, KeyError, TypeError, TranscodeError) as exc:
        # The reason only: never the request, which holds the key.
        print(f"transcoding failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
