"""Writes a call's line audio to disk: held in memory during the announcement, then streamed.

One thread owns the open file. PortAudio's callback and the daemon only put items on its
queue, so frames and commands (commit, discard, finish) are handled strictly in order and a
slow disk never stalls the audio callback or the call state machine.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callrec.storage.recordings import AudioWriter, RecordingStore

log = logging.getLogger(__name__)

# During the announcement audio stays in memory; a prompt longer than this is a misconfiguration.
MAX_HELD_SECONDS = 120


@dataclass(frozen=True)
class _Begin:
    rec_id: str


@dataclass(frozen=True)
class _Commit:
    sidecar: dict[str, Any]


@dataclass(frozen=True)
class _Discard:
    pass


@dataclass(frozen=True)
class _Finish:
    meta: dict[str, Any]
    done: Callable[[dict[str, Any] | None], None]
    tail_s: float


@dataclass(frozen=True)
class _Quit:
    pass


class Recorder:
    """The recording pipeline of one line."""

    def __init__(
        self,
        store: RecordingStore,
        rate: int,
        fsync_interval_s: float = 1.0,
        on_error: Callable[[str], None] = lambda msg: None,
    ) -> None:
        self.store, self.rate, self.fsync_interval_s = store, rate, fsync_interval_s
        self._on_error = on_error
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._rec_id: str | None = None
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._writer: AudioWriter | None = None
        self._last_sync = 0.0
        # After the call ends, audio that was on the line before the hang-up is still in the
        # capture pipeline (a capture buffer plus the device's latency): keep taking that many
        # samples before closing the file, so the last words are not cut off.
        self._drain: _Finish | None = None
        self._wants_audio = False
        self._drain_left = 0
        self._drain_deadline = 0.0

    # -- called from other threads: enqueue only -------------------------------------------
    def feed(self, pcm: bytes) -> None:
        """Audio frames from the capture callback."""
        self._queue.put(pcm)

    @property
    def wants_audio(self) -> bool:
        """True from begin() until the recording is closed or discarded; the capture
        callback feeds audio only then, so an idle line wakes nothing here."""
        return self._wants_audio

    def begin(self, rec_id: str) -> None:
        self._wants_audio = True  # set before the first frame can be needed
        self._queue.put(_Begin(rec_id))

    def commit(self, sidecar: dict[str, Any]) -> None:
        """Keep the call: write the held audio and a provisional sidecar (for recovery)."""
        self._queue.put(_Commit(sidecar))

    def discard(self) -> None:
        self._queue.put(_Discard())

    def finish(
        self,
        meta: dict[str, Any],
        done: Callable[[dict[str, Any] | None], None],
        tail_s: float = 0.0,
    ) -> None:
        """Take `tail_s` more seconds of audio still in the capture pipeline, then close and
        index the file; `done` gets the final metadata (None if nothing was kept)."""
        self._queue.put(_Finish(meta, done, tail_s))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_Quit())
            self._thread.join(timeout=10)

    # -- the recorder thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            timeout = None
            if self._drain is not None:
                timeout = max(0.0, self._drain_deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:  # the capture stopped delivering: keep what we have
                self._end_drain()
                continue
            try:
                if isinstance(item, bytes):
                    self._frame(item)
                    if self._writer is not None and self._drain is None and self._queue.empty():
                        # Caught up while streaming: make the audio durable once a second has
                        # passed, then let the next second queue up and handle it in one
                        # wake-up (a cut loses at most about a second either way).
                        self._sync_if_due()
                        time.sleep(max(0.0, self._last_sync + self.fsync_interval_s
                                       - time.monotonic()))
                    continue
                self._end_drain()  # any command closes a recording still draining
                if isinstance(item, _Quit):
                    self._close_writer()
                    return
                self._command(item)
            except OSError as exc:  # disk full, USB stick gone, read-only remount...
                log.error("recording write failed: %s", exc.strerror or exc)
                self._on_error(f"storage error: {exc.strerror or exc}")
                self._close_writer()

    def _frame(self, pcm: bytes) -> None:
        if self._rec_id is None:
            return
        if self._writer is None:
            if self._held_bytes < MAX_HELD_SECONDS * self.rate * 2:
                self._held.append(pcm)
                self._held_bytes += len(pcm)
            return
        if self._drain is not None:
            pcm = pcm[: self._drain_left]
            self._drain_left -= len(pcm)
        self._writer.write(pcm)
        if self._drain is not None and self._drain_left <= 0:
            self._end_drain()

    def _sync_if_due(self) -> None:
        now = time.monotonic()
        if self._writer is not None and now - self._last_sync >= self.fsync_interval_s:
            self._writer.sync()
            self._last_sync = now

    def _end_drain(self) -> None:
        item, self._drain = self._drain, None
        if item is not None:
            self._wants_audio = False
            item.done(self._finish(item.meta))

    def _command(self, item: Any) -> None:
        if isinstance(item, _Begin):
            self._close_writer()
            self._rec_id, self._held, self._held_bytes = item.rec_id, [], 0
        elif isinstance(item, _Commit) and self._rec_id is not None:
            self._writer = self.store.open_writer({**item.sidecar, "id": self._rec_id}, self.rate)
            for chunk in self._held:
                self._writer.write(chunk)
            self._held, self._held_bytes = [], 0
            self._writer.sync()
            self._last_sync = time.monotonic()
        elif isinstance(item, _Discard):
            self._rec_id, self._held, self._held_bytes = None, [], 0
            self._wants_audio = False
        elif isinstance(item, _Finish):
            if self._writer is None:
                self._wants_audio = False
                item.done(self._finish(item.meta))
                return
            self._drain = item
            self._drain_left = int(item.tail_s * self.rate) * 2
            self._drain_deadline = time.monotonic() + item.tail_s + 1.0

    def _finish(self, meta: dict[str, Any]) -> dict[str, Any] | None:
        writer, rec_id = self._writer, self._rec_id
        self._rec_id, self._held = None, []
        if writer is None or rec_id is None:
            return None
        self._writer = None
        writer.close()
        seconds = writer.data_bytes / (2 * self.rate)
        final = {
            **meta,
            "id": rec_id,
            "duration_s": round(seconds, 3),
            "audio": self.store.audio_info(writer, self.rate),
            "status": "complete",
        }
        self.store.add(final)
        log.info("recording %s kept: %.1f s", rec_id, seconds)
        return final

    def _close_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as exc:
                log.error("closing recording failed: %s", exc)
            self._writer = None
