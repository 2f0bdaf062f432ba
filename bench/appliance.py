"""Benchmark of the simulated appliance: announcement latency, CPU per recorded hour, memory.

Runs the real processes (PulseAudio, `callrec sim line`, `callrec run`) and places calls:
  1. idle baseline: the daemon's CPU while the line is quiet;
  2. N short calls: announcement start latency, from the answer event (stamped when the
     board's serial frame arrives) to the first prompt frame handed to the audio device;
     PortAudio's and PulseAudio's own buffers are excluded by construction;
  3. a few long calls, each paired with an idle window of the same length just before it:
     the CPU that recording adds, per hour of recorded audio. CPU time is read per thread
     from /proc/PID/task/*/schedstat (nanoseconds on the CPU, so the 10 ms tick of
     /proc/PID/stat adds no rounding), and the figure is the median over the pairs: on a
     shared machine a single idle-vs-busy difference is mostly noise;
and samples the daemon's RSS throughout. Prints a table and writes JSON.

    python bench/appliance.py [--calls 200] [--long-calls 3 --long-call-s 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import default_json, machine, write_result

from callrec.prompts import synthesize
from callrec.sim.harness import Appliance, Pulse, write_config
from callrec.storage.open_store import read_recording_sidecar

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """Seconds on the CPU so far, per live thread: {tid: (thread name, seconds)}."""
    out: dict[str, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[task.name] = (name, int((task / "schedstat").read_text().split()[0]) / 1e9)
        except (OSError, ValueError, IndexError):
            pass  # the thread ended between listing and reading
    return out


def cpu_between(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per thread between two snapshots (threads born in between count from
    zero). Keyed by thread id: Python 3.11 does not name its threads for the kernel."""
    return {tid: sec - before.get(tid, (name, 0.0))[1] for tid, (name, sec) in after.items()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        # Not "_stop": threading.Thread has a method of that name.
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))

    def halt(self) -> None:
        self._halt.set()
        self.join()


def recorded_seconds(app: Appliance) -> float:
    """Seconds recorded so far, from the sidecars (sealed: opened with the appliance's keys)."""
    total = 0.0
    for path in (app.config.data_dir / "recordings").glob("*/*/*.json"):
        meta = read_recording_sidecar(app.config, path.stem) or {}
        total += float(meta.get("duration_s", 0.0))
    return total


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        d = Path(tmp)
        pulse = Pulse(d / "pulse")
        pulse.up()
        config = write_config(d, prompt="bench")
        synthesize("This call is recorded.", "en", d / "data" / "prompts" / "bench.wav")
        speech = d / "speech.wav"
        synthesize("Hello, I am calling about my order.", "en", speech)
        app = Appliance(d, pulse, config)
        try:
            app.start()
            pid = app.procs["daemon"].pid
            sampler = RssSampler(pid)
            sampler.start()

            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle_s)
            idle_cpu_per_s = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)

            for n in range(args.calls):
                app.call(
                    direction="in" if n % 2 == 0 else "out",
                    number=f"01000{n:05d}",
                    audio=str(speech),
                    rings=2,
                    ring_on_s=0.3,
                    ring_off_s=0.3,
                    answer_after_s=0.5,
                    reversal_on_answer=True,
                )
                app.wait_idle()
                if (n + 1) % 25 == 0:
                    print(f"  {n + 1}/{args.calls} calls", file=sys.stderr, flush=True)
            status = app.status() or {}
            latencies = list(status.get("announcement_latency_ms", []))
            print(
                f"  latency over {len(latencies)} calls: p50 {percentile(latencies, 50):.3f} ms,"
                f" p99 {percentile(latencies, 99):.3f} ms; RSS peak so far {sampler.peak:.1f} MB",
                file=sys.stderr,
                flush=True,
            )

            before_long = recorded_seconds(app)
            c1, t1 = cpu_seconds(pid), time.monotonic()
            window = max(1.0, args.long_call_s - 6.0)
            pairs: list[dict[str, float]] = []
            for _ in range(args.long_calls):
                a = thread_cpu(pid)
                time.sleep(window)
                idle = cpu_between(a, thread_cpu(pid))
                call = threading.Thread(
                    target=app.call,
                    kwargs={
                        "direction": "in",
                        "audio": str(speech),
                        "rings": 1,
                        "ring_on_s": 0.3,
                        "ring_off_s": 0.3,
                        "talk_s": args.long_call_s,
                    },
                )
                call.start()
                while (app.status() or {}).get("state") != "recording":
                    time.sleep(0.05)
                # The middle of the call: recording only, no set-up or tear-down.
                time.sleep(2.0)
                a = thread_cpu(pid)
                time.sleep(window)
                busy = cpu_between(a, thread_cpu(pid))
                pairs.append(
                    {
                        "idle_s_per_h": sum(idle.values()) / window * 3600,
                        "recording_s_per_h": sum(busy.values()) / window * 3600,
                    }
                )
                call.join()
                app.wait_idle()
            long_cpu = cpu_seconds(pid) - c1
            long_wall = time.monotonic() - t1
            long_audio_s = recorded_seconds(app) - before_long
            sampler.halt()
        finally:
            app.stop()
            pulse.down()

    hours = long_audio_s / 3600
    added = [p["recording_s_per_h"] - p["idle_s_per_h"] for p in pairs]
    # What a call costs beyond recording its audio: prompt, sidecar, index, status. The long
    # calls' phase is half idle windows, half calls.
    steady_rate = statistics.median(p["recording_s_per_h"] for p in pairs) / 3600 if pairs else 0
    idle_rate = statistics.median(p["idle_s_per_h"] for p in pairs) / 3600 if pairs else 0
    call_wall = long_wall - window * len(pairs)
    per_call = (long_cpu - idle_rate * window * len(pairs) - steady_rate * call_wall) / max(
        1, len(pairs)
    )
    return {
        "machine": machine(),
        "calls": args.calls,
        "announcement_latency_ms": {
            "n": len(latencies),
            "p50": round(percentile(latencies, 50), 3) if latencies else None,
            "p99": round(percentile(latencies, 99), 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
        },
        "cpu": {
            "idle_cpu_s_per_hour_first_window": round(idle_cpu_per_s * 3600, 2),
            "idle_cpu_s_per_hour": round(idle_rate * 3600, 2),
            "recording_cpu_s_per_hour": round(steady_rate * 3600, 2),
            "pairs": [{k: round(v, 2) for k, v in p.items()} for p in pairs],
            "added_by_recording_s_per_recorded_hour_median": round(statistics.median(added), 2)
            if added
            else None,
            "added_by_recording_s_per_recorded_hour_max": round(max(added), 2) if added else None,
            "recorded_audio_s": round(long_audio_s, 1),
            "cpu_s_per_recorded_hour_gross": round(long_cpu / hours, 2) if hours else None,
            "cpu_s_per_call_overhead": round(per_call, 3),
        },
        "daemon_rss_mb_peak": round(sampler.peak, 1),
        "goals": {"latency_p99_ms": 30, "cpu_s_per_recorded_hour": 2, "rss_mb": 60},
    }


def print_table(r: dict[str, Any]) -> None:
    lat, cpu = r["announcement_latency_ms"], r["cpu"]
    rows = [
        ("announcement start latency p50", f"{lat['p50']} ms", ""),
        ("announcement start latency p99", f"{lat['p99']} ms", "<= 30 ms"),
        ("announcement start latency max", f"{lat['max']} ms", ""),
        ("calls measured", str(lat["n"]), ""),
        ("daemon CPU idle (median of windows)", f"{cpu['idle_cpu_s_per_hour']} s/h", ""),
        ("daemon CPU while recording (median)", f"{cpu['recording_cpu_s_per_hour']} s/h", ""),
        (
            "CPU added by recording, per recorded hour (median of pairs)",
            f"{cpu['added_by_recording_s_per_recorded_hour_median']} s",
            "<= 2 s",
        ),
        ("  the same, worst pair", f"{cpu['added_by_recording_s_per_recorded_hour_max']} s", ""),
        ("daemon CPU per call (set-up, prompt, index)", f"{cpu['cpu_s_per_call_overhead']} s", ""),
        (
            "daemon CPU per recorded hour, all of it (gross)",
            f"{cpu['cpu_s_per_recorded_hour_gross']} s",
            "",
        ),
        ("daemon RSS peak", f"{r['daemon_rss_mb_peak']} MB", "<= 60 MB"),
    ]
    width = max(len(a) for a, _, _ in rows)
    print(f"{'measure'.ljust(width)}  {'value':>14}  goal")
    for name, value, goal in rows:
        print(f"{name.ljust(width)}  {value:>14}  {goal}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--long-calls", type=int, default=5)
    p.add_argument("--long-call-s", type=float, default=60.0)
    p.add_argument("--idle-s", type=float, default=20.0)
    p.add_argument("--json", default=default_json("appliance"))
    args = p.parse_args()
    result = run(args)
    print_table(result)
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
