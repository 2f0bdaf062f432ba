"""Benchmark of the whole daemon's memory with a large archive (issue 4: RSS <= 80 MB at 100,000).

For each N, a temporary data directory gets N recordings (sidecars and sealed index shards, from
bench/index.py's generator), then the simulated appliance runs on it (PulseAudio,
`callrec sim line`, `callrec run` with retention kept forever, so the start-up retention pass
reads every recording and erases none). Measured on the daemon's process:
  - start-up: from spawning `callrec run` to its web UI answering (the index is loaded by then);
  - the retention pass at start: until the daemon logs its end;
  - RSS after start-up (retention done), then after N_CALLS short calls ("steady"), and the
    peak (VmHWM) over the whole run, which includes loading the index and the retention pass;
  - from /proc/PID/smaps_rollup at the end: anonymous memory (the Python heap and the
    libraries' allocations) and the rest (mapped code and data files).
N = 0 is the daemon's own baseline. With --month-shards the index is generated in format 2
(a shard per month), so the start measured is the first one after the update to day shards,
which splits them. Prints a table and writes JSON.

    python bench/daemon_rss.py [--sizes 0 100000] [--calls 5] [--month-shards] [--json PATH]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import default_json, machine, write_result
from index import generate

from callrec.prompts import synthesize
from callrec.sim.harness import Appliance, Pulse, write_config


def proc_kb(pid: int, *keys: str) -> dict[str, int]:
    """Fields of /proc/PID/status in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in keys:
            out[key] = int(line.split()[1])
    return out


def rollup_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0].rstrip(":")] = int(parts[1])
    return out


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


def logged_at(log: Path, text: str, timeout_s: float) -> float:
    """When the daemon logged a line holding `text` (its log's local time, as time.time())."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if text in line:
                return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        time.sleep(0.2)
    raise RuntimeError(f"the daemon did not log {text!r}")


def run(n: int, calls: int, month_shards: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="callrec-rss-") as tmp:
        d = Path(tmp)
        # Kept forever: the retention pass reads every recording and erases none, so each run
        # measures the same archive (an age limit would erase most of a 36-month archive).
        # The product's storage format: the transcoder's walk of the archive at start (every
        # generated recording is listed in WAV, its file absent) is part of the figure.
        config = write_config(d, prompt="test", audio_format="compact",
                              extra="[retention]\nkeep_forever = true\nmax_age_days = 0\n")
        data = d / "data"
        shutil.rmtree(data)
        data.mkdir()
        t = time.perf_counter()
        generate(data, n, months=month_shards)
        gen_s = time.perf_counter() - t
        (data / "prompts").mkdir()
        synthesize("This call is recorded.", "en", data / "prompts" / "test.wav")
        speech = d / "speech.wav"
        synthesize("Hello, I am calling about my order.", "en", speech)
        pulse = Pulse(d / "pulse")
        pulse.up()
        app = Appliance(d, pulse, config)
        try:
            app.start_line()
            t, spawned = time.monotonic(), time.time()
            app.start_daemon(timeout_s=60, wait_ready=False)
            startup = time.monotonic() - t
            pid = app.procs["daemon"].pid
            app.wait_ready(60)
            retention_done = logged_at(app.logs["daemon"], "retention run (start)", 120) - spawned
            time.sleep(1)
            after_start = proc_kb(pid, "VmRSS", "VmHWM")
            for _ in range(calls):
                app.call(direction="in", number="0612345678", audio=str(speech), rings=1,
                         ring_on_s=0.3, ring_off_s=0.3, talk_s=2)
                app.wait_idle()
            time.sleep(3)
            steady = proc_kb(pid, "VmRSS", "VmHWM")
            rollup = rollup_kb(pid)
            count = len(list((data / "recordings").glob("*/*/*.json")))
        finally:
            app.stop()
            pulse.down()
    return {
        "n": n, "index": "month shards, split at this start" if month_shards else "day shards",
        "recordings_after": count, "calls": calls, "generate_s": round(gen_s, 1),
        "startup_s": round(startup, 2), "retention_done_s": round(retention_done, 1),
        "rss_after_start_mb": mb(after_start["VmRSS"]), "rss_steady_mb": mb(steady["VmRSS"]),
        "rss_peak_mb": mb(steady["VmHWM"]),
        "anonymous_mb": mb(rollup.get("Anonymous", 0)),
        "file_backed_mb": mb(rollup.get("Rss", 0) - rollup.get("Anonymous", 0)),
    }


ROWS = [
    ("start-up (spawn to web UI)", "startup_s", "s"),
    ("start-up retention pass done", "retention_done_s", "s"),
    ("RSS after start-up", "rss_after_start_mb", "MB"),
    ("RSS steady (after the calls)", "rss_steady_mb", "MB"),
    ("RSS peak (VmHWM)", "rss_peak_mb", "MB"),
    ("  of which anonymous (heap)", "anonymous_mb", "MB"),
    ("  of which file-backed", "file_backed_mb", "MB"),
    ("calls placed", "calls", ""),
    ("generation (not measured)", "generate_s", "s"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 100_000])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--month-shards", action="store_true",
                    help="generate the index of format 2: measures the split at the first start")
    ap.add_argument("--json", default=default_json("daemon_rss"))
    args = ap.parse_args()
    results = []
    for n in args.sizes:
        print(f"N = {n:,} ...", flush=True)
        results.append(run(n, args.calls, args.month_shards))
    print(f"\n{'':32}" + "".join(f"{r['n']:>12,}" for r in results))
    for label, key, unit in ROWS:
        print(f"{label:32}" + "".join(f"{r[key]:>12}" for r in results) + f"  {unit}")
    write_result(args.json, {"benchmark": "daemon_rss", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
