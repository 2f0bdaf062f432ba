"""Benchmark of the DTMF detector: Q.24 accuracy per condition, talk-off, and speed.

Accuracy: for each condition, N random keys (random phases, random alignment with the
analysis blocks, silences of 80-100 ms between them) are decoded by `DtmfDetector()` fed in
the daemon's 800-sample chunks. "detected" counts keys found in order (longest common
subsequence), "extra" keys found that were not sent. Must-accept conditions should be at
100 %, must-reject ones at 0 %.

Talk-off: false keys in the speech and music corpus of the tests (tests/dsp/speech_corpus.py,
needs espeak-ng and sox).

Speed: times real time of the detector fed 800-sample chunks, over 60 s of each kind of
line audio, with the default batching (analysis every 200 ms) and with batch_s=0 (every
chunk). Best of 3 runs.

    python bench/dsp_dtmf.py [--trials 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.g711 import ulaw_decode, ulaw_encode
from callrec.dsp.gen_dtmf import DIGITS, dial, dtmf_tone, silence
from callrec.dsp.signal import RATE, dbm0_to_peak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "dsp"))
import speech_corpus  # the tests' corpus builder
from benchlib import default_json, write_result

CHUNK = 800
SPEED_SECONDS = 60


def detect(x: np.ndarray, detector: DtmfDetector | None = None) -> list[DtmfEvent]:
    det = detector or DtmfDetector()
    out: list[DtmfEvent] = []
    for i in range(0, len(x), CHUNK):
        out += det.feed(x[i : i + CHUNK])
    return out + det.flush()


def lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for ca in a:
        diag = 0
        for j, cb in enumerate(b, start=1):
            diag, row[j] = row[j], (diag + 1 if ca == cb else max(row[j], row[j - 1]))
    return row[-1]


# -- accuracy -------------------------------------------------------------------------------

Spec = dict[str, float]

CONDITIONS: list[tuple[str, str, Spec]] = [
    ("nominal -10 dBm0, 80 ms", "accept", {}),
    *((f"row {o:+.1%}", "accept" if abs(o) <= 0.015 else "reject" if abs(o) >= 0.035
       else "don't care", {"row_off": o}) for o in (-0.035, -0.025, -0.015, 0.015, 0.025, 0.035)),
    *((f"column {o:+.1%}", "accept" if abs(o) <= 0.015 else "reject" if abs(o) >= 0.035
       else "don't care", {"col_off": o}) for o in (-0.035, -0.025, -0.015, 0.015, 0.025, 0.035)),
    ("both ±1.5 % (random signs)", "accept", {"both_off": 0.015}),
    ("both ±3.5 % (random signs)", "reject", {"both_off": 0.035}),
    *((f"duration {d} ms", "reject" if d <= 20 else "accept" if d >= 40 else "don't care",
       {"tone_s": d / 1000}) for d in (20, 24, 28, 32, 40)),
    *((f"twist {t:+g} dB", "accept" if -4 <= t <= 8 else "reject", {"twist": t})
      for t in (-6.0, -4.0, 8.0, 10.0)),
    *((f"level {v:g} dBm0/tone", "accept" if v >= -36 else "reject" if v <= -45
       else "don't care", {"level": v}) for v in (-3.0, -36.0, -40.0, -45.0)),
    *((f"S/N {s:g} dB, 40/40 ms, ±1.5 %", "accept" if s >= 15 else "info",
       {"snr": s, "tone_s": 0.04, "gap_s": 0.04, "rand_off": 0.015}) for s in (15.0, 12.0, 10.0)),
    ("S/N 15 dB, -36 dBm0, 50 ms", "accept", {"snr": 15.0, "level": -36.0, "tone_s": 0.05}),
    ("S/N 15 dB, twist +8 dB, 40 ms", "info", {"snr": 15.0, "twist": 8.0, "tone_s": 0.04}),
    ("µ-law coded, -36 dBm0, 50 ms", "accept", {"level": -36.0, "tone_s": 0.05, "ulaw": 1.0}),
]


def condition_signal(spec: Spec, n: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    keys = "".join(rng.choice(list(DIGITS), n))
    level, tone_s = spec.get("level", -10.0), spec.get("tone_s", 0.08)
    parts = [silence(0.1)]
    for k in keys:
        signs = rng.choice([-1.0, 1.0], 2)
        off = (spec.get("row_off", 0.0) + signs[0] * spec.get("both_off", 0.0),
               spec.get("col_off", 0.0) + signs[1] * spec.get("both_off", 0.0))
        if "rand_off" in spec:
            r = rng.uniform(-spec["rand_off"], spec["rand_off"], 2)
            off = (float(r[0]), float(r[1]))
        ph = rng.uniform(0, 2 * np.pi, 2)
        parts += [dtmf_tone(k, tone_s, level, spec.get("twist", 0.0), off, phases=(ph[0], ph[1])),
                  silence(spec.get("gap_s", 0.08) + rng.uniform(0, 0.02))]
    x = np.concatenate(parts).astype(np.float64)
    if "snr" in spec:
        power = dbm0_to_peak(level) ** 2  # two tones
        x += rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (spec["snr"] / 10))
    if spec.get("ulaw"):
        pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
        x = ulaw_decode(ulaw_encode(pcm)) / 32768
    return keys, x.astype(np.float32)


def accuracy(trials: int, seed: int = 24) -> list[dict[str, Any]]:
    rows = []
    for i, (name, expect, spec) in enumerate(CONDITIONS):
        keys, x = condition_signal(spec, trials, np.random.default_rng(seed + i))
        got = "".join(e.digit for e in detect(x))
        hit = lcs(keys, got)
        rows.append({"condition": name, "expect": expect, "sent": len(keys), "detected": hit,
                     "rate": round(hit / len(keys), 4), "extra": len(got) - hit})
    return rows


def talkoff(corpus: dict[str, np.ndarray]) -> dict[str, Any]:
    speech = {k: v for k, v in corpus.items() if not k.startswith("music")}
    false = {k: len(detect(v)) for k, v in corpus.items()}
    return {
        "speech_minutes": round(sum(len(v) for v in speech.values()) / RATE / 60, 2),
        "music_minutes": round(sum(len(v) for k, v in corpus.items() if k.startswith("music"))
                               / RATE / 60, 2),
        "false_keys_speech": sum(n for k, n in false.items() if not k.startswith("music")),
        "false_keys_music": sum(n for k, n in false.items() if k.startswith("music")),
    }


# -- speed ----------------------------------------------------------------------------------


def speed_signals(corpus: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    n = SPEED_SECONDS * RATE
    rng = np.random.default_rng(9)
    sig: dict[str, np.ndarray] = {
        "silence": np.zeros(n, np.float32),
        "white noise -30 dBm0": (rng.standard_normal(n) * dbm0_to_peak(-30) / np.sqrt(2)
                                 ).astype(np.float32),
        "dialling 10 keys/s (worst case)": np.resize(dial(DIGITS, 0.05, 0.05), n),
    }
    if corpus:
        speech = np.concatenate([v for k, v in sorted(corpus.items()) if k.startswith("speech")])
        sig["speech"] = np.resize(speech, n)
        sig["music-like"] = np.resize(corpus["music"], n)
        # A call: 70 % speech, 25 % silence, a burst of 12 keys.
        mix = np.concatenate((speech[: 42 * RATE], np.zeros(15 * RATE, np.float32),
                              dial("0123456789*#", 0.1, 0.15)))
        sig["call mix (speech, silence, keys)"] = np.resize(mix, n)
    return sig


def times_real_time(x: np.ndarray, make: Callable[[], DtmfDetector]) -> float:
    best = float("inf")
    for _ in range(3):
        det = make()
        t0 = time.perf_counter()
        for i in range(0, len(x), CHUNK):
            det.feed(x[i : i + CHUNK])
        det.flush()
        best = min(best, time.perf_counter() - t0)
    return len(x) / RATE / best


def speed(corpus: dict[str, np.ndarray] | None) -> list[dict[str, Any]]:
    rows = []
    for name, x in speed_signals(corpus).items():
        default = times_real_time(x, DtmfDetector)
        every = times_real_time(x, lambda: DtmfDetector(batch_s=0))
        rows.append({"signal": name, "seconds": len(x) / RATE,
                     "x_real_time": round(default), "x_real_time_batch0": round(every),
                     "us_per_chunk": round(CHUNK / RATE / default * 1e6, 1)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=200, help="keys per accuracy condition")
    ap.add_argument("--json", default=default_json("dsp_dtmf"))
    args = ap.parse_args()

    corpus = None
    if speech_corpus.have_tools():
        with tempfile.TemporaryDirectory() as tmp:
            speech_corpus.build_corpus(Path(tmp))
            corpus = speech_corpus.load_corpus(Path(tmp))
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform(), "processor": platform.processor()},
        "chunk_samples": CHUNK,
        "accuracy": accuracy(args.trials),
        "talkoff": talkoff(corpus) if corpus else None,
        "speed": speed(corpus),
    }

    print(f"{'condition':40s} {'expect':10s} {'sent':>5s} {'found':>6s} {'rate':>7s} {'extra':>6s}")
    for r in result["accuracy"]:
        print(f"{r['condition']:40s} {r['expect']:10s} {r['sent']:5d} {r['detected']:6d} "
              f"{r['rate']:7.1%} {r['extra']:6d}")
    if result["talkoff"]:
        t = result["talkoff"]
        print(f"\ntalk-off: {t['false_keys_speech']} false keys in {t['speech_minutes']} min of "
              f"speech, {t['false_keys_music']} in {t['music_minutes']} min of music")
    print(f"\n{'signal (800-sample chunks)':36s} {'x real time':>12s} {'batch_s=0':>10s} "
          f"{'µs/chunk':>9s}")
    for r in result["speed"]:
        print(f"{r['signal']:36s} {r['x_real_time']:12d} {r['x_real_time_batch0']:10d} "
              f"{r['us_per_chunk']:9.1f}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
