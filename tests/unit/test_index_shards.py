"""Month-sharded index: shards, month boundaries, search, migration, corruption fallback."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from callrec.storage import index_shards
from callrec.storage.atomic_json import AtomicJSONStorage
from callrec.storage.index_shards import phone_key
from callrec.storage.index_view import BLOCK_DOCS, IndexView
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.storage.wavstream import StreamingWavWriter


def rid(y: int, mo: int, d: int = 1, h: int = 12, mi: int = 0, s: int = 0) -> str:
    return new_recording_id(datetime(y, mo, d, h, mi, s, tzinfo=UTC))


def meta(rec_id: str, caller: str | None = "0612345678", **extra: Any) -> dict[str, Any]:
    return {"id": rec_id, "direction": "in", "caller_number": caller, "called_number": None,
            "status": "complete", **extra}


def shard(tmp: Path, month: str) -> Path:
    return tmp / "index" / f"{month}.json"


def test_each_month_has_its_own_shard_and_adding_touches_only_it(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.add(meta(rid(2026, 10, 5)))
    store.add(meta(rid(2026, 11, 5)))
    october = shard(tmp_path, "2026-10").read_bytes()
    stat = shard(tmp_path, "2026-10").stat()
    store.add(meta(rid(2026, 11, 6)))
    assert shard(tmp_path, "2026-10").read_bytes() == october
    assert shard(tmp_path, "2026-10").stat().st_ino == stat.st_ino
    assert len(TinyDB(shard(tmp_path, "2026-11"), storage=AtomicJSONStorage)
               .table("recordings").all()) == 2
    manifest = json.loads((tmp_path / "index" / "recordings.json").read_bytes())
    assert sorted(manifest["shards"]) == ["2026-10", "2026-11"]
    assert oct(shard(tmp_path, "2026-11").stat().st_mode & 0o777) == "0o600"
    store.close()


def test_month_boundaries_and_order_across_shards(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    ids = [rid(2025, 12, 31, 23, 59, 59), rid(2026, 1, 1, 0, 0, 0), rid(2026, 1, 31, 23, 59, 59),
           rid(2026, 2, 1, 0, 0, 0)]
    for rec_id in reversed(ids):
        store.add(meta(rec_id))
    assert {p.name for p in (tmp_path / "index").glob("????-??.json")} == {
        "2025-12.json", "2026-01.json", "2026-02.json"}
    assert [r["id"] for r in store.page(0, 10)[0]] == ids[::-1]
    assert [r["id"] for r in store.page(1, 2)[0]] == [ids[2], ids[1]]
    assert store.page(3, 5) == ([store.get(ids[0])], 4)
    assert store.page(4, 5) == ([], 4) and store.page(-3, 1)[0][0]["id"] == ids[3]
    assert store.page(0, 0) == ([], 4)
    store.close()
    again = RecordingStore(tmp_path)
    assert [r["id"] for r in again.page(0, 10)[0]] == ids[::-1]
    assert again.erase(ids[1]) and again.count() == 3
    again.close()
    assert [r["id"] for r in RecordingStore(tmp_path).page(0, 10)[0]] == [ids[3], ids[2], ids[0]]


def test_search_by_number(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    a, b, c, d = rid(2026, 9, 1), rid(2026, 10, 1), rid(2026, 11, 1), rid(2026, 11, 2)
    store.add(meta(a, "+33 6 12 34 56 78"))
    store.add(meta(b, "0612345678"))
    store.add(meta(c, None, direction="out", called_number="06.12.34.56.78"))
    store.add(meta(d, "0799999999"))
    assert [r["id"] for r in store.search_number("06 12 34 56 78")] == [c, b]
    assert [r["id"] for r in store.search_number("+33612345678")] == [a]
    assert store.search_number("") == [] and store.search_number("abc") == []
    assert store.search_number("0612") == []  # whole numbers only
    assert store.search_number("0612345678")[0]["called_number"] == "06.12.34.56.78"  # as stored
    store.erase(b)
    assert [r["id"] for r in store.search_number("0612345678")] == [c]
    store.add(meta(c, None, direction="out", called_number="0799999999"))  # corrected
    assert [r["id"] for r in store.search_number("0799999999")] == [d, c]
    assert store.search_number("0612345678") == []
    store.close()
    again = RecordingStore(tmp_path)
    assert [r["id"] for r in again.search_number("0799999999")] == [d, c]
    again.close()


def test_phone_key() -> None:
    assert phone_key("+33 (0)6-12.34") == "33061234"
    assert phone_key(None) == "" and phone_key(612) == ""


def test_add_again_updates_fields_like_an_upsert(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    rec_id = rid(2026, 11, 3)
    store.add(meta(rec_id, note="kept"))
    store.add({"id": rec_id, "status": "interrupted"})
    got = store.get(rec_id)
    assert got.pop("size_bytes") > 0  # the sidecar on disk, counted by retention
    assert got == {**meta(rec_id, note="kept"), "status": "interrupted"}
    store.close()
    assert RecordingStore(tmp_path).get(rec_id)["note"] == "kept"


def _legacy(tmp_path: Path, metas: list[dict[str, Any]]) -> Path:
    """The index as the single-file version left it (and the sidecars, as it wrote them)."""
    path = tmp_path / "index" / "recordings.json"
    db = TinyDB(path, storage=AtomicJSONStorage)
    db.table("recordings").insert_multiple(metas)
    db.close()
    for m in metas:
        folder = tmp_path / "recordings" / m["id"][:4] / m["id"][4:6]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{m['id']}.json").write_text(json.dumps(m))
    return path


def test_old_single_file_index_is_migrated_and_kept(tmp_path: Path) -> None:
    metas = [meta(rid(2026, mo, 2)) for mo in (9, 10, 10, 11)]
    old = _legacy(tmp_path, metas).read_bytes()
    store = RecordingStore(tmp_path)
    assert store.count() == 4
    assert {r["id"] for r in store.page(0, 10)[0]} == {m["id"] for m in metas}
    assert (tmp_path / "index" / "recordings.v1.json").read_bytes() == old
    assert {p.name for p in (tmp_path / "index").glob("????-??.json")} == {
        "2026-09.json", "2026-10.json", "2026-11.json"}
    store.add(meta(rid(2026, 11, 20)))
    store.close()
    again = RecordingStore(tmp_path)  # no second migration
    assert again.count() == 5
    assert (tmp_path / "index" / "recordings.v1.json").read_bytes() == old
    again.close()


def test_empty_old_index_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "recordings.json").write_text('{"recordings": {}}')
    store = RecordingStore(tmp_path)
    assert store.count() == 0
    store.add(meta(rid(2026, 11, 1)))
    store.close()
    assert RecordingStore(tmp_path).count() == 1


def _three_months(tmp_path: Path) -> tuple[RecordingStore, dict[str, list[str]]]:
    store = RecordingStore(tmp_path)
    ids: dict[str, list[str]] = {}
    for mo in (9, 10, 11):
        for day in (3, 4, 5):
            rec_id = rid(2026, mo, day)
            store.add(meta(rec_id))
            ids.setdefault(f"2026-{mo:02d}", []).append(rec_id)
    return store, ids


@pytest.mark.parametrize("damage", ["torn", "garbage", "empty", "not_tinydb", "no_ids"])
def test_corrupt_shard_falls_back_to_prev_and_sidecars(tmp_path: Path, damage: str) -> None:
    store, ids = _three_months(tmp_path)
    store.close()
    path = shard(tmp_path, "2026-10")
    assert path.with_name("2026-10.json.prev").exists()  # the version before the last add
    raw = path.read_bytes()
    path.write_bytes({"torn": raw[: len(raw) // 2], "garbage": raw + b"\x00garbage",
                      "empty": b"", "not_tinydb": b"[1, 2]",
                      "no_ids": b'{"recordings": {"1": {"x": 1}}}'}[damage])
    # A sidecar that cannot be read: its entry is taken from .prev.
    unreadable = ids["2026-10"][0]
    sidecar = tmp_path / "recordings" / "2026" / "10" / f"{unreadable}.json"
    sidecar.write_bytes(b"{not json")
    again = RecordingStore(tmp_path)
    assert again.count() == 9
    assert {r["id"] for r in again.page(0, 20)[0]} == {i for v in ids.values() for i in v}
    assert again.get(unreadable) is not None
    assert list((tmp_path / "index").glob("2026-10.json.corrupt-*")) or damage == "empty"
    again.close()
    # The rebuilt shard is whole again.
    data = json.loads(path.read_bytes())
    assert {d["id"] for d in data["recordings"].values()} == set(ids["2026-10"])


def test_missing_shard_is_rebuilt_from_sidecars(tmp_path: Path) -> None:
    store, ids = _three_months(tmp_path)
    store.close()
    for p in (tmp_path / "index").glob("2026-09.json*"):
        p.unlink()  # the shard and its .prev
    again = RecordingStore(tmp_path)
    assert again.count() == 9 and all(again.get(i) for i in ids["2026-09"])
    again.close()
    assert shard(tmp_path, "2026-09").exists()


def test_torn_write_between_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hard links (FAT): the shard is renamed to .prev, then the crash comes."""
    store, ids = _three_months(tmp_path)

    def no_link(src: object, dst: object) -> None:
        raise OSError("no hard links here")

    class Crash(Exception):
        pass

    def crash(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data[:10])  # half-written temporary file, never renamed
        raise Crash

    monkeypatch.setattr(index_shards.os, "link", no_link)
    monkeypatch.setattr(index_shards, "write_atomic", crash)
    late = rid(2026, 11, 20)
    with pytest.raises(Crash):
        store.add(meta(late))  # sidecar written, shard moved to .prev, then power lost
    monkeypatch.undo()
    assert not shard(tmp_path, "2026-11").exists()
    again = RecordingStore(tmp_path)
    # The month comes back from .prev and the sidecars, including the one being added.
    assert {r["id"] for r in again.page(0, 3)[0]} == {late, *ids["2026-11"][1:]}
    assert again.count() == 10
    again.close()


def test_each_write_keeps_the_previous_version(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    a, b = rid(2026, 11, 1), rid(2026, 11, 2)
    store.add(meta(a))
    store.add(meta(b))
    prev = json.loads(shard(tmp_path, "2026-11").with_name("2026-11.json.prev").read_bytes())
    assert [d["id"] for d in prev["recordings"].values()] == [a]
    store.close()


def test_corrupt_manifest_rebuilds_from_sidecars(tmp_path: Path) -> None:
    store, _ids = _three_months(tmp_path)
    store.close()
    (tmp_path / "index" / "recordings.json").write_bytes(b'{"meta": {"form')
    shard(tmp_path, "2026-11").unlink()
    again = RecordingStore(tmp_path)
    assert again.count() == 9
    assert list((tmp_path / "index").glob("recordings.corrupt-*"))
    again.close()


def test_lost_manifest_uses_the_shards(tmp_path: Path) -> None:
    store, _ids = _three_months(tmp_path)
    store.close()
    (tmp_path / "index" / "recordings.json").unlink()
    again = RecordingStore(tmp_path)
    assert again.count() == 9
    again.close()
    assert (tmp_path / "index" / "recordings.json").exists()


def test_reindex_drops_shards_without_sidecars(tmp_path: Path) -> None:
    store, ids = _three_months(tmp_path)
    for rec_id in ids["2026-09"]:
        store.sidecar_path(rec_id).unlink()
    assert store.reindex() == 6
    assert not shard(tmp_path, "2026-09").exists()
    assert store.count() == 6 and store.get(ids["2026-09"][0]) is None
    store.close()
    assert RecordingStore(tmp_path).count() == 6


def test_recover_skips_indexed_sidecars_but_finds_unindexed_ones(tmp_path: Path) -> None:
    store, _ids = _three_months(tmp_path)
    lost, cut = rid(2026, 11, 21), rid(2026, 11, 22)
    for rec_id in (lost, cut):
        store.write_sidecar({"id": rec_id, "status": "recording", "audio": {"sample_rate": 8000}})
    store.prepare(lost).write_bytes(b"")  # no audio at all: cannot be recovered
    w = StreamingWavWriter(store.prepare(cut), 8000)
    w.write(b"\x01\x00" * 4000)
    w.sync()
    os.close(w._fd)  # the process dies
    store.close()
    again = RecordingStore(tmp_path)
    assert again.recover() == [cut]
    assert again.get(lost) is None and again.get(cut)["duration_s"] == 0.5
    assert again.count() == 10
    again.close()


def test_concurrent_adds(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    made: list[str] = []

    def worker(day: int) -> None:
        for h in range(10):
            rec_id = rid(2026, 10 + day % 2, day, h)
            store.add(meta(rec_id))
            made.append(rec_id)

    threads = [threading.Thread(target=worker, args=(d,)) for d in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 40
    store.close()
    again = RecordingStore(tmp_path)
    assert [r["id"] for r in again.page(0, 100)[0]] == sorted(made, reverse=True)
    again.close()


def test_view_packs_blocks_and_keeps_documents() -> None:
    view = IndexView()
    docs = [{"id": f"202611{d:02d}T000000Z-{i:08x}", "caller_number": f"06{i % 7}", "n": i}
            for d in range(1, 11) for i in range(BLOCK_DOCS)]
    view.extend(docs[: len(docs) // 2])
    for doc in docs[len(docs) // 2:]:
        view.put(dict(doc))
    assert view.ids == [d["id"] for d in docs]
    assert all(view.doc(i) == d for i, d in enumerate(docs))
    big = {"id": docs[3]["id"], "blob": "x" * (1 << 21)}
    view.put(big)
    assert view.doc(3)["blob"] == big["blob"] and view.doc(3)["n"] == 3
    assert view.drop(docs[5]["id"]) and not view.drop(docs[5]["id"])
    assert len(view) == len(docs) - 1
    assert len(view.phones["060"]) == sum(1 for d in docs if d["n"] % 7 == 0)
    assert len(view.month_docs("202611")) == len(docs) - 1 and view.month_docs("202612") == []


def test_shard_and_tmp_files_hold_no_numbers(tmp_path: Path) -> None:
    store, _ids = _three_months(tmp_path)
    assert not any("0612345678" in p.name for p in tmp_path.rglob("*"))
    assert not list((tmp_path / "index").glob(".*.tmp"))
    store.close()
    os.sync()


def test_failed_shard_write_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, ids = _three_months(tmp_path)

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_shards, "write_atomic", full)
    with pytest.raises(OSError):
        store.add(meta(rid(2026, 11, 23)))
    monkeypatch.undo()
    store.add(meta(rid(2026, 11, 24)))
    store.close()
    data = json.loads(shard(tmp_path, "2026-11").read_bytes())
    assert {d["id"] for d in data["recordings"].values()} >= set(ids["2026-11"])
    assert RecordingStore(tmp_path).count() == 10
