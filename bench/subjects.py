"""Benchmark of requests about a person: an export of 100 recordings, an erasure among 100,000.

Export: a data directory with encryption at rest gets 100 recordings of one number, each
`--seconds` (60) of captured audio (the encrypted PCM the recorder writes: the largest stored
form; Ogg/Opus would be ~8 times smaller), plus 300 access log entries about them. A fresh
process then builds the ZIP exactly as the web UI streams it (`Subjects.export_plan` +
`ZipPlan.iter_bytes`, the information sheet reading the access log) and writes it to
/dev/null: wall time, bytes (checked against the length announced before the first byte),
throughput, and the RSS of that process before the export and at its peak (VmHWM).

Erasure: bench/index.py's generator makes 100,000 recordings (sealed day shards, ~4,000
numbers over 36 months); the recordings of the chosen subjects get a real key and a 960 kB
audio file. A fresh process opens the store (not measured) and erases each subject with
`Subjects.erase` (as the web UI and the CLI do), timing apart:
  - find: the number search over the index (every stored form of the number);
  - index: removing the entries (rewriting the day shards they are in, and the manifest);
  - files: key destruction, audio and sidecar deletion, directory fsyncs;
  - records: the request register, the receipt, the access log entry.
The goal (issue 5) is find + index + records <= 1 s, plus the file deletion.

    python bench/subjects.py [--recordings 100] [--seconds 60] [--n 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import default_json, machine, rss_mb, write_result

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH))

SUBJECT = "06 12 34 56 78"


def _config(data: Path) -> Any:
    from callrec.config import Config, StorageConfig

    return Config(storage=StorageConfig(data_dir=str(data), key_binding="none",
                                        usb_mount_point=str(data / "no-usb")))


def _service(store: Any, config: Any) -> Any:
    from callrec.audit import open_audit
    from callrec.privacy.donotrecord import DoNotRecord, sealer_for
    from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
    from callrec.privacy.requests import RequestBook
    from callrec.privacy.subjects import Subjects

    journal = open_audit(config, store.keys, clock_trusted=lambda: True)
    dnr = config.privacy.do_not_record_path(config.data_dir)
    return Subjects(
        store, RequestBook.for_data_dir(config.data_dir, store.keys),
        Pseudonymizer(pseudonym_key(store.keys, config.data_dir)),
        lambda: DoNotRecord.load(dnr, sealer_for(store.keys)),
        lambda action, target, reason, details: journal.record(
            "bench", action, target, reason, details)), journal


# -- export ------------------------------------------------------------------------------------
def make_export_data(data: Path, count: int, seconds: float) -> None:
    from callrec.storage.open_store import open_store

    config = _config(data)
    store = open_store(config)
    journal = _service(store, config)[1]
    block = os.urandom(16000)  # one second: random, so nothing compresses or dedupes
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    ids = []
    for i in range(count):
        started = start + timedelta(hours=7 * i)
        rec_id = f"{started:%Y%m%dT%H%M%SZ}-{i:08x}"
        meta = {"id": rec_id, "direction": "in" if i % 3 else "out", "line": "line1",
                "status": "recording", "started_at": started.isoformat(),
                "caller_number": "0612345678" if i % 3 else None,
                "called_number": None if i % 3 else "+33612345678",
                "duration_s": seconds}
        writer = store.open_writer(meta, 8000)
        for _ in range(int(seconds)):
            writer.write(block)
        writer.close()
        store.add({**meta, "status": "complete", "audio": store.audio_info(writer, 8000)})
        ids.append(rec_id)
    journal.record_many([("marie", "recording.play", ids[i % count], "", {"via": "web"})
                         for i in range(300)])
    store.close()


def export_child(data: Path) -> dict[str, Any]:
    from callrec.privacy.sheet import access_entries, information_sheet
    from callrec.storage.open_store import open_store

    config = _config(data)
    store = open_store(config)
    svc, journal = _service(store, config)
    before = rss_mb()["VmRSS"]
    t = time.perf_counter()

    def sheet(docs: list[dict[str, Any]]) -> str:
        return information_sheet(config.controller, config.retention, docs,
                                 access_entries(journal, [d["id"] for d in docs]), "now")

    plan = svc.export_plan(SUBJECT, sheet, "bench")
    planned = time.perf_counter() - t
    written = 0
    first_byte = None
    with open(os.devnull, "wb") as sink:
        for block in plan.iter_bytes():
            if first_byte is None and block:
                first_byte = time.perf_counter() - t
            sink.write(block)
            written += len(block)
    total = time.perf_counter() - t
    peak = rss_mb()["VmHWM"]
    store.close()
    return {
        "recordings": sum(1 for e in plan.entries if e.name.endswith(".json")),
        "bytes": written, "announced_length": plan.length,
        "length_exact": plan.length == written,
        "plan_s": round(planned, 3), "first_byte_s": round(first_byte or 0, 3),
        "total_s": round(total, 2), "mb_per_s": round(written / 1e6 / total, 1),
        "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1),
    }


# -- erasure -----------------------------------------------------------------------------------
def make_erase_data(data: Path, n: int) -> list[dict[str, Any]]:
    """The 100,000 recordings; returns the chosen subjects (number, recordings)."""
    import index as index_bench  # bench/index.py's generator

    index_bench.generate(data, n)
    counts: dict[str, int] = {}
    for path in (data / "recordings").rglob("*.json"):
        doc = json.loads(path.read_text())
        number = doc.get("caller_number") or doc.get("called_number")
        counts[number] = counts.get(number, 0) + 1
    chosen = []
    for wanted in (10, 100):
        number = min(counts, key=lambda k: (abs(counts[k] - wanted), k))
        chosen.append({"number": number, "recordings": counts.pop(number)})
    return chosen


def erase_child(data: Path, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from callrec.privacy.subjects import find_recordings
    from callrec.storage.keystore import KeyStore
    from callrec.storage.recordings import RecordingStore

    keys = KeyStore(data / "keys", data / "keys" / "device.key", create_device_key=False)
    store = RecordingStore(data, keys)
    config = _config(data)
    svc, _ = _service(store, config)
    audio = os.urandom(960_000)
    for subject in subjects:  # a real key and audio file for each (not measured)
        for doc in find_recordings(store, subject["number"]):
            keys.new_key(doc["id"])
            store.audio_path(doc["id"]).write_bytes(audio)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    store._index.remove = timed("index", store._index.remove)  # type: ignore[method-assign]
    store.erase_many = timed("erase_many", store.erase_many)  # type: ignore[method-assign]
    results = []
    for subject in subjects:
        number = subject["number"]
        t = time.perf_counter()
        found = find_recordings(store, number)
        find_s = time.perf_counter() - t
        timings.clear()
        t = time.perf_counter()
        result = svc.erase(number, "bench")
        total = time.perf_counter() - t
        index_s = timings["index"]
        files_s = timings["erase_many"] - index_s
        # Subjects.erase searches once itself: count that search as "find", not "records".
        records_s = total - timings["erase_many"] - find_s
        results.append({
            "n": store.count() + len(result.erased), "recordings": len(found),
            "erased": len(result.erased), "find_s": round(find_s, 4),
            "index_s": round(index_s, 3), "files_s": round(files_s, 3),
            "records_s": round(records_s, 3), "total_s": round(total, 3),
            "without_files_s": round(total - files_s, 3),
            "rss_peak_mb": round(rss_mb()["VmHWM"], 1),
        })
    store.close()
    return results


def _child(kind: str, data: str, extra: Any = None) -> Any:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, data, json.dumps(extra)], check=True,
        capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--json", default=default_json("subjects"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, data, extra = args.child
        if kind == "export":
            print(json.dumps(export_child(Path(data))))
        else:
            print(json.dumps(erase_child(Path(data), json.loads(extra))))
        return
    with tempfile.TemporaryDirectory(prefix="callrec-subjects-") as tmp:
        print(f"export: {args.recordings} recordings of {args.seconds:.0f} s ...", flush=True)
        make_export_data(Path(tmp), args.recordings, args.seconds)
        export = _child("export", tmp)
    with tempfile.TemporaryDirectory(prefix="callrec-subjects-") as tmp:
        print(f"erasure among {args.n:,} recordings ...", flush=True)
        subjects = make_erase_data(Path(tmp), args.n)
        erase = _child("erase", tmp, subjects)
    print(f"\nexport of {export['recordings']} recordings ({args.seconds:.0f} s of audio each)")
    for label, key, unit in (("bytes", "bytes", "B"), ("length announced first", "length_exact",
                                                     ""),
                             ("time to the first byte", "first_byte_s", "s"),
                             ("total time", "total_s", "s"), ("throughput", "mb_per_s", "MB/s"),
                             ("RSS before", "rss_before_mb", "MB"),
                             ("RSS peak (VmHWM)", "rss_peak_mb", "MB")):
        print(f"  {label:28}{export[key]!s:>14}  {unit}")
    print(f"\nerasure of a subject among {erase[0]['n']:,} recordings")
    print(f"  {'':28}" + "".join(f"{r['recordings']:>10} rec." for r in erase))
    for label, key in (("find (index search)", "find_s"), ("index entries removed", "index_s"),
                       ("request record + log", "records_s"),
                       ("total without file deletion", "without_files_s"),
                       ("file deletion (keys, audio)", "files_s"), ("total", "total_s")):
        print(f"  {label:28}" + "".join(f"{r[key]:>13.3f}s" for r in erase))
    write_result(args.json, {"benchmark": "subjects", "machine": machine(),
                             "export": export, "erase": erase})


if __name__ == "__main__":
    main()
