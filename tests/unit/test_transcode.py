"""Transcoding after hang-up: the captured PCM of a finished recording becomes its stored
Ogg/Opus or FLAC file, through the real child process, the real store and its keys; what a
crash or a kill at any step leaves behind is tidied at the next start, and no audio is lost."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callrec.config import Config, StorageConfig
from callrec.storage.codec import decode_file_bytes, speech_mask
from callrec.storage.open_store import open_store, read_recording_wav
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.transcoder import Transcoder
from speechcall import speech_call

NUMBER = "0612345678"


@pytest.fixture(scope="module")
def call() -> np.ndarray:
    return speech_call()


def record(store: RecordingStore, pcm: bytes, *, parts: int = 1) -> str:
    """A finished recording made as the recorder makes it; `parts` > 1: its audio split in
    parts, as after a fall-back."""
    rec_id = new_recording_id(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    meta: dict[str, Any] = {"id": rec_id, "direction": "in", "caller_number": NUMBER,
                            "started_at": "2026-11-29T10:00:00+00:00", "status": "recording"}
    cut = [len(pcm) * k // parts // 2 * 2 for k in range(parts + 1)]
    listed = []
    for n in range(parts):
        writer = store.open_writer(meta, 8000, part=n + 1)
        writer.write(pcm[cut[n] : cut[n + 1]])
        writer.close()
        listed.append({"volume": "sd", "file": writer.path.name, "bytes": writer.data_bytes})
    final = {**meta, "status": "complete", "duration_s": len(pcm) / 16000,
             "audio": {**store.audio_info(writer, 8000), "bytes": len(pcm)}}
    if parts > 1:
        final["parts"] = listed
    store.add(final)
    return rec_id


def transcode(store: RecordingStore, fmt: str = "compact") -> Transcoder:
    """Run the transcoder's thread over every recording, as at a start, until it is idle."""
    tc = Transcoder(store, fmt)
    tc.start()
    assert tc.wait_idle(120)
    tc.stop()
    return tc


def files(store: RecordingStore, rec_id: str) -> list[str]:
    folder = store.root / rec_id[:4] / rec_id[4:6]
    return sorted(p.name for p in folder.iterdir())


def correlation_on_speech(pcm: np.ndarray, back: np.ndarray) -> float:
    speech = speech_mask(pcm) & (pcm != 0)
    x, y = pcm[speech].astype(np.float64), back[: pcm.size][speech].astype(np.float64)
    return float(np.corrcoef(x, y)[0, 1])


def test_compact_replaces_the_capture_and_plays(tmp_path: Path, call: np.ndarray) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    rec_id = record(store, call.astype("<i2").tobytes())
    assert files(store, rec_id) == [f"{rec_id}.cra", f"{rec_id}.json"]

    tc = transcode(store)
    assert tc.done == 1 and not tc.failed
    assert files(store, rec_id) == [f"{rec_id}.json", f"{rec_id}.opus.cra"]
    meta = store.get(rec_id)
    assert meta is not None
    audio = meta["audio"]
    assert (audio["format"], audio["codec"], audio["file"]) == ("opus", "opus",
                                                                  f"{rec_id}.opus.cra")
    assert audio["encryption"] and meta["status"] == "complete"
    assert store.load_sidecar(rec_id) == meta  # the sidecar says the same (reindex-safe)
    assert meta["size_bytes"] < call.size * 2 / 5  # far smaller than the PCM

    # Served as stored: an Ogg/Opus stream, decrypted by range; decodes to the same length.
    source = store.open_audio(rec_id)
    try:
        assert source.content_type == "audio/ogg; codecs=opus"
        data = source.read_range(0, source.size())
        assert data[:4] == b"OggS" and len(data) == audio["bytes"]
        assert source.read_range(100, 300) == data[100:300]
    finally:
        source.close()
    back, rate = decode_file_bytes(data)
    assert rate == 8000 and back.size == call.size  # no sample lost
    assert correlation_on_speech(call, back) >= 0.9
    # Tools read it as WAV.
    wav = read_recording_wav(config, rec_id)
    assert len(wav) == 44 + call.size * 2
    # Nothing of it is in clear on disk.
    raw = (store.root / rec_id[:4] / rec_id[4:6] / f"{rec_id}.opus.cra").read_bytes()
    assert b"OggS" not in raw and b"OpusHead" not in raw

    # Erasure takes the transcoded file too.
    assert store.erase(rec_id) and not store.has_files(rec_id)
    store.close()


def test_lossless_joins_the_parts_bit_exact(tmp_path: Path, call: np.ndarray) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    pcm = call.astype("<i2").tobytes()
    rec_id = record(store, pcm, parts=2)
    assert f"{rec_id}.part2.cra" in files(store, rec_id)
    transcode(store, "lossless")
    assert files(store, rec_id) == [f"{rec_id}.flac.cra", f"{rec_id}.json"]
    meta = store.get(rec_id)
    assert meta is not None and not meta["parts"] and meta["audio"]["format"] == "flac"
    assert read_recording_wav(config, rec_id)[44:] == pcm
    source = store.open_audio(rec_id)
    assert source.content_type == "audio/flac"
    source.close()
    store.close()


def test_without_encryption_the_file_is_plain(tmp_path: Path, call: np.ndarray) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path), encrypt=False))
    store = open_store(config)
    rec_id = record(store, call.astype("<i2").tobytes())
    transcode(store)
    assert files(store, rec_id) == [f"{rec_id}.json", f"{rec_id}.opus"]
    path = store.root / rec_id[:4] / rec_id[4:6] / f"{rec_id}.opus"
    assert path.read_bytes()[:4] == b"OggS"
    store.close()


def test_wav_format_leaves_recordings_alone(tmp_path: Path, call: np.ndarray) -> None:
    store = open_store(Config(storage=StorageConfig(data_dir=str(tmp_path))))
    rec_id = record(store, call.astype("<i2").tobytes())
    tc = Transcoder(store, "wav")
    tc.start()
    tc.submit(rec_id)
    assert not tc.enabled and tc.pending() == 0
    assert files(store, rec_id) == [f"{rec_id}.cra", f"{rec_id}.json"]
    store.close()


def test_a_failure_keeps_the_capture_and_says_why(tmp_path: Path, call: np.ndarray,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(Config(storage=StorageConfig(data_dir=str(tmp_path))))
    rec_id = record(store, call.astype("<i2").tobytes())
    capture = store.root / rec_id[:4] / rec_id[4:6] / f"{rec_id}.cra"
    damaged = bytearray(capture.read_bytes())
    damaged[200] ^= 0xFF  # a flipped bit in the first chunk: authentication fails
    capture.write_bytes(bytes(damaged))
    with caplog.at_level(logging.ERROR):
        tc = transcode(store)
    assert tc.failed == {rec_id} and tc.done == 0
    assert files(store, rec_id) == [f"{rec_id}.cra", f"{rec_id}.json"]  # nothing replaced
    assert store.get(rec_id)["audio"]["format"] == "wav"  # type: ignore[index]
    [message] = [r.getMessage() for r in caplog.records if "transcoding failed" in r.getMessage()]
    assert rec_id in message and NUMBER not in message
    store.close()


def test_an_erasure_during_transcoding_wins(tmp_path: Path, call: np.ndarray) -> None:
    store = open_store(Config(storage=StorageConfig(data_dir=str(tmp_path))))
    rec_id = record(store, call.astype("<i2").tobytes())
    job = store.transcode_job(rec_id, "opus")
    assert job is not None
    from callrec.storage.transcode import run

    result = run(json.loads(json.dumps(job)))  # the worker's own code, in this process
    out = Path(job["out"])
    assert out.exists()
    store.erase(rec_id)
    assert not store.replace_audio(job, result["bytes"])
    assert not out.exists() and not store.has_files(rec_id)
    store.close()


@pytest.mark.parametrize("moment", ["writing", "written", "indexed"])
def test_a_crash_at_any_step_is_tidied_at_start(tmp_path: Path, call: np.ndarray,
                                                moment: str) -> None:
    """The three states a power cut can leave: the output half-written (.tmp), complete but
    not yet named by the metadata, or named while the capture is still there."""
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    store = open_store(config)
    pcm = call.astype("<i2").tobytes()
    rec_id = record(store, pcm)
    job = store.transcode_job(rec_id, "opus")
    assert job is not None
    from callrec.storage.transcode import run

    result = run(json.loads(json.dumps(job)))
    out = Path(job["out"])
    if moment == "writing":
        out.rename(out.with_name(out.name + ".tmp"))
    elif moment == "indexed":
        meta = store.get(rec_id)
        assert meta is not None
        audio = {**meta["audio"], "file": out.name, "format": "opus", "codec": "opus",
                 "bytes": result["bytes"]}
        store.add({**meta, "audio": audio})  # the metadata switched, the capture not deleted
    store.close()

    store = open_store(config)  # the next start
    store.recover()
    kept = f"{rec_id}.opus.cra" if moment == "indexed" else f"{rec_id}.cra"
    assert files(store, rec_id) == sorted([kept, f"{rec_id}.json"])
    wav = read_recording_wav(config, rec_id)
    if moment != "indexed":
        assert wav[44:] == pcm
    else:
        assert len(wav) == 44 + len(pcm)
    # and transcoding then completes
    transcode(store)
    assert files(store, rec_id) == [f"{rec_id}.json", f"{rec_id}.opus.cra"]
    store.close()


def test_a_single_flac_frame_stays_wav(tmp_path: Path, call: np.ndarray) -> None:
    """Chromium cannot play a one-frame FLAC file (<= 4096 samples): such a short recording
    stays in WAV in lossless mode; Opus plays at any length."""
    store = open_store(Config(storage=StorageConfig(data_dir=str(tmp_path))))
    short = record(store, call[:4000].astype("<i2").tobytes())
    assert store.transcode_job(short, "flac") is None
    assert store.transcode_job(short, "opus") is not None
    longer = record(store, call[:4200].astype("<i2").tobytes())
    assert store.transcode_job(longer, "flac") is not None
    store.close()
