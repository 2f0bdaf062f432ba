"""Line audio through PyAudio: capture from the line, play into the line.

The same code drives the HAT's codec and the simulator's PulseAudio null sinks; only the device
names in the configuration differ. Both streams are opened once at start and kept open:
PortAudio's first capture callbacks arrive 1-2 s after open(), which would cut the start of
every call, and an idle blocking output stream costs nothing until it is written to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

FrameSink = Callable[[bytes], None]
SAMPLE_WIDTH = 2  # 16-bit signed little-endian, mono


class AudioDeviceError(RuntimeError):
    """An audio device is missing or failed."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    # PortAudio probes ALSA and JACK when it initialises and prints dozens of harmless
    # "Unknown PCM" lines straight to fd 2; hide them so the log stays readable.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_pyaudio() -> Any:
    import pyaudio  # imported here so that pure modules and tests never need PortAudio

    with _quiet_stderr():
        return pyaudio.PyAudio()


def find_device(pa: Any, name: str, *, capture: bool) -> int:
    """Index of the first device whose name contains `name` and that can capture/play."""
    key = "maxInputChannels" if capture else "maxOutputChannels"
    seen = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        seen.append(str(info["name"]))
        if name in str(info["name"]) and int(info[key]) > 0:
            return index
    kind = "capture" if capture else "playback"
    raise AudioDeviceError(f"no {kind} device named '{name}' (found: {', '.join(seen) or 'none'})")


class LineAudio:
    """Capture and playback streams of one line, opened once and kept running."""

    def __init__(
        self,
        capture_device: str,
        playback_device: str,
        rate: int = 8000,
        frames_per_buffer: int = 800,
    ) -> None:
        self.capture_device = capture_device
        self.playback_device = playback_device
        self.rate = rate
        self.frames_per_buffer = frames_per_buffer
        self._pa: Any = None
        self._capture: Any = None
        self._playback: Any = None
        self._sink: FrameSink | None = None
        self._play_lock = threading.Lock()
        self._taps: tuple[FrameSink, ...] = ()  # extra listeners (the self-test), after sink
        self.last_frame_at = 0.0  # monotonic time of the last capture callback

    # PortAudio calls this from its own thread: hand the bytes on, nothing else.
    def _on_capture(self, data: bytes, frames: int, info: Any, flags: int) -> tuple[None, int]:
        self.last_frame_at = time.monotonic()
        sink = self._sink
        if sink is not None:
            sink(data)
        for tap in self._taps:
            tap(data)
        return (None, 0)  # paContinue

    def open(self) -> None:
        """Open both streams; raises AudioDeviceError with the device name if one is missing."""
        import pyaudio

        self._pa = open_pyaudio()
        try:
            cap_index = find_device(self._pa, self.capture_device, capture=True)
            out_index = find_device(self._pa, self.playback_device, capture=False)
            self._capture = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=self.rate,
                input=True,
                input_device_index=cap_index,
                frames_per_buffer=self.frames_per_buffer,
                stream_callback=self._on_capture,
            )
            self._playback = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=self.rate,
                output=True,
                output_device_index=out_index,
                frames_per_buffer=self.rate // 50,
            )
        except OSError as exc:
            self.close()
            raise AudioDeviceError(f"cannot open line audio: {exc}") from exc
        except AudioDeviceError:
            self.close()
            raise

    def close(self) -> None:
        for stream in (self._capture, self._playback):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.stop_stream()
                    stream.close()
        self._capture = self._playback = None
        if self._pa is not None:
            self._pa.terminate()
            self._pa = None

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    @property
    def capture_latency_s(self) -> float:
        """How long after it was on the line a sample reaches the sink (buffer + device)."""
        device = self._capture.get_input_latency() if self._capture is not None else 0.0
        return float(device) + self.frames_per_buffer / self.rate

    def capture_alive(self, max_silence_s: float = 2.0) -> bool:
        return self.is_open and time.monotonic() - self.last_frame_at < max_silence_s

    def set_sink(self, sink: FrameSink | None) -> None:
        """Send captured frames to `sink` (called on PortAudio's thread), or drop them."""
        self._sink = sink

    @contextlib.contextmanager
    def tap(self, listener: FrameSink) -> Iterator[None]:
        """Also hand captured frames to `listener` (on PortAudio's thread) inside the block;
        the sink keeps its frames (the self-test listens next to the daemon's listener)."""
        self._taps = (*self._taps, listener)
        try:
            yield
        finally:
            self._taps = tuple(t for t in self._taps if t is not listener)

    def write(self, pcm: bytes) -> None:
        """Blocking write into the line; raises AudioDeviceError if playback failed."""
        if self._playback is None:
            raise AudioDeviceError("playback device is not open")
        try:
            with self._play_lock:
                self._playback.write(pcm, exception_on_underflow=False)
        except OSError as exc:
            raise AudioDeviceError(f"playback failed: {exc}") from exc
