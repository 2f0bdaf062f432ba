"""Writes a call's line audio to disk: held in memory during the announcement, then streamed.

One thread owns the open file. PortAudio's callback and the daemon only put items on its
queue, so frames and commands (commit, discard, finish) are handled strictly in order and a
slow disk never stalls the audio callback or the call state machine.

Where a recording goes is chosen on this thread when it is committed (`choose_volume`, which
probes the volumes: that can block on a dying USB stick, so never on the daemon's thread).
Everything written since the last successful sync (about a second) is also kept in memory: if
the stick fails during the call (a write or sync error, or `check_volume()` after a mount
change finds it gone), its file is abandoned, counted up to the last sync, and the call goes
on in a second audio part on the SD card (<id>.part2.cra), which starts with the kept bytes;
the sidecar on the SD card lists both parts. `on_fallback` then reports it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callrec.storage.recordings import AudioWriter, RecordingStore
from callrec.storage.volumes import SD, label, problem_of

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
class _Abandon:
    reason: str


@dataclass(frozen=True)
class _Finish:
    meta: dict[str, Any]
    done: Callable[[dict[str, Any] | None], None]
    tail_s: float


@dataclass(frozen=True)
class _Quit:
    pass


@dataclass(frozen=True)
class _CheckVolume:
    pass


class Recorder:
    """The recording pipeline of one line."""

    def __init__(
        self,
        store: RecordingStore,
        rate: int,
        fsync_interval_s: float = 1.0,
        on_error: Callable[[str], None] = lambda msg: None,
        *,
        choose_volume: Callable[[], str] = lambda: SD,
        volume_problem: Callable[[str], str | None] = lambda volume: None,
        on_fallback: Callable[[str, str], None] = lambda volume, problem: None,
        channels: int = 1,
    ) -> None:
        """`choose_volume()` names the volume of the next recording; `volume_problem(v)` says
        what is wrong with volume v now (None: nothing); `on_fallback(v, problem)` is told
        that a recording left volume v for the SD card. All three run on this thread.
        `channels`: 1, or 2 for a SIP call (0: the office side, 1: the remote party); what
        `feed` gets is then whole interleaved PCM16 frames."""
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {channels}")
        self.store, self.rate, self.fsync_interval_s = store, rate, fsync_interval_s
        self.channels = channels
        self._frame_bytes = 2 * channels  # one PCM16 sample of every channel
        self._on_error = on_error
        self._choose_volume, self._volume_problem = choose_volume, volume_problem
        self._on_fallback = on_fallback
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._rec_id: str | None = None
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._writer: AudioWriter | None = None
        self._last_sync = 0.0
        self._volume = SD  # where the open writer is
        self._sidecar: dict[str, Any] = {}  # the provisional sidecar of the recording
        self._parts: list[dict[str, Any]] = []  # finished audio parts (after a fall-back)
        self._unsynced: list[bytes] = []  # written since the last successful sync
        self._synced_bytes = 0  # the open writer's audio bytes at its last successful sync
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

    def abandon(self, reason: str) -> None:
        """Stop writing the call and erase what was written of it (key first: crypto-erasure).
        For a call that turned out to be private after its audio started to be written."""
        self._queue.put(_Abandon(reason))

    def check_volume(self) -> None:
        """The mount table changed: check that the volume being written to is still there."""
        self._queue.put(_CheckVolume())

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

    def quit(self) -> None:
        """Let the thread end once it has done what is queued, without waiting for it (a SIP
        call's recorder, from the line's thread, which must not block on a disk)."""
        self._queue.put(_Quit())

    def health(self) -> tuple[bool, int]:
        """(thread alive, items waiting for it): the daemon's watchdog checks that it drains."""
        return self._thread.is_alive(), self._queue.qsize()

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
                if isinstance(item, _CheckVolume):  # not a command: a draining call goes on
                    self._check()
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
            if self._held_bytes < MAX_HELD_SECONDS * self.rate * self._frame_bytes:
                self._held.append(pcm)
                self._held_bytes += len(pcm)
            return
        if self._drain is not None:
            pcm = pcm[: self._drain_left]
            self._drain_left -= len(pcm)
        self._write(pcm)
        if self._drain is not None and self._drain_left <= 0:
            self._end_drain()

    def _sync_if_due(self) -> None:
        now = time.monotonic()
        if self._writer is not None and now - self._last_sync >= self.fsync_interval_s:
            self._sync()
            self._last_sync = now

    # -- writing, and falling back to the SD card ------------------------------------------
    def _write(self, pcm: bytes) -> None:
        assert self._writer is not None
        self._unsynced.append(pcm)
        try:
            self._writer.write(pcm)
        except OSError as exc:
            self._fall_back(exc)

    def _sync(self) -> None:
        assert self._writer is not None
        try:
            self._writer.sync()
        except OSError as exc:
            self._fall_back(exc)
            return
        self._synced_bytes = self._writer.data_bytes
        self._unsynced.clear()

    def _fall_back(self, failure: OSError | str) -> None:
        """The volume being written failed: continue this recording on the SD card, starting
        with every byte written since the last successful sync. An error on the SD card itself
        is raised (the recording then ends: nowhere else to go)."""
        writer, volume, rec_id = self._writer, self._volume, self._rec_id
        if isinstance(failure, OSError) and volume == SD:
            raise failure
        if writer is None or rec_id is None or volume == SD:
            return
        problem = problem_of(failure) if isinstance(failure, OSError) else failure
        self._writer = None
        _abandon(writer)
        self._parts.append({"volume": volume, "file": writer.path.name,
                            "bytes": self._synced_bytes})
        part = len(self._parts) + 1
        current = {"volume": SD, "file": self.store.part_file(rec_id, part)}
        self._writer = self.store.open_writer(
            {**self._sidecar, "id": rec_id, "parts": [*self._parts, current]},
            self.rate, volume=SD, part=part, channels=self.channels,
        )
        self._volume, self._synced_bytes = SD, 0
        kept, self._unsynced = self._unsynced, []
        for chunk in kept:
            self._write(chunk)
        self._sync()
        log.error("recording %s: %s failed (%s); the call continues on %s, %d bytes re-written",
                  rec_id, label(volume), problem, label(SD), sum(map(len, kept)))
        self._on_fallback(volume, problem)

    def _check(self) -> None:
        if self._writer is None or self._volume == SD:
            return
        problem = self._volume_problem(self._volume)
        if problem:
            self._fall_back(problem)

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
            self._sidecar = {**item.sidecar, "id": self._rec_id}
            self._parts, self._unsynced, self._synced_bytes = [], [], 0
            volume = self._choose_volume()
            try:
                self._writer = self.store.open_writer(self._sidecar, self.rate, volume=volume,
                                                     channels=self.channels)
            except OSError as exc:
                if volume == SD:
                    raise
                log.error("recording %s: %s cannot be written (%s); recording to %s",
                          self._rec_id, label(volume), problem_of(exc), label(SD))
                self._on_fallback(volume, problem_of(exc))
                volume = SD
                self._writer = self.store.open_writer(self._sidecar, self.rate, volume=SD,
                                                     channels=self.channels)
            self._volume = volume
            held, self._held, self._held_bytes = self._held, [], 0
            for chunk in held:
                self._write(chunk)
            self._sync()
            self._last_sync = time.monotonic()

        elif isinstance(item, _Discard):
            self._rec_id, self._held, self._held_bytes = None, [], 0
            self._wants_audio = False
        elif isinstance(item, _Abandon):
            rec_id = self._rec_id
            self._wants_audio = False
            self._rec_id, self._held, self._held_bytes = None, [], 0
            writer, self._writer = self._writer, None
            if writer is not None:
                _abandon(writer)
            self._parts, self._unsynced, self._sidecar = [], [], {}
            if rec_id is not None:
                # Not indexed yet: this removes its key, audio parts and sidecar.
                self.store.erase_many([rec_id])
                log.info("recording %s erased while in progress (%s)", rec_id, item.reason)
        elif isinstance(item, _Finish):
            if self._writer is None:
                self._wants_audio = False
                item.done(self._finish(item.meta))
                return
            self._drain = item
            # Whole frames: a stereo file must never end between a frame's two samples.
            self._drain_left = int(item.tail_s * self.rate) * self._frame_bytes
            self._drain_deadline = time.monotonic() + item.tail_s + 1.0

    def _finish(self, meta: dict[str, Any]) -> dict[str, Any] | None:
        writer, rec_id = self._writer, self._rec_id
        self._held = []
        if writer is None or rec_id is None:
            self._rec_id = None
            return None
        try:
            writer.close()
        except OSError as exc:
            try:
                self._fall_back(exc)  # the stick failed at the very end: the rest to the SD
            finally:
                self._rec_id = None
            writer = self._writer
            assert writer is not None
            writer.close()
        self._rec_id, self._writer = None, None
        parts = self._parts
        if parts:
            parts = [*parts, {"volume": self._volume, "file": writer.path.name,
                              "bytes": writer.data_bytes}]
        total = sum(p["bytes"] for p in parts) if parts else writer.data_bytes
        seconds = total / (self._frame_bytes * self.rate)
        final = {
            **meta,
            "id": rec_id,
            "volume": self._volume,
            "duration_s": round(seconds, 3),
            "audio": {**self.store.audio_info(writer, self.rate, self.channels),
                      "bytes": total},
            "status": "complete",
        }
        if parts:
            final["parts"] = parts
        self._parts, self._unsynced = [], []
        try:
            self.store.add(final)
        except OSError as exc:
            if self._volume == SD:
                raise
            # The stick failed after the audio was closed: the sidecar goes to the SD card,
            # naming the audio that stays on the stick.
            log.error("recording %s: %s failed writing its sidecar (%s)",
                      rec_id, label(self._volume), problem_of(exc))
            self._on_fallback(self._volume, problem_of(exc))
            final.setdefault("parts", [{"volume": self._volume, "file": writer.path.name,
                                        "bytes": writer.data_bytes}])
            final["volume"] = SD
            self.store.add(final)
        log.info("recording %s kept: %.1f s", rec_id, seconds)
        return final

    def _close_writer(self) -> None:
        self._parts, self._unsynced = [], []
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as exc:
                log.error("closing recording failed: %s", exc)
            self._writer = None


def _abandon(writer: AudioWriter) -> None:
    """Close a failed volume's file without caring for its end (errors are expected)."""
    abort = getattr(writer, "abort", None)
    try:
        if abort is not None:
            abort()
        else:
            writer.close()
    except OSError:
        fd = getattr(writer, "_fd", -1)
        if isinstance(fd, int) and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
            writer._fd = -1  # type: ignore[attr-defined]
