"""Benchmark of the call-progress tone detector, the level meter, the resampler and WAV input.

Accuracy: for each plan (fr, eu, us), tone and line condition, N trials of the tone (random
start phase, lead-in and noise) fed in the daemon's 800-sample chunks to `ToneDetector`. A
trial is "right" when exactly one event comes out with the right tone, starting within 20 ms
of the truth; "late" when the right tone is only recognised from a later burst; "wrong" when
another tone is reported; "missed" otherwise. Conditions marked
"reject" must give nothing (frequency or cadence out of tolerance): they count false
detections. Latency: time from the tone's start to `current` showing it.

Talk-off: speech (the test corpus: espeak-ng French and English voices, alsa-utils human
speech), music-like signals and DTMF through every plan: bursts seen and events (must be 0).

Speed: times real time in 800-sample chunks, of the tone detector, the level meter, and both
(the budget for both is >= 4000x), on several signals; the resampler on 10 minutes of
44.1/48/16/11.025 kHz audio, and `read_wav` on a 10-minute 44.1 kHz stereo file.

    python bench/dsp_tones.py [--trials 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from benchlib import default_json, write_result

from callrec.dsp.gen_dtmf import dial
from callrec.dsp.gen_tones import tone_plan_signal
from callrec.dsp.level import LevelMeter
from callrec.dsp.resample import resample
from callrec.dsp.signal import RATE, dbm0_to_peak
from callrec.dsp.tones import TONE_PLANS, ToneDetector
from callrec.dsp.wavin import read_wav

Samples = npt.NDArray[np.float32]
CHUNK = 800
ROOT = Path(__file__).resolve().parent.parent

# (label, options, must_detect)
CONDITIONS: list[tuple[str, dict[str, float], bool]] = [
    ("clean -20 dBm0", {}, True),
    *((f"level {lv:g} dBm0", {"level": float(lv)}, True) for lv in (-10, -30, -33, -36, -40)),
    *((f"S/N {s:g} dB (-20 dBm0)", {"snr": float(s)}, True) for s in (20, 15, 10, 6)),
    ("S/N 15 dB at -30 dBm0", {"level": -30, "snr": 15}, True),
    *((f"freq {f:+.1%}", {"freq_error": f}, True) for f in (-0.02, 0.02)),
    *((f"cadence {c:+.0%}", {"cadence_error": c}, True) for c in (-0.10, 0.10)),
    ("worst: -30 dBm0, 15 dB, +2 %, -10 %",
     {"level": -30, "snr": 15, "freq_error": 0.02, "cadence_error": -0.10}, True),
    *((f"reject: freq {f:+.1%}", {"freq_error": f}, False) for f in (-0.035, 0.035)),
    *((f"reject: cadence {c:+.0%}", {"cadence_error": c}, False) for c in (-0.25, 0.25)),
]


def trial(country: str, tone: str, opts: dict[str, float], rng: np.random.Generator
          ) -> tuple[str, float | None]:
    """('right'|'late'|'wrong'|'missed', latency of `current`)."""
    spec = TONE_PLANS[country][tone]
    name = spec.tone or tone  # the name reported
    level = opts.get("level", -20.0)
    if spec.on_s is None:
        seconds = spec.min_s + 2.0
    else:
        assert spec.off_s is not None
        seconds = (spec.cycles + 1.5) * (spec.on_s + spec.off_s)
    sig = tone_plan_signal(country, tone, seconds, level, opts.get("freq_error", 0.0),
                           opts.get("cadence_error", 0.0), phase=float(rng.uniform(0, 6.3)))
    lead = float(rng.uniform(0.3, 1.5))
    x = np.concatenate((np.zeros(round(lead * RATE)), sig, np.zeros(RATE)))
    if "snr" in opts:
        power = len(spec.freqs) * dbm0_to_peak(level) ** 2 / 2
        x = x + rng.standard_normal(x.size) * np.sqrt(power / 10 ** (opts["snr"] / 10))
    x = x.astype(np.float32)
    det = ToneDetector(country)
    events = []
    latency = None
    for i in range(0, x.size, CHUNK):
        events += det.feed(x[i:i + CHUNK])
        cur = det.current
        if latency is None and cur is not None and cur.tone == name:
            latency = (i + CHUNK) / RATE - lead
    events += det.flush()
    if not events:
        return "missed", None
    if len(events) == 1 and events[0].tone == name and abs(events[0].start_s - lead) < 0.02:
        return "right", latency
    if all(e.tone == name for e in events):
        return "late", latency  # the right tone, recognised from a later burst
    return "wrong", latency


def accuracy(trials: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for label, opts, must in CONDITIONS:
        for country, plan in TONE_PLANS.items():
            for tone, spec in plan.items():
                if "cadence_error" in opts and spec.on_s is None:
                    continue
                counts = {"right": 0, "late": 0, "wrong": 0, "missed": 0}
                lat: list[float] = []
                for _ in range(trials):
                    outcome, latency = trial(country, tone, opts, rng)
                    counts[outcome] += 1
                    if latency is not None and outcome == "right":
                        lat.append(latency)
                rows.append({"condition": label, "country": country, "tone": tone,
                             "must_detect": must, "trials": trials, **counts,
                             "latency_mean_s": round(float(np.mean(lat)), 2) if lat else None,
                             "latency_max_s": round(float(np.max(lat)), 2) if lat else None})
    return rows


def talkoff() -> list[dict[str, Any]]:
    """Speech, music and DTMF through every plan (the test corpus, built in a temp dir)."""
    sys.path[:0] = [str(ROOT / "tests" / "dsp"), str(ROOT / "tests")]
    try:
        from speech_corpus import build_corpus, have_tools, load_corpus
        from test_tones_false_alarms import low_register_music
    except ImportError:
        return []
    signals: dict[str, Samples] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if have_tools():
            build_corpus(Path(tmp))
            signals.update(load_corpus(Path(tmp)))
    signals["music-low-register"] = low_register_music()
    keys = "0123456789*#ABCD"
    signals["dtmf"] = np.concatenate([dial(keys * 4, 0.08, 0.08), dial(keys * 2, 0.5, 0.5)])
    groups = {"speech": [n for n in signals if n.startswith(("speech", "human"))],
              "music": [n for n in signals if n.startswith("music")], "dtmf": ["dtmf"]}
    rows = []
    for group, names in groups.items():
        if not names:
            continue
        x = np.concatenate([signals[n] for n in names])
        for country in TONE_PLANS:
            for gain_db in (0, -20):
                det = ToneDetector(country)
                bursts = [0]
                for tracker in det._trackers:  # count the bursts handed to the trackers
                    on = tracker.on

                    def counted(t: float, quiet: bool = True, on: Any = on,
                                bursts: list[int] = bursts) -> Any:
                        bursts[0] += 1
                        return on(t, quiet)

                    tracker.on = counted  # type: ignore[method-assign,assignment]
                y = (x * 10 ** (gain_db / 20)).astype(np.float32)
                events = [e for i in range(0, y.size, CHUNK) for e in det.feed(y[i:i + CHUNK])]
                events += det.flush()
                rows.append({"signal": group, "country": country, "gain_db": gain_db,
                             "minutes": round(x.size / RATE / 60, 1), "bursts": bursts[0],
                             "events": len(events)})
    return rows


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def speed_signals(seconds: float = 60.0) -> dict[str, Samples]:
    rng = np.random.default_rng(7)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    voice = np.sin(2 * np.pi * 180 * t + 3 * np.sin(2 * np.pi * 4 * t)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) * 0.2
    call = np.concatenate([tone_plan_signal("fr", "ringback", 10.0, -15),
                           (voice + rng.standard_normal(n) * 0.005)[:round(45 * RATE)],
                           tone_plan_signal("fr", "busy", 5.0, -15)])
    return {
        "silence": np.zeros(n, np.float32),
        "line noise -60 dBm0": (rng.standard_normal(n) * dbm0_to_peak(-60)).astype(np.float32),
        "voice-like": (voice + rng.standard_normal(n) * 0.005).astype(np.float32),
        "fr dial tone": tone_plan_signal("fr", "dial", seconds, -10),
        "fr busy tone": tone_plan_signal("fr", "busy", seconds, -15),
        "us busy tone (worst)": tone_plan_signal("us", "busy", seconds, -24),
        "us ringback": tone_plan_signal("us", "ringback", seconds, -19),
        "call: ringback, talk, busy": call.astype(np.float32),
    }


def speed(repeats: int = 3) -> list[dict[str, Any]]:
    rows = []
    for name, x in speed_signals().items():
        chunks = [x[i:i + CHUNK] for i in range(0, x.size, CHUNK)]
        audio_s = x.size / RATE
        country = "us" if name.startswith("us") else "fr"

        def tones(batch: float = 0.2, country: str = country,
                  chunks: list[Samples] = chunks) -> None:
            det = ToneDetector(country, batch_s=batch)
            for c in chunks:
                det.feed(c)

        def level(chunks: list[Samples] = chunks) -> None:
            meter = LevelMeter()
            for c in chunks:
                meter.feed(c)

        def both(country: str = country, chunks: list[Samples] = chunks) -> None:
            det, meter = ToneDetector(country), LevelMeter()
            for c in chunks:
                det.feed(c)
                meter.feed(c)

        for label, run in [("tones", tones), ("tones, no batching", lambda: tones(0.0)),
                           ("level", level), ("tones + level", both)]:
            dt = best_time(run, repeats)
            rows.append({"signal": name, "country": country, "what": label,
                         "x_real_time": round(audio_s / dt),
                         "us_per_chunk": round(dt / len(chunks) * 1e6, 2)})
    return rows


def io_speed() -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(3)
    for rate in (44100, 48000, 16000, 11025):
        x = (rng.standard_normal(rate * 600) * 0.1).astype(np.float32)
        dt = best_time(partial(resample, x, rate, RATE), 2)
        rows.append({"what": f"resample 10 min {rate} -> 8000 Hz", "seconds": round(dt, 3)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        pcm = (rng.standard_normal(44100 * 600 * 2) * 3000).astype("<i2")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(44100)
            w.writeframes(pcm.tobytes())
        dt = best_time(lambda: read_wav(path), 2)
        rows.append({"what": "read_wav 10 min 44.1 kHz 16-bit stereo", "seconds": round(dt, 3)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--json", default=default_json("dsp_tones"))
    args = p.parse_args()
    started = time.perf_counter()

    acc = accuracy(args.trials)
    print(f"{'condition':<38} {'plan':<4} {'tone':<15} {'right':>7} {'late':>4} {'wrong':>5} "
          f"{'missed':>6} {'latency':>12}")
    for r in acc:
        lat = "" if r["latency_mean_s"] is None else \
            f"{r['latency_mean_s']:.2f}/{r['latency_max_s']:.2f}s"
        false = r["right"] + r["late"] + r["wrong"]
        right = f"{r['right']}/{r['trials']}" if r["must_detect"] else f"FA {false}"
        print(f"{r['condition']:<38} {r['country']:<4} {r['tone']:<15} {right:>7} "
              f"{r['late']:>4} {r['wrong']:>5} {r['missed'] if r['must_detect'] else '-':>6} "
              f"{lat:>12}")

    tk = talkoff()
    print(f"\n{'talk-off signal':<16} {'plan':<4} {'gain':>5} {'minutes':>8} {'bursts':>7} "
          f"{'events':>7}")
    for r in tk:
        print(f"{r['signal']:<16} {r['country']:<4} {r['gain_db']:>5} {r['minutes']:>8} "
              f"{r['bursts']:>7} {r['events']:>7}")

    sp = speed()
    print(f"\n{'signal (800-sample chunks)':<30} {'what':<20} {'x real time':>12} {'us/chunk':>9}")
    for r in sp:
        print(f"{r['signal']:<30} {r['what']:<20} {r['x_real_time']:>12} "
              f"{r['us_per_chunk']:>9}")
    io = io_speed()
    print()
    for r in io:
        print(f"{r['what']:<48} {r['seconds']:>7} s")

    result = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "platform": platform.platform(), "processor": platform.machine()},
              "chunk_samples": CHUNK, "trials_per_condition": args.trials,
              "accuracy": acc, "talkoff": tk, "speed": sp, "io": io,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
