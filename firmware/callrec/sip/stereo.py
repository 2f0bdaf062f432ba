"""Two directions of a SIP call into one two-channel stream (pure: bytes in, bytes out).

The relay decodes each direction on its own (`rtp.RtpReceiver`), on a timeline the two share:
sample n of either direction was heard at the same instant. Each delivery says where it starts
on that timeline. `StereoAssembler` places them and hands out interleaved frames (channel 0 =
the office side, channel 1 = the remote party) as far as both channels are known, so a frame
is written once, with both its samples, and the channels can never slide against each other.

A direction that is late (its packets are behind the other's by the jitter window, or its
receiver has not emitted the silence of a hold yet) only delays the frames; one that stops
delivering for longer than `max_lag_s` is filled with silence, so a stuck side never makes
the recording hold the other side's audio in memory.
"""

from __future__ import annotations

import numpy as np

CHANNELS = ("lan", "trunk")  # channel 0: the office side; channel 1: the remote party
CHANNEL_NAMES = ["office", "remote"]  # as the recording's metadata says it
RATE = 8000


class StereoAssembler:
    def __init__(self, max_lag_s: float = 2.0, rate: int = RATE) -> None:
        self._max_lag = int(max_lag_s * rate)
        self._pending = [np.empty(0, dtype=np.int16), np.empty(0, dtype=np.int16)]
        self._base = 0  # timeline sample of the first pending sample of both channels

    def feed(self, direction: str, start: int, pcm: bytes) -> bytes:
        """`pcm` (PCM16 LE) from `direction` ("lan"/"trunk") starting at timeline sample
        `start`; returns the interleaved frames now complete (possibly none)."""
        ch = CHANNELS.index(direction)
        samples = np.frombuffer(pcm, dtype="<i2")
        have = self._base + self._pending[ch].size
        if start < have:  # already placed (the receivers do not overlap; be safe anyway)
            samples = samples[have - start:]
        elif start > have:  # a gap on the timeline is silence
            samples = np.concatenate((np.zeros(start - have, dtype=np.int16), samples))
        if samples.size:
            self._pending[ch] = np.concatenate((self._pending[ch], samples))
        other = self._pending[1 - ch]
        lag = self._pending[ch].size - self._max_lag - other.size
        if lag > 0:  # the other side stopped delivering: silence, not unbounded memory
            self._pending[1 - ch] = np.concatenate((other, np.zeros(lag, dtype=np.int16)))
        return self._take(min(p.size for p in self._pending))

    def flush(self) -> bytes:
        """Everything still pending, the shorter channel completed with silence."""
        return self._take(max(p.size for p in self._pending), pad=True)

    def _take(self, n: int, pad: bool = False) -> bytes:
        if n <= 0:
            return b""
        frames = np.zeros((n, 2), dtype="<i2")
        for ch, p in enumerate(self._pending):
            m = min(n, p.size) if pad else n
            frames[:m, ch] = p[:m]
            self._pending[ch] = p[m:]
        self._base += n
        return frames.tobytes()
