"""The consent announcement: load a stored prompt, play it into the line, report the outcome.

Each recording keeps the proof of what the caller heard: the prompt's name, the SHA-256 of its
file, when it started and whether it played to the end.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.02  # 20 ms writes: a hang-up stops the prompt within a few tens of ms


class PromptError(ValueError):
    """The prompt file is missing or not playable on the line."""


@dataclass(frozen=True)
class Prompt:
    name: str
    sha256: str
    rate: int
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.rate)


def load_prompt(directory: Path, name: str, rate: int) -> Prompt:
    """Read <directory>/<name>.wav; it must be mono 16-bit PCM at the line's sample rate."""
    path = Path(directory) / f"{name}.wav"
    try:
        raw = path.read_bytes()
        with wave.open(str(path), "rb") as w:
            fmt = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            pcm = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise PromptError(f"prompt file missing: {path}") from None
    except (OSError, EOFError, wave.Error) as exc:
        raise PromptError(f"prompt file unreadable: {path}: {exc}") from None
    if fmt != (1, 2, rate):
        raise PromptError(
            f"prompt {path} is {fmt[0]} channel(s), {fmt[1] * 8}-bit, {fmt[2]} Hz; "
            f"the line needs mono 16-bit {rate} Hz (callrec prompts generate makes one)"
        )
    if not pcm:
        raise PromptError(f"prompt file is empty: {path}")
    return Prompt(name=name, sha256=hashlib.sha256(raw).hexdigest(), rate=rate, pcm=pcm)


class LineOutput(Protocol):
    def write(self, pcm: bytes) -> None: ...


@dataclass
class PlaybackProof:
    prompt: str
    sha256: str
    started_at: str = ""
    completed: bool = False
    first_frame_at: float = 0.0  # monotonic, for the latency benchmark
    # The prompt library's versions played, in order: {"version", "language", "sha256"}
    # (version None: an installer's file the library has not adopted).
    versions: tuple[dict[str, object], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        proof: dict[str, object] = {
            "prompt": self.prompt,
            "sha256": self.sha256,
            "started_at": self.started_at,
            "completed": self.completed,
        }
        if self.versions:
            proof["versions"] = [dict(v) for v in self.versions]
        return proof


class AnnouncementPlayer:
    """Plays one prompt at a time on its own thread; `done(ok, error)` is called at the end."""

    def __init__(self, output: LineOutput) -> None:
        self.output = output
        # One cancel flag per playback: a thread still blocked in a write when the next
        # prompt starts must stop, not resume with the new prompt's flag cleared.
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.proof: PlaybackProof | None = None

    def play(self, prompt: Prompt, done: Callable[[bool, str], None],
             versions: tuple[dict[str, object], ...] = ()) -> PlaybackProof:
        self.stop()
        self._cancel = cancel = threading.Event()
        self.proof = proof = PlaybackProof(prompt.name, prompt.sha256, versions=versions)
        self._thread = threading.Thread(
            target=self._play,
            args=(prompt, proof, cancel, done),
            name="announcement",
            daemon=True,
        )
        self._thread.start()
        return proof

    def stop(self) -> None:
        self._cancel.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None

    def _play(
        self,
        prompt: Prompt,
        proof: PlaybackProof,
        cancel: threading.Event,
        done: Callable[[bool, str], None],
    ) -> None:
        step = int(prompt.rate * CHUNK_SECONDS) * 2
        try:
            for offset in range(0, len(prompt.pcm), step):
                if cancel.is_set():
                    return  # the call ended or restarted: the state machine already knows
                if offset == 0:
                    proof.first_frame_at = time.monotonic()
                    proof.started_at = datetime.now(UTC).isoformat()
                self.output.write(prompt.pcm[offset : offset + step])
        except Exception as exc:  # any device failure means: no announcement, no recording
            log.error("announcement failed: %s", exc)
            done(False, f"announcement could not be played: {exc}")
            return
        if cancel.is_set():
            return
        proof.completed = True
        done(True, "")
