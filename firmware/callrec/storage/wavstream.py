"""WAV files that stay playable when the power is cut mid-call.

A WAV header holds the data size, normally known only at the end: a crash leaves the classic
"44-byte empty file". Here the header is written up front with the largest sizes the format
allows (players read such a file to its real end), audio is appended and fdatasync'ed on a
schedule, and the sizes are patched when the call ends, or at the next start by `repair`.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

HEADER_BYTES = 44
_STREAMING_SIZE = 0xFFFFFFFF - 8  # the largest RIFF size: "until the end of the file"


def wav_header(data_bytes: int, rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A canonical 44-byte PCM WAV header for `data_bytes` of audio."""
    riff_size = min(36 + data_bytes, _STREAMING_SIZE)
    block_align = channels * sample_width
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", riff_size),
            b"WAVEfmt ",
            struct.pack(
                "<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, sample_width * 8
            ),
            b"data",
            struct.pack("<I", min(data_bytes, _STREAMING_SIZE - 36)),
        )
    )


class StreamingWavWriter:
    """Append-only WAV writer; `sync()` makes what was written durable."""

    def __init__(self, path: Path, rate: int, channels: int = 1, sample_width: int = 2) -> None:
        self.path = path
        self.rate, self.channels, self.sample_width = rate, channels, sample_width
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.data_bytes = 0
        self._write(wav_header(_STREAMING_SIZE, rate, channels, sample_width))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def write(self, pcm: bytes) -> None:
        self._write(pcm)
        self.data_bytes += len(pcm)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    @property
    def seconds(self) -> float:
        return self.data_bytes / (self.rate * self.channels * self.sample_width)

    def close(self) -> None:
        """Patch the real sizes into the header and make the file durable."""
        if self._fd < 0:
            return
        try:
            os.pwrite(
                self._fd,
                wav_header(self.data_bytes, self.rate, self.channels, self.sample_width),
                0,
            )
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1


def repair(path: Path) -> int:
    """Fix the header of an interrupted recording from its size; returns the audio bytes kept.

    A trailing odd byte (a sample cut in half by the crash) is dropped.
    """
    with open(path, "r+b") as f:
        head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path.name}: not a WAV file")
        channels, rate = struct.unpack("<HI", head[22:28])
        width = struct.unpack("<H", head[34:36])[0] // 8
        size = os.fstat(f.fileno()).st_size - HEADER_BYTES
        size -= size % (channels * width)
        f.truncate(HEADER_BYTES + size)
        f.seek(0)
        f.write(wav_header(size, rate, channels, width))
        f.flush()
        os.fsync(f.fileno())
    return size
