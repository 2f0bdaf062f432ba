"""Day-sharded index: shards, day boundaries, search, migration, corruption fallback."""

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


def shard(tmp: Path, day: str) -> Path:
    return tmp / "index" / f"{day}.json"


def test_each_day_has_its_own_shard_and_adding_touches_only_it(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.add(meta(rid(2026, 11, 5)))
    store.add(meta(rid(2026, 11, 6)))
    fifth = shard(tmp_path, "2026-11-05").read_bytes()
    stat = shard(tmp_path, "2026-11-05").stat()
    store.add(meta(rid(2026, 11, 6, 13)))
    assert shard(tmp_path, "2026-11-05").read_bytes() == fifth
    assert shard(tmp_path, "2026-11-05").stat().st_ino == stat.st_ino
    assert len(TinyDB(shard(tmp_path, "2026-11-06"), storage=AtomicJSONStorage)
               .table("recordings").all()) == 2
    manifest = json.loads((tmp_path / "index" / "recordings.json").read_bytes())
    assert sorted(manifest["shards"]) == ["2026-11-05", "2026-11-06"]
    assert manifest["meta"]["format"] == 3
    assert oct(shard(tmp_path, "2026-11-06").stat().st_mode & 0o777) == "0o600"
    store.close()


def test_day_and_month_boundaries_and_order_across_shards(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    ids = [rid(2025, 12, 31, 23, 59, 59), rid(2026, 1, 1, 0, 0, 0), rid(2026, 1, 31, 23, 59, 59),
           rid(2026, 2, 1, 0, 0, 0)]
    for rec_id in reversed(ids):
        store.add(meta(rec_id))
    assert {p.name for p in (tmp_path / "index").glob("????-??-??.json")} == {
        "2025-12-31.json", "2026-01-01.json", "2026-01-31.json", "2026-02-01.json"}
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
    assert {p.name for p in (tmp_path / "index").glob("????-??-??.json")} == {
        "2026-09-02.json", "2026-10-02.json", "2026-11-02.json"}
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
    """Three recordings a month, two of them on the 4th: ids by day."""
    store = RecordingStore(tmp_path)
    ids: dict[str, list[str]] = {}
    for mo in (9, 10, 11):
        for day, hour in ((3, 12), (4, 12), (4, 13)):
            rec_id = rid(2026, mo, day, hour)
            store.add(meta(rec_id))
            ids.setdefault(f"2026-{mo:02d}-{day:02d}", []).append(rec_id)
    return store, ids


@pytest.mark.parametrize("damage", ["torn", "garbage", "empty", "not_tinydb", "no_ids"])
def test_corrupt_shard_falls_back_to_prev_and_sidecars(tmp_path: Path, damage: str) -> None:
    store, ids = _three_months(tmp_path)
    store.close()
    path = shard(tmp_path, "2026-10-04")
    assert path.with_name("2026-10-04.json.prev").exists()  # the version before the last add
    raw = path.read_bytes()
    path.write_bytes({"torn": raw[: len(raw) // 2], "garbage": raw + b"\x00garbage",
                      "empty": b"", "not_tinydb": b"[1, 2]",
                      "no_ids": b'{"recordings": {"1": {"x": 1}}}'}[damage])
    # A sidecar that cannot be read: its entry is taken from .prev.
    unreadable = ids["2026-10-04"][0]
    sidecar = tmp_path / "recordings" / "2026" / "10" / f"{unreadable}.json"
    sidecar.write_bytes(b"{not json")
    again = RecordingStore(tmp_path)
    assert again.count() == 9
    assert {r["id"] for r in again.page(0, 20)[0]} == {i for v in ids.values() for i in v}
    assert again.get(unreadable) is not None
    assert list((tmp_path / "index").glob("2026-10-04.json.corrupt-*")) or damage == "empty"
    again.close()
    # The rebuilt shard is whole again.
    data = json.loads(path.read_bytes())
    assert {d["id"] for d in data["recordings"].values()} == set(ids["2026-10-04"])


def test_missing_shard_is_rebuilt_from_sidecars(tmp_path: Path) -> None:
    store, ids = _three_months(tmp_path)
    store.close()
    for p in (tmp_path / "index").glob("2026-09-04.json*"):
        p.unlink()  # the shard and its .prev
    again = RecordingStore(tmp_path)
    assert again.count() == 9 and all(again.get(i) for i in ids["2026-09-04"])
    again.close()
    assert shard(tmp_path, "2026-09-04").exists()


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
    late = rid(2026, 11, 4, 20)
    with pytest.raises(Crash):
        store.add(meta(late))  # sidecar written, shard moved to .prev, then power lost
    monkeypatch.undo()
    assert not shard(tmp_path, "2026-11-04").exists()
    again = RecordingStore(tmp_path)
    # The day comes back from .prev and the sidecars, including the one being added.
    assert {r["id"] for r in again.page(0, 3)[0]} == {late, *ids["2026-11-04"]}
    assert again.count() == 10
    again.close()


def test_each_write_keeps_the_previous_version(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    a, b = rid(2026, 11, 1), rid(2026, 11, 1, 13)
    store.add(meta(a))
    store.add(meta(b))
    prev = json.loads(shard(tmp_path, "2026-11-01").with_name("2026-11-01.json.prev")
                      .read_bytes())
    assert [d["id"] for d in prev["recordings"].values()] == [a]
    store.close()


def test_corrupt_manifest_rebuilds_from_sidecars(tmp_path: Path) -> None:
    store, _ids = _three_months(tmp_path)
    store.close()
    (tmp_path / "index" / "recordings.json").write_bytes(b'{"meta": {"form')
    shard(tmp_path, "2026-11-04").unlink()
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
    for rec_id in ids["2026-09-03"] + ids["2026-09-04"]:
        store.sidecar_path(rec_id).unlink()
    assert store.reindex() == 6
    assert not shard(tmp_path, "2026-09-04").exists()
    assert not shard(tmp_path, "2026-09-04").with_name("2026-09-04.json.prev").exists()
    assert store.count() == 6 and store.get(ids["2026-09-04"][0]) is None
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
    assert list(view.ids) == [d["id"] for d in docs] and view.ids[-1] == docs[-1]["id"]
    assert all(view.doc(i) == d for i, d in enumerate(docs))
    big = {"id": docs[3]["id"], "blob": "x" * (1 << 21)}
    view.put(big)
    assert view.doc(3)["blob"] == big["blob"] and view.doc(3)["n"] == 3
    assert view.drop(docs[5]["id"]) and not view.drop(docs[5]["id"])
    assert len(view) == len(docs) - 1
    assert len(view.search("060")) == sum(1 for d in docs if d["n"] % 7 == 0)
    assert len(view.prefix_docs("202611")) == len(docs) - 1 and view.prefix_docs("202612") == []
    assert [d["id"] for d in view.prefix_docs("20261102")] == [
        d["id"] for d in docs if d["id"].startswith("20261102")]
    assert view.find("not an id") is None and view.find(docs[5]["id"]) is None


def test_view_frees_blocks_whose_documents_all_changed() -> None:
    view = IndexView()
    docs = [{"id": f"20261101T000000Z-{i:08x}", "n": i} for i in range(2 * BLOCK_DOCS)]
    view.extend(docs)
    for doc in docs[:BLOCK_DOCS // 2 + 1]:  # most of the first block changes: it is unpacked
        view.put({**doc, "n": -1})
    assert view._blocks[0] == b"" and view._blocks[1]
    assert [view.doc(i)["n"] for i in range(BLOCK_DOCS)] == (
        [-1] * (BLOCK_DOCS // 2 + 1) + list(range(BLOCK_DOCS // 2 + 1, BLOCK_DOCS)))
    for doc in docs[BLOCK_DOCS:]:
        assert view.drop(doc["id"])
    assert view._blocks[1] == b"" and len(view) == BLOCK_DOCS


def test_view_changes_keep_documents_and_bound_stale_copies() -> None:
    import random

    rng = random.Random(5)
    view, model = IndexView(), {}
    first = [{"id": f"202611{d:02d}T000000Z-{i:08x}", "n": i, "caller_number": f"06{i % 5}"}
             for d in range(1, 8) for i in range(100)]
    view.extend(first)
    model = {d["id"]: d for d in first}
    for step in range(3000):
        rec_id = f"202611{rng.randrange(1, 9):02d}T000000Z-{rng.randrange(150):08x}"
        if rng.random() < 0.3:
            assert view.drop(rec_id) == (model.pop(rec_id, None) is not None)
        else:
            doc = {"id": rec_id, "n": step, "caller_number": f"06{step % 5}"}
            model[rec_id] = {**model.get(rec_id, {}), **doc}
            view.put(doc)
    assert list(view.ids) == sorted(model)
    assert all(view.doc(i) == model[rec_id] for i, rec_id in enumerate(view.ids))
    assert len(view.search("063")) == sum(1 for d in model.values() if d["n"] % 5 == 3)
    live = sum(view._live)
    assert live + len(view._loose) == len(view)
    stale = sum(view._packed[b] - view._live[b] for b in range(len(view._blocks))
                if view._blocks[b])
    assert stale <= live + BLOCK_DOCS  # each block at least half current


def test_search_confirms_hash_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two numbers whose hashes collide: each search returns its own recordings only."""
    from callrec.storage import index_view

    monkeypatch.setattr(index_view, "phone_hash", lambda key: 7 if key else 0)
    view = IndexView()
    a = {"id": "20261101T000000Z-00000001", "caller_number": "0612345678"}
    b = {"id": "20261101T000000Z-00000002", "caller_number": None, "called_number": "0799"}
    c = {"id": "20261101T000000Z-00000003", "caller_number": "0799", "called_number": "0799"}
    view.extend([a, b, c])
    assert view.search("0612345678") == [a]
    assert view.search("0799") == [b, c]  # c once, though both its numbers match


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
        store.add(meta(rid(2026, 11, 4, 20)))
    monkeypatch.undo()
    store.add(meta(rid(2026, 11, 4, 21)))
    store.close()
    data = json.loads(shard(tmp_path, "2026-11-04").read_bytes())
    assert {d["id"] for d in data["recordings"].values()} >= set(ids["2026-11-04"])
    assert RecordingStore(tmp_path).count() == 10


def _month_shards(tmp_path: Path, metas: list[dict[str, Any]]) -> None:
    """The index as format 2 left it: a shard per month (and .prev), a manifest naming them."""
    index = tmp_path / "index"
    index.mkdir(parents=True, exist_ok=True)
    by_month: dict[str, list[dict[str, Any]]] = {}
    for m in metas:
        by_month.setdefault(f"{m['id'][:4]}-{m['id'][4:6]}", []).append(m)
        folder = tmp_path / "recordings" / m["id"][:4] / m["id"][4:6]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{m['id']}.json").write_text(json.dumps(m))
    for month, docs in by_month.items():
        data = json.dumps(index_shards.shard_document(docs))
        (index / f"{month}.json").write_text(data)
        (index / f"{month}.json.prev").write_text(data)
    (index / "recordings.json").write_text(json.dumps(
        {"meta": {"format": 2}, "shards": {m: {"file": f"{m}.json"} for m in by_month}}))


def test_month_shards_are_split_into_day_shards(tmp_path: Path) -> None:
    metas = [meta(rid(2026, mo, d, h)) for mo, d, h in
             ((9, 30, 23), (10, 1, 0), (10, 1, 9), (10, 31, 12), (11, 2, 8))]
    _month_shards(tmp_path, metas)
    store = RecordingStore(tmp_path)
    assert [r["id"] for r in store.page(0, 10)[0]] == [m["id"] for m in metas][::-1]
    names = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert names == ["2026-09-30.json", "2026-10-01.json", "2026-10-31.json", "2026-11-02.json",
                     "recordings.json"]
    manifest = json.loads((tmp_path / "index" / "recordings.json").read_bytes())
    assert manifest["meta"]["format"] == 3 and len(manifest["shards"]) == 4
    assert store.search_number("0612345678")[0]["id"] == metas[-1]["id"]
    before = store.bytes_written
    store.add(meta(rid(2026, 10, 1, 10)))
    assert store.bytes_written - before < 1000  # that day's two recordings, not the month's
    store.close()
    assert RecordingStore(tmp_path).count() == 6


def test_a_split_cut_short_is_done_again(tmp_path: Path) -> None:
    """Day shards and the new manifest written, then the power cut: the month file is left."""
    metas = [meta(rid(2026, 10, d)) for d in (1, 2, 3)]
    _month_shards(tmp_path, metas)
    RecordingStore(tmp_path).close()
    month = json.dumps(index_shards.shard_document(metas))
    (tmp_path / "index" / "2026-10.json").write_text(month)
    store = RecordingStore(tmp_path)
    assert store.count() == 3 and not (tmp_path / "index" / "2026-10.json").exists()
    store.close()


def test_a_corrupt_month_shard_is_split_from_the_sidecars(tmp_path: Path) -> None:
    metas = [meta(rid(2026, 10, d)) for d in (1, 2, 3)] + [meta(rid(2026, 11, 1))]
    _month_shards(tmp_path, metas)
    (tmp_path / "index" / "2026-10.json").write_bytes(b'{"recordings": {"1": {"id": ')
    (tmp_path / "index" / "2026-11.json").unlink()  # listed in the manifest, lost
    (tmp_path / "index" / "2026-11.json.prev").unlink()
    store = RecordingStore(tmp_path)
    assert sorted(r["id"] for r in store.page(0, 10)[0]) == sorted(m["id"] for m in metas)
    assert list((tmp_path / "index").glob("2026-10.json.corrupt-*"))
    assert not [p for p in (tmp_path / "index").iterdir()
                if p.name.endswith((".json", ".prev")) and len(p.name.split(".")[0]) == 7]
    store.close()


def test_view_keys_sort_as_the_ids_and_give_them_back() -> None:
    import random

    from callrec.storage.index_view import id_key, key_id, valid_id

    rng = random.Random(4)
    ids = sorted({new_recording_id(datetime(rng.randrange(1970, 2101), rng.randrange(1, 13),
                                            rng.randrange(1, 29), rng.randrange(24),
                                            rng.randrange(60), rng.randrange(60), tzinfo=UTC))
                  for _ in range(2000)} | {"19700101T000000Z-00000000",
                                           "21001231T235960Z-ffffffff"})
    keys = [id_key(i) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(ids)  # type: ignore[type-var]
    assert all(key_id(k) == i for k, i in zip(keys, ids, strict=True))  # type: ignore[arg-type]
    for bad in ("20261129T100000Z-0a1b2c3d\n", "21010101T000000Z-00000000",
                "20261329T100000Z-0a1b2c3d", "2026112９T100000Z-0a1b2c3d", None, "x"):
        assert not valid_id(bad)
