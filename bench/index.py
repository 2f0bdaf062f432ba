"""Benchmark of the recordings index at 10,000 and 100,000 recordings.

For each N, a temporary data directory gets N sidecars (the truth) and the matching day shards,
written directly (no fsync) with realistic metadata spread over 36 months, ~4,000 distinct
caller numbers. The shards and manifest are sealed as the appliance seals them (encryption at
rest is on by default), so start-up includes decrypting them; added recordings get their own
key and a sealed sidecar. Pre-generated sidecars are plain JSON (a key file per recording, each
fsynced, would only slow the generation; the store reads both). Then a fresh process (so that
its RSS is the store's alone) measures:
  - start-up: RecordingStore(data_dir) plus recover(), as the daemon does;
  - RSS (VmRSS and peak VmHWM) of the process holding the store, and of Python + imports alone;
  - page(offset, 25) p50/p95 over random offsets; search_number p50/p95 over random numbers;
  - add(): time and bytes written per add (index shard + sidecar), into a day that already
    holds its share of the archive (the last full day generated: ~N/1,100 recordings), as a
    call of today would be; erase() time.

    python bench/index.py [--sizes 10000 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import default_json, machine, rss_mb, write_result

MONTHS = 36
NUMBERS = 4000


def _number(rng: random.Random) -> str:
    return f"06{int(rng.paretovariate(1.2) * 997) % NUMBERS * 2477 % 10**8:08d}"


def make_meta(rng: random.Random, started: datetime) -> dict[str, Any]:
    rec_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    inbound = rng.random() < 0.7
    seconds = round(rng.expovariate(1 / 180), 3)
    t0 = started.isoformat()
    return {
        "id": rec_id, "started_at": t0, "direction": "in" if inbound else "out", "line": 1,
        "caller_number": _number(rng) if inbound else None,
        "caller_name": rng.choice(["DUPONT JEAN", "MARTIN CLAIRE", None]) if inbound else None,
        "caller_absence": None,
        "called_number": None if inbound else _number(rng),
        "ring_count": rng.randint(1, 5), "keys_during_prompt": None, "answered_by": "handset",
        "announcement": {"prompt": "announcement-fr", "sha256": "5e1c" * 16,
                         "started_at": t0, "completed": True},
        "audio": {"sample_rate": 8000, "channels": 1, "file": f"{rec_id}.wav", "format": "wav",
                  "codec": "pcm_s16le", "bytes": int(seconds * 16000)},
        "firmware": "0.4.0",
        "ended_at": (started + timedelta(seconds=seconds)).isoformat(), "end_reason": "hangup",
        "duration_s": seconds, "status": "complete",
    }


def generate(data_dir: Path, n: int, seed: int = 1, months: bool = False) -> list[str]:
    """N sidecars and their day shards (`months`: format 2's month shards, which the store
    splits at its first start); returns the caller numbers used (for searches)."""
    rng = random.Random(seed)
    end = datetime(2026, 11, 28, tzinfo=UTC)
    span = timedelta(days=30.4 * MONTHS).total_seconds()
    by_month: dict[str, list[dict[str, Any]]] = {}
    for _ in range(n):
        started = end - timedelta(seconds=rng.uniform(0, span))
        meta = make_meta(rng, started.replace(microsecond=0))
        by_month.setdefault(f"{started:%Y-%m}", []).append(meta)
    shards: dict[str, list[dict[str, Any]]] = {}
    from callrec.storage.atomic_json import seal
    from callrec.storage.crypto import Sealer
    from callrec.storage.keystore import KeyStore

    index = data_dir / "index"
    index.mkdir(parents=True)
    keys = KeyStore(data_dir / "keys", data_dir / "keys" / "device.key")
    sealer = Sealer(keys.derive_key("index"))
    numbers = set()
    for month, metas in by_month.items():
        folder = data_dir / "recordings" / month[:4] / month[5:]
        folder.mkdir(parents=True)
        metas.sort(key=lambda m: m["id"])
        for meta in metas:
            (folder / f"{meta['id']}.json").write_text(json.dumps(meta, indent=1))
            numbers.add(meta["caller_number"] or meta["called_number"])
            key = month if months else f"{month}-{meta['id'][6:8]}"
            shards.setdefault(key, []).append(meta)
    for key, metas in shards.items():
        doc = {"recordings": {str(i): m for i, m in enumerate(metas, 1)}}
        shard = index / f"{key}.json"
        shard.write_bytes(seal(json.dumps(doc, separators=(",", ":")).encode(), shard, sealer))
    manifest = {"meta": {"format": 2 if months else 3},
                "shards": {k: {"file": f"{k}.json"} for k in shards}}
    path = index / "recordings.json"
    path.write_bytes(seal(json.dumps(manifest).encode(), path, sealer))
    return sorted(numbers)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def child(data_dir: Path, numbers: list[str]) -> dict[str, Any]:
    """Runs in a fresh process: every measurement of one store."""
    base = rss_mb()["VmRSS"]
    from callrec.storage.keystore import KeyStore
    from callrec.storage.recordings import RecordingStore, new_recording_id

    imported = rss_mb()["VmRSS"]
    t = time.perf_counter()
    keys = KeyStore(data_dir / "keys", data_dir / "keys" / "device.key", create_device_key=False)
    store = RecordingStore(data_dir, keys)
    opened = time.perf_counter() - t
    store.recover()
    startup = time.perf_counter() - t
    rss = rss_mb()
    n = store.count()
    rng = random.Random(2)
    pages = []
    for _ in range(400):
        offset = rng.randrange(0, max(1, n - 25))
        t = time.perf_counter()
        store.page(offset, 25)
        pages.append((time.perf_counter() - t) * 1e3)
    first = []
    for _ in range(100):
        t = time.perf_counter()
        store.page(0, 25)
        first.append((time.perf_counter() - t) * 1e3)
    searches, hits = [], []
    for _ in range(400):
        number = rng.choice(numbers)
        t = time.perf_counter()
        found = store.search_number(number)
        searches.append((time.perf_counter() - t) * 1e3)
        hits.append(len(found))
    adds = []
    rrng = random.Random(3)
    before = store.bytes_written
    sidecar_bytes = 0
    add_max = 0
    added = []
    for _ in range(50):
        meta = make_meta(rrng, datetime(2026, 11, 27, 12, tzinfo=UTC))
        meta["id"] = new_recording_id(datetime(2026, 11, 27, 12, rrng.randrange(60), tzinfo=UTC))
        written = store.bytes_written
        t = time.perf_counter()
        store.add(meta)
        adds.append((time.perf_counter() - t) * 1e3)
        add_max = max(add_max, store.bytes_written - written)
        sidecar_bytes += store.sidecar_path(meta["id"]).stat().st_size
        added.append(meta["id"])
    index_bytes = (store.bytes_written - before) / len(adds)
    erases = []
    ops_rss = rss_mb()
    victims = [store.page(rng.randrange(n), 1)[0][0] for _ in range(20)]
    for meta in victims:
        t = time.perf_counter()
        store.erase(meta["id"])
        erases.append((time.perf_counter() - t) * 1e3)
    final_rss = rss_mb()
    store.close()
    return {
        "n": n, "open_s": round(opened, 3), "startup_s": round(startup, 3),
        "rss_python_mb": round(base, 1), "rss_imported_mb": round(imported, 1),
        "rss_mb": round(rss["VmRSS"], 1), "rss_peak_mb": round(final_rss["VmHWM"], 1),
        "rss_after_ops_mb": round(ops_rss["VmRSS"], 1),
        "page_p50_ms": round(statistics.median(pages), 3), "page_p95_ms": round(pct(pages, .95), 3),
        "page0_p50_ms": round(statistics.median(first), 3),
        "search_p50_ms": round(statistics.median(searches), 3),
        "search_p95_ms": round(pct(searches, .95), 3),
        "search_hits_mean": round(statistics.mean(hits), 1), "search_hits_max": max(hits),
        "add_p50_ms": round(statistics.median(adds), 2), "add_p95_ms": round(pct(adds, .95), 2),
        "add_index_bytes": int(index_bytes), "add_index_bytes_max": add_max,
        "add_sidecar_bytes": sidecar_bytes // len(adds),
        "erase_p50_ms": round(statistics.median(erases), 2),
        "erase_p95_ms": round(pct(erases, .95), 2),
    }


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="callrec-index-") as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        numbers = generate(data, n)
        gen_s = time.perf_counter() - t
        shards = sorted((data / "index").glob("????-??-??.json"))
        sizes = [p.stat().st_size for p in shards]
        (data / "numbers.json").write_text(json.dumps(numbers))
        out = subprocess.run(
            [sys.executable, __file__, "--child", tmp], check=True, capture_output=True,
            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
        result.update(generate_s=round(gen_s, 1), shards=len(shards),
                      shard_kb_max=round(max(sizes) / 1024), shard_kb_mean=round(
                          statistics.mean(sizes) / 1024))
        return result


ROWS = [
    ("start-up (open + recover)", "startup_s", "s"), ("  of which open", "open_s", "s"),
    ("RSS holding the store", "rss_mb", "MB"), ("RSS after the operations", "rss_after_ops_mb",
                                                "MB"),
    ("RSS peak (VmHWM)", "rss_peak_mb", "MB"), ("RSS python + imports", "rss_imported_mb", "MB"),
    ("page(random, 25) p50", "page_p50_ms", "ms"), ("page(random, 25) p95", "page_p95_ms", "ms"),
    ("page(0, 25) p50", "page0_p50_ms", "ms"),
    ("search_number p50", "search_p50_ms", "ms"), ("search_number p95", "search_p95_ms", "ms"),
    ("  hits per search (mean)", "search_hits_mean", ""),
    ("add() p50", "add_p50_ms", "ms"), ("add() p95", "add_p95_ms", "ms"),
    ("  index bytes written per add", "add_index_bytes", "B"),
    ("  index bytes, largest add", "add_index_bytes_max", "B"),
    ("  sidecar bytes per add", "add_sidecar_bytes", "B"),
    ("erase() p50", "erase_p50_ms", "ms"), ("erase() p95", "erase_p95_ms", "ms"),
    ("shards (days)", "shards", ""), ("shard size max", "shard_kb_max", "KB"),
    ("generation (not measured)", "generate_s", "s"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--json", default=default_json("index"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        data = Path(args.child)
        print(json.dumps(child(data, json.loads((data / "numbers.json").read_text()))))
        return
    results = []
    for n in args.sizes:
        print(f"N = {n:,} ...", flush=True)
        results.append(run(n))
    print(f"\n{'':32}" + "".join(f"{r['n']:>12,}" for r in results))
    for label, key, unit in ROWS:
        print(f"{label:32}" + "".join(f"{r[key]:>12}" for r in results) + f"  {unit}")
    write_result(args.json, {"benchmark": "index", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
