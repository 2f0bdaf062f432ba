"""Benchmark of the FSK caller-ID decoder: accuracy per line condition, and speed.

Accuracy: for each condition and standard, N random messages (SDMF and MDMF/ETSI, random
number and date) are sent as FSK bursts between silences, with band-limited noise where the
condition says so (S/N measured in the 300-3400 Hz band over the burst), and decoded by
`CallerIdDecoder("auto")` fed in the daemon's 800-sample chunks. A message counts as decoded
when exactly one message comes out, with a good checksum, the right number and date and the
right standard label; "bad" counts messages reported with checksum_ok false; "wrong" counts
good-checksum messages with wrong content (must be 0).

Speed: times real time of the decoder fed 800-sample chunks, over 60 s of an idle line, of a
CID-rich signal (a burst every 1.5 s), of speech (espeak-ng, when installed) and of line noise.

    python bench/dsp_callerid.py [--trials 50] [--json PATH]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import default_json, write_result

from callrec.dsp.callerid import CallerIdDecoder
from callrec.dsp.gen_callerid import etsi_message, fsk_burst, sdmf_message
from callrec.dsp.signal import RATE, dbm0_to_peak, from_pcm16

CHUNK = 800
STANDARDS = ("etsi-v23", "bell202")

CONDITIONS: list[tuple[str, dict[str, float]]] = [
    ("clean -12 dBm0", {}),
    *((f"level {lv:g} dBm0", {"level": lv}) for lv in (-5, -25, -35, -40, -45, -47, -50)),
    *((f"S/N {s:g} dB (-25 dBm0)", {"level": -25, "snr": s}) for s in (20, 15, 12, 10, 8, 6)),
    ("S/N 15 dB at -35 dBm0", {"level": -35, "snr": 15}),
    *((f"freq {f:+.1%}", {"freq_error": f}) for f in (-0.03, -0.015, 0.015, 0.03)),
    *((f"bit rate {b:+.0%}", {"baud_error": b}) for b in (-0.02, -0.01, 0.01, 0.02)),
    *((f"twist {t:+g} dB", {"twist_db": t}) for t in (-10, -6, 6, 10)),
    ("worst: -35 dBm0, 15 dB, +1.5 %, -1 %, 6 dB twist",
     {"level": -35, "snr": 15, "freq_error": 0.015, "baud_error": -0.01, "twist_db": 6}),
]


def band_noise(n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    y = np.fft.irfft(spectrum, n)
    return y * (rms / np.sqrt(np.mean(y * y)))


def decode(x: np.ndarray) -> list[Any]:
    dec = CallerIdDecoder("auto")
    out = []
    for a in range(0, len(x), CHUNK):
        out += dec.feed(x[a : a + CHUNK])
    return out + dec.flush()


def random_message(rng: np.random.Generator, k: int) -> tuple[bytes, str, str]:
    number = "0" + "".join(str(d) for d in rng.integers(0, 10, 9))
    dt = "".join(f"{v:02d}" for v in (rng.integers(1, 13), rng.integers(1, 29),
                                      rng.integers(0, 24), rng.integers(0, 60)))
    if k % 2:
        return sdmf_message(number=number, datetime=dt), number, dt
    return etsi_message(number=number, name="MARTIN SOPHIE", datetime=dt), number, dt


def accuracy(trials: int, seed: int = 1) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(seed)
    for name, cond in CONDITIONS:
        for standard in STANDARDS:
            counts = {"decoded": 0, "bad": 0, "missed": 0, "wrong": 0}
            for k in range(trials):
                msg, number, dt = random_message(rng, k)
                burst = fsk_burst(
                    msg, standard, cond.get("level", -12.0),
                    freq_error=cond.get("freq_error", 0.0),
                    baud_error=cond.get("baud_error", 0.0),
                    twist_db=cond.get("twist_db", 0.0), phase=float(rng.uniform(0, 6.3)),
                ).astype(np.float64)
                pre = int(rng.integers(1600, 4800))
                x = np.concatenate((np.zeros(pre), burst, np.zeros(4000)))
                if "snr" in cond:
                    power = float(np.mean(burst**2))
                    x += band_noise(len(x), np.sqrt(power / 10 ** (cond["snr"] / 10)), rng)
                out = decode(x.astype(np.float32))
                good = [m for m in out if m.checksum_ok]
                if len(out) == 1 and good and (good[0].number, good[0].datetime,
                                               good[0].standard) == (number, dt, standard):
                    counts["decoded"] += 1
                elif good:
                    counts["wrong"] += 1
                elif out:
                    counts["bad"] += 1
                else:
                    counts["missed"] += 1
            rows.append({"condition": name, "standard": standard, "sent": trials, **counts})
    return rows


def speech(seconds: float) -> np.ndarray | None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return None
    text = ("Bonjour, je vous appelle au sujet de votre commande numéro douze. Pouvez-vous me "
            "rappeler demain matin avant midi ? Merci beaucoup, au revoir. ") * 8
    with tempfile.TemporaryDirectory() as tmp:
        wav, raw = Path(tmp) / "s.wav", Path(tmp) / "s.raw"
        subprocess.run(["espeak-ng", "-v", "fr", "-w", str(wav), text], check=True,
                       capture_output=True)
        subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
                        "-t", "raw", str(raw)], check=True)
        x = from_pcm16(raw.read_bytes())
    x = np.tile(x, int(np.ceil(seconds * RATE / len(x))))[: int(seconds * RATE)]
    active = x[np.abs(x) > 0.01]
    return (x * dbm0_to_peak(-15) / np.sqrt(2) / np.sqrt(np.mean(active**2))).astype(np.float32)


def speed(seconds: float = 60.0, repeats: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    n = int(seconds * RATE)
    signals: dict[str, np.ndarray | None] = {
        "idle line (-70 dBm0 noise)": band_noise(n, dbm0_to_peak(-70) / np.sqrt(2), rng),
        "digital silence": np.zeros(n),
        "line noise -30 dBm0": band_noise(n, dbm0_to_peak(-30) / np.sqrt(2), rng),
        "speech -15 dBm0 (espeak-ng)": speech(seconds),
    }
    rich = []
    k = 0
    while sum(len(p) for p in rich) < n:
        msg, _, _ = random_message(rng, k)
        rich += [fsk_burst(msg, STANDARDS[k % 2], -20), np.zeros(int(0.6 * RATE))]
        k += 1
    signals["CID-rich (burst every ~1.5 s)"] = np.concatenate(rich)[:n]
    rows = []
    for name, x in signals.items():
        if x is None:
            continue
        x = x.astype(np.float32)
        chunks = [x[a : a + CHUNK] for a in range(0, len(x), CHUNK)]
        for standard in ("auto", "etsi-v23"):
            best = float("inf")
            found = 0
            for _ in range(repeats):
                dec = CallerIdDecoder(standard)
                t0 = time.perf_counter()
                for c in chunks:
                    found += len(dec.feed(c))
                best = min(best, time.perf_counter() - t0)
                found += len(dec.flush())
            rows.append({"signal": name, "decoder": standard, "audio_s": len(x) / RATE,
                         "x_real_time": round(len(x) / RATE / best),
                         "us_per_800_chunk": round(best / len(chunks) * 1e6, 1),
                         "messages": found // repeats})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=50, help="messages per condition and standard")
    p.add_argument("--speed-s", type=float, default=60.0)
    p.add_argument("--json", default=default_json("dsp_callerid"))
    args = p.parse_args()
    t0 = time.perf_counter()
    acc = accuracy(args.trials)
    print(f"{'condition':<48} {'standard':<9} {'decoded':>9} {'bad':>4} {'missed':>6} "
          f"{'wrong':>5}")
    for r in acc:
        print(f"{r['condition']:<48} {r['standard']:<9} {r['decoded']:>4}/{r['sent']:<4} "
              f"{r['bad']:>4} {r['missed']:>6} {r['wrong']:>5}")
    spd = speed(args.speed_s)
    print(f"\n{'signal':<32} {'decoder':<9} {'x real time':>12} {'us/800':>8} {'msgs':>5}")
    for r in spd:
        print(f"{r['signal']:<32} {r['decoder']:<9} {r['x_real_time']:>12} "
              f"{r['us_per_800_chunk']:>8} {r['messages']:>5}")
    result = {
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                    "platform": platform.platform(), "processor": platform.machine()},
        "chunk_samples": CHUNK,
        "trials_per_condition": args.trials,
        "accuracy": acc,
        "speed": spd,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
