"""The full live chain of one line (caller ID + DTMF + tones + level meter), in x real time.

Fed in 800-sample (100 ms) chunks of 8 kHz audio through `callrec.dsp.chain.LineAnalyzer`:
the worst case, since the daemon's listener feeds batches of 0.2-0.5 s (1600-4000 samples) and
every numpy call costs less per sample on longer chunks. Signals: an idle line, speech, and a
whole simulated call (rings' caller-ID burst, dialling, ringback, conversation, keys, busy
tone). Best of several repeats, since the machine is shared. Prints a table, writes
bench/results/dsp_chain.json.

    python bench/dsp_chain.py [--seconds 120] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the daemon runs

import numpy as np
from benchlib import default_json, machine, write_result

from callrec.dsp.chain import DETECTORS, DETECTORS_BY_STATE, LineAnalyzer
from callrec.dsp.gen_callerid import etsi_message, fsk_burst
from callrec.dsp.gen_dtmf import dial
from callrec.dsp.gen_tones import tone_plan_signal
from callrec.dsp.signal import RATE

CHUNK = 800
GOAL = 750.0


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Voiced syllables: harmonic series with a wandering pitch, in bursts, band-limited."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t) + 20 * rng.standard_normal(n).cumsum() / n
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 3.1 * t) > -0.2).astype(float)
    x = voice * envelope * 0.05 + 0.002 * rng.standard_normal(n)
    return x.astype(np.float32)


def whole_call(rng: np.random.Generator) -> np.ndarray:
    parts = [
        np.zeros(RATE // 2), fsk_burst(etsi_message("0612345678", "DUPONT MARIE"), "etsi-v23"),
        np.zeros(RATE), dial("0145678912"), tone_plan_signal("fr", "ringback", 10.0),
        speech_like(40.0, rng), dial("9"), speech_like(20.0, rng),
        tone_plan_signal("fr", "busy", 5.0), np.zeros(RATE),
    ]
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])


def speed(signal: np.ndarray, seconds: float, repeats: int,
          detectors: frozenset[str] = DETECTORS) -> tuple[float, int]:
    reps = max(1, int(np.ceil(seconds * RATE / len(signal))))
    audio = np.tile(signal, reps)[: int(seconds * RATE)]
    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    best = float("inf")
    events = 0
    for _ in range(repeats):
        analyzer = LineAnalyzer(country="fr", detectors=detectors)
        start = time.process_time()
        found = [e for c in chunks for e in analyzer.feed(c)] + analyzer.flush()
        best = min(best, time.process_time() - start)
        events = len(found)
    return len(audio) / RATE / best, events


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=default_json("dsp_chain"))
    args = p.parse_args()
    rng = np.random.default_rng(1)
    signals = {
        "idle line (-70 dBm0 noise)": (1e-4 * rng.standard_normal(RATE * 10)).astype(np.float32),
        "speech-like, continuous": speech_like(30.0, rng),
        "whole call (CID, dialling, ringback, talk, key, busy)": whole_call(rng),
    }
    rows = []
    for name, signal in signals.items():
        x, events = speed(signal, args.seconds, args.repeats)
        rows.append({"signal": name, "detectors": "all", "x_real_time": round(x, 1),
                     "cpu_s_per_hour": round(3600 / x, 2), "events": events})
    # Live, the daemon runs only what the call's state needs (dsp/chain.py).
    for state, signal_name in (("idle", "idle line (-70 dBm0 noise)"),
                               ("recording", "speech-like, continuous")):
        wanted = DETECTORS_BY_STATE[state]
        x, events = speed(signals[signal_name], args.seconds, args.repeats, wanted)
        rows.append({"signal": f"{signal_name}, live '{state}' state", "detectors":
                     "+".join(sorted(wanted)), "x_real_time": round(x, 1),
                     "cpu_s_per_hour": round(3600 / x, 2), "events": events})
    width = max(len(r["signal"]) for r in rows)
    print(f"{'signal'.ljust(width)}  {'x real time':>12}  {'CPU s/hour':>10}  goal >= {GOAL:.0f}x")
    for r in rows:
        print(f"{r['signal'].ljust(width)}  {r['x_real_time']:>12}  {r['cpu_s_per_hour']:>10}")
    result = {"machine": machine(),
              "chunk_samples": CHUNK, "seconds_per_signal": args.seconds,
              "repeats": args.repeats, "goal_x": GOAL, "rows": rows}
    write_result(args.json, result)
    full = [r["x_real_time"] for r in rows if r["detectors"] == "all"]
    return 0 if min(full) >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
