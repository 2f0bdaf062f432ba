"""RecordingStore with two roots: the SD card's data directory and a USB stick (a temp dir)."""

from __future__ import annotations

from pathlib import Path

from callrec.storage.keystore import KeyStore
from callrec.storage.recordings import RecordingStore, new_recording_id

PCM_A = bytes(range(256)) * 64
PCM_B = bytes(reversed(range(256))) * 32


class Stick:
    def __init__(self) -> None:
        self.inserted = True

    def __call__(self) -> bool:
        return self.inserted


def open_two(tmp_path: Path, stick: Stick) -> RecordingStore:
    keys = KeyStore(tmp_path / "data" / "keys", tmp_path / "data" / "keys" / "device.key")
    return RecordingStore(tmp_path / "data", keys, usb_mount_point=tmp_path / "usb",
                          usb_available=stick)


def record(store: RecordingStore, volume: str, pcm: bytes, status: str = "complete") -> str:
    rec_id = new_recording_id()
    meta = {"id": rec_id, "direction": "in", "caller_number": "0612345678",
            "status": "recording"}
    writer = store.open_writer(meta, 8000, volume=volume)
    writer.write(pcm)
    if status == "recording":  # a crash mid-call: synced, never closed
        writer.sync()
        writer.abort()  # type: ignore[attr-defined]
        return rec_id
    writer.close()
    store.add({**meta, "volume": volume, "status": status,
               "audio": store.audio_info(writer, 8000)})
    return rec_id


def audio_of(store: RecordingStore, rec_id: str) -> bytes:
    source = store.open_audio(rec_id)
    try:
        return source.read_range(44, source.size())
    finally:
        source.close()


def test_recordings_go_to_their_volume_and_keys_and_index_stay_on_the_sd(tmp_path: Path) -> None:
    stick = Stick()
    store = open_two(tmp_path, stick)
    on_sd, on_usb = record(store, "sd", PCM_A), record(store, "usb", PCM_B)
    usb_root = tmp_path / "usb" / "callrec" / "recordings"
    assert store.audio_path(on_usb).is_relative_to(usb_root)
    assert store.sidecar_path(on_usb).is_relative_to(usb_root)
    assert store.audio_path(on_sd).is_relative_to(tmp_path / "data" / "recordings")
    assert store.get(on_usb)["volume"] == "usb" and store.get(on_sd)["volume"] == "sd"
    assert audio_of(store, on_usb) == PCM_B and audio_of(store, on_sd) == PCM_A
    # Keys and index only on the SD card.
    assert not list((tmp_path / "usb").rglob("*.key")) and not (tmp_path / "usb" / "index").exists()
    assert list((tmp_path / "data" / "keys").rglob(f"{on_usb}.key"))
    store.close()


def test_reindex_finds_both_and_keeps_the_removed_sticks_recordings(tmp_path: Path) -> None:
    stick = Stick()
    store = open_two(tmp_path, stick)
    on_sd, on_usb = record(store, "sd", PCM_A), record(store, "usb", PCM_B)
    assert store.reindex() == 2
    assert {store.get(on_sd)["volume"], store.get(on_usb)["volume"]} == {"sd", "usb"}

    stick.inserted = False
    assert store.reindex() == 2  # still listed while the stick is out
    assert store.recover() == [] and store.count() == 2
    try:
        audio_of(store, on_usb)
        raise AssertionError("played audio from a removed stick")
    except FileNotFoundError as exc:
        assert "USB stick" in str(exc) and "not inserted" in str(exc)
    store.close()
    again = open_two(tmp_path, stick)  # a restart without the stick
    assert again.count() == 2
    stick.inserted = True
    assert audio_of(again, on_usb) == PCM_B
    again.close()


def test_recover_works_on_both_volumes(tmp_path: Path) -> None:
    stick = Stick()
    store = open_two(tmp_path, stick)
    cut_sd = record(store, "sd", PCM_A, status="recording")
    cut_usb = record(store, "usb", PCM_B, status="recording")
    # Still being written as far as this store knows: never "recovered" under the recorder.
    assert store.recover() == [] and store.recover(volume="usb") == []
    store.close()
    store = open_two(tmp_path, stick)  # the restart after the power cut, without the stick
    stick.inserted = False
    assert store.recover() == [cut_sd]  # the stick's is left for when it is back
    stick.inserted = True  # plugged in again while running: the housekeeper's recover
    assert store.recover(volume="usb") == [cut_usb]
    for rec_id, pcm in ((cut_sd, PCM_A), (cut_usb, PCM_B)):
        meta = store.get(rec_id)
        assert meta["status"] == "interrupted" and meta["audio"]["bytes"] == len(pcm)
        assert audio_of(store, rec_id) == pcm
    assert store.get(cut_usb)["volume"] == "usb"
    store.close()


def test_erase_removes_files_on_both_volumes(tmp_path: Path) -> None:
    stick = Stick()
    store = open_two(tmp_path, stick)
    on_usb = record(store, "usb", PCM_B)
    assert store.has_files(on_usb) and store.has_audio(on_usb)
    assert store.erase(on_usb)
    assert not store.has_files(on_usb) and store.get(on_usb) is None
    assert not [p for p in (tmp_path / "usb").rglob("*") if p.is_file()]
    store.close()


def test_a_split_recording_plays_its_parts_in_order(tmp_path: Path) -> None:
    stick = Stick()
    store = open_two(tmp_path, stick)
    rec_id = new_recording_id()
    meta = {"id": rec_id, "status": "recording"}
    first = store.open_writer(meta, 8000, volume="usb")
    first.write(PCM_A + b"unsynced")  # only PCM_A counts: the rest is repeated in part 2
    first.sync()
    first.abort()  # type: ignore[attr-defined]
    parts = [{"volume": "usb", "file": first.path.name, "bytes": len(PCM_A)}]
    second = store.open_writer({**meta, "parts": [*parts, {"volume": "sd",
                                "file": store.part_file(rec_id, 2)}]}, 8000, volume="sd", part=2)
    second.write(PCM_B)
    second.close()
    parts.append({"volume": "sd", "file": second.path.name, "bytes": len(PCM_B)})
    store.add({**meta, "status": "complete", "volume": "sd", "parts": parts,
               "audio": {**store.audio_info(second, 8000), "bytes": len(PCM_A) + len(PCM_B)}})
    assert audio_of(store, rec_id) == PCM_A + PCM_B
    assert store.reindex() == 1 and store.get(rec_id)["parts"] == parts  # the SD sidecar wins
    stick.inserted = False
    assert audio_of(store, rec_id) == PCM_B  # what is there plays
    stick.inserted = True
    assert store.erase(rec_id) and not store.has_files(rec_id)
    store.close()


def test_a_stick_plugged_in_while_running_has_its_interrupted_recording_recovered(
    tmp_path: Path,
) -> None:
    """Power cut while recording to the stick; the box restarts without it; the stick comes
    back: the housekeeper's "volumes changed" run recovers and lists that recording."""
    import time

    from callrec.config import RetentionConfig
    from callrec.housekeeping import Housekeeper

    stick = Stick()
    store = open_two(tmp_path, stick)
    cut_usb = record(store, "usb", PCM_B, status="recording")
    store.close()
    stick.inserted = False
    store = open_two(tmp_path, stick)
    assert store.recover() == [] and store.get(cut_usb) is None
    hk = Housekeeper(store, RetentionConfig(keep_forever=True, max_age_days=0))
    hk.start()
    stick.inserted = True
    hk.request(Housekeeper.VOLUMES_CHANGED)
    deadline = time.monotonic() + 30
    while store.get(cut_usb) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    hk.stop()
    meta = store.get(cut_usb)
    assert meta is not None and meta["status"] == "interrupted"
    assert audio_of(store, cut_usb) == PCM_B
    store.close()
