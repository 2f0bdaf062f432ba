"""The simulated far end: speaks into the line and listens to what the box plays into it.

It uses the same LineAudio (PyAudio) class as the daemon, on the simulator's side of the
PulseAudio model: it plays into `line_in` and hears `line_out`'s monitor.

With `echo` set, what the box plays is also played back into `line_in` while `echo()` is
true: on a real line the announcement output and the capture tap are on the same pair, so
the box hears its own prompt. The line simulator enables it only while the line is idle
(on-hook) with the relay closed, which is the self-test's loopback; during calls the two
directions stay apart, so that tests compare the recorded far end sample for sample.
"""

from __future__ import annotations

import array
import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable

from callrec.board.audio import AudioDeviceError, LineAudio

CHUNK_S = 0.02


def rms(pcm: bytes) -> float:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class FarEnd:
    """One far-end party on the simulated line."""

    def __init__(self, device: str, rate: int = 8000,
                 echo: Callable[[], bool] | None = None) -> None:
        self.rate = rate
        self.audio = LineAudio(device, device, rate, frames_per_buffer=rate // 50)
        self._lock = threading.Lock()
        self._heard: list[bytes] | None = None
        self._recent: list[tuple[float, float]] = []  # (monotonic, rms) of what was heard
        self._echo = echo
        self._echoes: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._echo_thread: threading.Thread | None = None

    def open(self) -> None:
        self.audio.open()
        self.audio.set_sink(self._on_heard)
        if self._echo is not None:
            self._echo_thread = threading.Thread(target=self._play_echoes, name="sim-echo",
                                                 daemon=True)
            self._echo_thread.start()

    def close(self) -> None:
        self.audio.set_sink(None)
        if self._echo_thread is not None:
            self._echoes.put(None)
            self._echo_thread.join(timeout=2)
            self._echo_thread = None
        self.audio.close()

    def _play_echoes(self) -> None:
        while (pcm := self._echoes.get()) is not None:
            with contextlib.suppress(AudioDeviceError):
                self.audio.write(pcm)

    def _on_heard(self, pcm: bytes) -> None:
        if self._echo is not None and self._echo():
            self._echoes.put(pcm)  # PortAudio's thread: the echo thread writes it
        level = rms(pcm)
        with self._lock:
            if self._heard is not None:
                self._heard.append(pcm)
            self._recent.append((time.monotonic(), level))
            del self._recent[:-500]

    def start_listening(self) -> None:
        with self._lock:
            self._heard = []

    def stop_listening(self) -> bytes:
        with self._lock:
            heard, self._heard = self._heard or [], None
        return b"".join(heard)

    def wait_for_prompt_end(
        self, timeout_s: float, silence_s: float = 0.6, threshold: float = 200.0
    ) -> bool:
        """Wait, as a caller would, until the box has spoken and then gone quiet."""
        start = time.monotonic()
        heard_speech = False
        while time.monotonic() - start < timeout_s:
            time.sleep(0.05)
            with self._lock:
                recent = [(t, lvl) for t, lvl in self._recent if t >= start]
            loud = [t for t, lvl in recent if lvl > threshold]
            if loud:
                heard_speech = True
                if recent and recent[-1][0] - loud[-1] >= silence_s:
                    return True
        return heard_speech

    def say(self, pcm: bytes, until: float | None = None) -> None:
        """Play `pcm` into the line in real time (stops early at monotonic `until`)."""
        step = int(self.rate * CHUNK_S) * 2
        for offset in range(0, len(pcm), step):
            if until is not None and time.monotonic() >= until:
                return
            self.audio.write(pcm[offset : offset + step])
