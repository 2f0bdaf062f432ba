"""After hang-up: each finished recording is transcoded to the configured stored format.

Capture always writes PCM in one-second sealed chunks (a power cut loses at most a second);
the compact or lossless file is made afterwards, one recording at a time, by a child process
at the lowest CPU priority (storage.transcode: why a child, and how its output is made
durable). This thread only chooses what to transcode, feeds the child its job on a pipe and,
when the child has succeeded, lets the RecordingStore (the index's one writer) switch the
recording to the new file and delete the captured one.

A recording is transcoded when it is indexed as finished ("complete" or "interrupted") and
still in WAV: right after its call, and at start for any that a restart, a crash or an
absent USB stick left behind. A failure (a damaged capture, a full disk) is logged by id and
leaves the recording as it is, playable in WAV; it is tried again at the next start.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import sys
import threading
from typing import Any

from callrec.storage.recordings import RecordingStore, audio_layout

log = logging.getLogger(__name__)

FORMATS = {"compact": "opus", "lossless": "flac", "wav": None}
# A Pi Zero 2 encodes speech to Opus at roughly 20x real time; allow far more than that.
TIMEOUT_BASE_S = 120.0
TIMEOUT_PER_AUDIO_S = 0.5
WORKER = [sys.executable, "-m", "callrec.storage.transcode"]
_RESCAN = "\0rescan"  # a queue item: look for recordings left in WAV
_STOP = "\0stop"


class Transcoder:
    """One thread, one child at a time; `submit(id)` after a recording is indexed."""

    def __init__(self, store: RecordingStore, audio_format: str,
                 worker: list[str] | None = None) -> None:
        self.store = store
        self.format = FORMATS[audio_format]
        self.worker = worker or WORKER
        self.done = 0
        self.failed: set[str] = set()  # not retried before the next start
        self.last_result: dict[str, Any] = {}  # the worker's figures (for the benchmark)
        self._queue: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0  # queued or being done
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="transcoder", daemon=True)

    @property
    def enabled(self) -> bool:
        return self.format is not None

    def start(self) -> None:
        if self.enabled:
            self._thread.start()
            self.rescan()

    def submit(self, rec_id: str) -> None:
        if self.enabled:
            self._put(rec_id)

    def rescan(self) -> None:
        """Queue every recording still in WAV (at start, and when a stick comes back)."""
        if self.enabled:
            self._put(_RESCAN)

    def pending(self) -> int:
        """Recordings (and scans) queued or being transcoded."""
        with self._lock:
            return self._outstanding

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being transcoded (for tests and tools)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after killing a child at work: its temporary file is tidied at next start."""
        if not self._thread.is_alive():
            return
        with self._lock:
            self._stopping = True
            child = self._child
        if child is not None and child.poll() is None:
            child.kill()
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _put(self, item: str) -> None:
        with self._lock:
            if item in self._queued:
                return
            self._queued.add(item)
            self._outstanding += 1
        self._queue.put(item)

    def _run(self) -> None:
        while self._take(self._queue.get()):
            pass

    def _take(self, item: str) -> bool:
        """Do one queued item; False once stopping."""
        with self._lock:
            self._queued.discard(item)
            if self._stopping or item == _STOP:
                return False
        try:
            if item == _RESCAN:
                self._scan()
            elif item not in self.failed:
                self._transcode(item)
        except Exception:  # never let one recording stop the thread
            log.exception("transcoding %s failed", "scan" if item == _RESCAN else item)
        finally:
            with self._idle:
                self._outstanding -= 1
                self._idle.notify_all()
        return not self._stopping

    def _scan(self) -> None:
        """Transcode, oldest first, every finished recording still in WAV. The archive is
        walked, not queued (100,000 queued ids would cost the daemon ~15 MB); a recording that
        a call just finished is queued meanwhile and goes first."""
        for meta in self.store.iter_docs():
            while True:  # newly finished calls first
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item == _RESCAN:  # this walk covers it
                    with self._idle:
                        self._queued.discard(item)
                        self._outstanding -= 1
                        self._idle.notify_all()
                elif not self._take(item):
                    return
            if self._stopping:
                return
            fmt = (meta.get("audio") or {}).get("format", "wav")
            if fmt == "wav" and meta.get("status") in ("complete", "interrupted"):
                rec_id = str(meta["id"])
                if rec_id not in self.failed:
                    self._transcode(rec_id)

    def _transcode(self, rec_id: str) -> None:
        assert self.format is not None
        job = self.store.transcode_job(rec_id, self.format)
        if job is None:
            return
        meta = self.store.get(rec_id) or {}
        # The job names the channels from the recording's metadata (the store makes it);
        # each channel is encoded on its own, so the time it takes grows with them.
        channels = int(job.setdefault("channels", audio_layout(meta)[1]))
        audio_s = float(meta.get("duration_s") or 0) * channels
        timeout = TIMEOUT_BASE_S + TIMEOUT_PER_AUDIO_S * audio_s
        result = self._run_worker(rec_id, job, timeout)
        if result is None:
            return
        if self.store.replace_audio(job, int(result["bytes"])):
            self.done += 1
            self.last_result = result
            log.info("recording %s stored as %s", rec_id, self.format)

    def _run_worker(self, rec_id: str, job: dict[str, Any], timeout: float
                    ) -> dict[str, Any] | None:
        with self._lock:
            if self._stopping:
                return None
            child = subprocess.Popen(self.worker, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self._child = child
        try:
            out, err = child.communicate(json.dumps(job).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            err = b"timed out"
        finally:
            with self._lock:
                self._child = None
        if self._stopping:
            return None
        if child.returncode != 0:
            self.failed.add(rec_id)
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no reason"]
            log.error("recording %s: transcoding failed (%s); it stays in WAV", rec_id,
                      reason[0])
            return None
        try:
            result: dict[str, Any] = json.loads(out)
            int(result["bytes"])
        except (ValueError, KeyError, TypeError):
            self.failed.add(rec_id)
            log.error("recording %s: the transcoder's answer is unreadable", rec_id)
            return None
        return result
