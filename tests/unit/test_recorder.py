"""The recorder thread: hold during the prompt, commit, stream, drain the pipeline, close."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path
from typing import Any

from callrec.recorder import Recorder
from callrec.storage.recordings import RecordingStore, new_recording_id

RATE = 8000


def chunk(value: int, ms: int = 100) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (RATE * ms // 1000)


def run_call(tmp_path: Path, before_commit: int, after_commit: int, after_end: int,
             tail_s: float, discard: bool = False) -> tuple[dict[str, Any] | None, bytes]:
    store = RecordingStore(tmp_path)
    rec = Recorder(store, RATE)
    rec.start()
    done = threading.Event()
    result: list[dict[str, Any] | None] = []
    rec_id = new_recording_id()
    rec.feed(chunk(1))  # before the call: dropped
    rec.begin(rec_id)
    for _ in range(before_commit):
        rec.feed(chunk(2))  # during the announcement: held in memory
    if discard:
        rec.discard()
    else:
        rec.commit({"id": rec_id, "status": "recording"})
    for _ in range(after_commit):
        rec.feed(chunk(3))
    rec.finish({"id": rec_id}, lambda meta: (result.append(meta), done.set()), tail_s=tail_s)
    for _ in range(after_end):
        rec.feed(chunk(4))  # still in the pipeline when the hang-up was seen
    assert done.wait(5)
    rec.stop()
    audio = b""
    if result[0] is not None:
        with wave.open(str(store.audio_path(rec_id))) as w:
            audio = w.readframes(w.getnframes())
    store.close()
    return result[0], audio


def test_held_audio_is_written_first_and_the_tail_is_drained(tmp_path: Path) -> None:
    meta, audio = run_call(tmp_path, before_commit=3, after_commit=5, after_end=10, tail_s=0.25)
    assert meta is not None and meta["status"] == "complete"
    # 0.3 s held + 0.5 s streamed + exactly 0.25 s of tail, nothing from before the call
    assert audio == chunk(2) * 3 + chunk(3) * 5 + chunk(4, 250)
    assert meta["duration_s"] == 1.05 and meta["audio"]["bytes"] == len(audio)


def test_tail_stops_at_a_deadline_if_the_capture_dies(tmp_path: Path) -> None:
    start = time.monotonic()
    meta, audio = run_call(tmp_path, before_commit=1, after_commit=1, after_end=0, tail_s=0.2)
    assert meta is not None and audio == chunk(2) + chunk(3)
    assert 1.0 <= time.monotonic() - start < 3.0


def test_discarded_call_leaves_nothing(tmp_path: Path) -> None:
    meta, _ = run_call(tmp_path, before_commit=3, after_commit=2, after_end=2, tail_s=0.1,
                       discard=True)
    assert meta is None
    assert not list((tmp_path / "recordings").rglob("*.*"))
