"""Recordings store, atomic index, streaming WAV and crash recovery."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

from callrec.storage.recordings import RecordingStore, is_recording_id, new_recording_id
from callrec.storage.wavstream import StreamingWavWriter, repair


def tone(n: int) -> bytes:
    return b"".join(((i * 37) % 20000 - 10000).to_bytes(2, "little", signed=True)
                    for i in range(n))


def make_recording(store: RecordingStore, pcm: bytes, **extra) -> dict:
    rec_id = new_recording_id()
    w = StreamingWavWriter(store.prepare(rec_id), 8000)
    w.write(pcm)
    w.close()
    meta = {"id": rec_id, "started_at": "2026-11-29T10:00:00+00:00", "direction": "in",
            "caller_number": "0612345678", "status": "complete", **extra}
    store.add(meta)
    return meta


def test_ids_hold_no_personal_data_and_sort_by_time() -> None:
    a = new_recording_id()
    assert is_recording_id(a)
    assert not is_recording_id("../../etc/passwd")
    assert not is_recording_id(a + "x")


def test_streaming_wav_is_playable_before_and_after_close(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    w = StreamingWavWriter(path, 8000)
    pcm = tone(8000)
    w.write(pcm)
    w.sync()
    # Before close (as after a crash), a reader still finds all the audio.
    with wave.open(str(path)) as r:
        assert r.getframerate() == 8000
        assert r.readframes(10**6) == pcm
    w.close()
    with wave.open(str(path)) as r:
        assert r.getnframes() == 8000
        assert r.readframes(r.getnframes()) == pcm


def test_repair_fixes_header_and_drops_half_sample(tmp_path: Path) -> None:
    path = tmp_path / "b.wav"
    w = StreamingWavWriter(path, 8000)
    w.write(tone(4000))
    w.sync()
    with open(path, "ab") as f:
        f.write(b"\x01")  # half a sample: the crash hit mid-write
    assert repair(path) == 8000
    with wave.open(str(path)) as r:
        assert r.getnframes() == 4000


def test_add_get_page_erase(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    metas = [make_recording(store, tone(800)) for _ in range(5)]
    rows, total = store.page(0, 2)
    assert total == 5
    assert [r["id"] for r in rows] == sorted((m["id"] for m in metas), reverse=True)[:2]
    target = metas[2]["id"]
    assert store.get(target)["caller_number"] == "0612345678"
    assert store.erase(target)
    assert store.get(target) is None
    assert not store.audio_path(target).exists() and not store.sidecar_path(target).exists()
    assert store.count() == 4
    assert not store.erase(target)
    store.close()
    # The index on disk agrees after a restart.
    again = RecordingStore(tmp_path)
    assert again.count() == 4 and again.get(target) is None
    again.close()


def test_file_names_hold_no_phone_numbers(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    make_recording(store, tone(800))
    names = [p.name for p in tmp_path.rglob("*")]
    assert not any("0612345678" in n for n in names)
    store.close()


def test_corrupt_index_is_rebuilt_from_sidecars(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    ids = {make_recording(store, tone(800))["id"] for _ in range(3)}
    store.close()
    index = tmp_path / "index" / "recordings.json"
    index.write_bytes(index.read_bytes()[:40])  # torn write
    again = RecordingStore(tmp_path)
    assert {r["id"] for r in again.page(0, 10)[0]} == ids
    assert list((tmp_path / "index").glob("recordings.corrupt-*"))
    again.close()


def test_index_writes_are_atomic(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    make_recording(store, tone(80))
    index = tmp_path / "index" / "recordings.json"
    json.loads(index.read_bytes())  # always a whole document
    assert not list((tmp_path / "index").glob(".*.tmp"))
    assert oct(index.stat().st_mode & 0o777) == "0o600"
    store.close()


def test_interrupted_recording_is_recovered(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    rec_id = new_recording_id()
    store.write_sidecar({"id": rec_id, "status": "recording", "direction": "in",
                         "audio": {"sample_rate": 8000}})
    w = StreamingWavWriter(store.prepare(rec_id), 8000)
    w.write(tone(12000))
    w.sync()
    os.close(w._fd)  # the process dies: no close(), header never patched
    store.close()
    again = RecordingStore(tmp_path)
    assert again.get(rec_id) is None
    assert again.recover() == [rec_id]
    meta = again.get(rec_id)
    assert meta["status"] == "interrupted" and meta["duration_s"] == 1.5
    with wave.open(str(again.audio_path(rec_id))) as r:
        assert r.getnframes() == 12000
    again.close()


def test_index_entry_without_sidecar_is_dropped_at_recover(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    meta = make_recording(store, tone(80))
    store.sidecar_path(meta["id"]).unlink()  # crash during an erasure
    store.recover()
    assert store.get(meta["id"]) is None
    store.close()
