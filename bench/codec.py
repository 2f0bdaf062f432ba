"""Storage codecs on real human speech through a telephone channel: hours per GB vs. PESQ-NB.

Signal: the real spoken phrases of alsa-utils (/usr/share/sounds/alsa/*.wav, 48 kHz, Noise.wav
left out) resampled to 8 kHz, assembled into one side of a call: turns of 1-3 phrases at
-22 ± 4 dBFS (phrases 0.15-0.4 s apart), separated by 0.8-3 s pauses (the other party
talking), ≈ 45 % of the time without speech. Then the telephone channel: 300-3400 Hz band,
white line noise at -60 dBm0 in that band, G.711 A-law round trip. That A-law signal is
the reference; each candidate encodes it, and the decoded file is the degraded signal.

Size: the whole file's bytes (headers included) -> hours per 10^9 bytes.
PESQ: ITU-T P.862 narrowband (`pesq`, mode "nb") over the whole call, scored in windows of at
most 15 s cut in the middle of the pauses between turns (pesq aborts on inputs above ~70 s),
reported as the mean over windows (and the worst window).

    python bench/codec.py [--seconds 90] [--seed 1] [--worker-minutes 30]

Then the transcoder as the appliance runs it: a long call is captured into a real store
(encrypted PCM chunks), and the real child process (callrec.storage.transcode, started by
callrec.transcoder.Transcoder) turns it into the stored file. Reported: the child's CPU
seconds per recorded hour (getrusage of children: user + system), its speed against real
time, its peak RSS (its own VmHWM), the stored file's hours per GB on disk (encryption
included), and that the result decodes to exactly the captured length.

Chosen default (callrec.storage.codec): compact = Opus compression_level 0.995 + our DTX,
measured 456-463 h/GB at PESQ-NB 3.79-3.81 over seeds 1-3. Plain libsndfile Opus never meets
the goal (1.0: 399 h/GB at 3.43); 0.99 + DTX sits on the edge (394-401 h/GB, PESQ 4.0).
"""

from __future__ import annotations

import argparse
import glob
import io
import itertools
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import soundfile as sf
from benchlib import default_json, machine, write_result
from pesq import pesq

from callrec.config import Config, StorageConfig
from callrec.dsp.g711 import alaw_decode, alaw_encode
from callrec.dsp.resample import resample
from callrec.dsp.signal import FULL_SCALE_DBM0
from callrec.storage import codec
from callrec.storage.open_store import open_store, read_recording_wav
from callrec.storage.recordings import new_recording_id
from callrec.transcoder import Transcoder

RATE = 8000
GOAL_H_PER_GB = 400.0
GOAL_PESQ = 3.5
WINDOW_S = 15.0


def band(x: np.ndarray, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / RATE)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, x.size)


def phrases() -> list[np.ndarray]:
    out = []
    for path in sorted(glob.glob("/usr/share/sounds/alsa/*.wav")):
        if "Noise" in path:
            continue
        x, sr = sf.read(path, dtype="float64", always_2d=True)
        y = resample(x.mean(axis=1), sr, RATE).astype(np.float64)
        on = np.flatnonzero(np.abs(y) > 1e-3)
        y = y[on[0] : on[-1] + 1]
        out.append(y / np.sqrt(np.mean(y * y)))
    if not out:
        sys.exit("no speech in /usr/share/sounds/alsa (apt-get install alsa-utils)")
    return out


def call_signal(seconds: float, seed: int) -> tuple[np.ndarray, list[int], float]:
    """(A-law telephone signal in [-1, 1), window cut points, fraction of speech samples)."""
    rng = np.random.default_rng(seed)
    ph = phrases()
    parts: list[np.ndarray] = [np.zeros(RATE // 2)]
    cuts = [0]
    total = RATE // 2
    speech = 0
    while total < seconds * RATE:
        gain = 10 ** ((-22 + rng.uniform(-4, 4)) / 20)
        for _ in range(int(rng.integers(1, 4))):
            p = ph[int(rng.integers(len(ph)))] * gain
            gap = np.zeros(int(rng.uniform(0.15, 0.4) * RATE))
            parts += [p, gap]
            speech += p.size
            total += p.size + gap.size
        pause = int(rng.uniform(0.8, 3.0) * RATE)
        parts.append(np.zeros(pause))
        cuts.append(total + pause // 2)
        total += pause
    x = band(np.concatenate(parts))
    noise = band(rng.standard_normal(x.size))
    noise *= 10 ** ((-60 - FULL_SCALE_DBM0) / 20) * np.sqrt(2) / np.sqrt(np.mean(noise**2))
    pcm = np.clip(np.round((x + noise) * 32768), -32768, 32767).astype(np.int16)
    line = alaw_decode(alaw_encode(pcm)).astype(np.float64) / 32768
    # windows of at most WINDOW_S seconds, cut in pauses
    bounds = [0]
    prev = 0
    for c in [*cuts[1:], line.size]:
        if c - bounds[-1] > WINDOW_S * RATE and prev > bounds[-1]:
            bounds.append(prev)
        prev = c
    bounds.append(line.size)
    return line, bounds, speech / line.size


def score(ref: np.ndarray, deg: np.ndarray, bounds: list[int]) -> tuple[float, float]:
    deg = np.concatenate([deg, np.zeros(max(0, ref.size - deg.size))])[: ref.size]
    qs = [pesq(RATE, ref[a:b].astype(np.float32), deg[a:b].astype(np.float32), "nb")
          for a, b in itertools.pairwise(bounds) if b - a > RATE]
    return float(np.mean(qs)), float(np.min(qs))


def sf_bytes(x: np.ndarray, fmt: str, subtype: str, level: float | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), RATE, format=fmt, subtype=subtype,
             compression_level=level)
    return buf.getvalue()


def worker_figures(minutes: float, seed: int) -> dict[str, Any]:
    """Transcode a `minutes`-long captured call with the appliance's own transcoder."""
    line, _, _ = call_signal(minutes * 60, seed)
    pcm = np.round(line * 32768).clip(-32768, 32767).astype("<i2").tobytes()
    seconds = len(pcm) / 2 / RATE
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(storage=StorageConfig(data_dir=tmp, audio_format="compact"))
        store = open_store(config)
        rec_id = new_recording_id(datetime.now(UTC))
        meta = {"id": rec_id, "status": "recording", "direction": "in"}
        writer = store.open_writer(meta, RATE)
        for i in range(0, len(pcm), 16000):  # one second at a time, as captured
            writer.write(pcm[i : i + 16000])
        writer.close()
        store.add({**meta, "status": "complete", "duration_s": seconds,
                   "audio": store.audio_info(writer, RATE)})
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        tc = Transcoder(store, "compact")
        tc.start()
        if not tc.wait_idle(3600):
            sys.exit("the transcoder did not finish")
        wall = time.perf_counter() - t0
        tc.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stored = store.get(rec_id) or {}
        if tc.done != 1 or stored.get("audio", {}).get("format") != "opus":
            sys.exit(f"transcoding failed: {tc.failed}")
        on_disk = store.disk_bytes(rec_id)
        decoded = (len(read_recording_wav(config, rec_id)) - 44) // 2
        store.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"recorded_s": round(seconds, 1), "child_cpu_s": round(cpu, 2),
            "cpu_s_per_recorded_hour": round(cpu * 3600 / seconds, 1),
            "times_real_time": round(seconds / cpu, 1), "wall_s": round(wall, 2),
            "child_peak_rss_mb": round(int(tc.last_result["peak_rss_kb"]) / 1024, 1),
            "stored_bytes_on_disk": on_disk,
            "hours_per_gb_on_disk": round(codec.hours_per_gb(on_disk, seconds), 1),
            "samples_captured": len(pcm) // 2, "samples_decoded": decoded}


def stereo_figures(ref: np.ndarray, bounds: list[int], pcm: np.ndarray, seconds: float,
                   seed: int) -> dict[str, Any]:
    """The default compact mode on a two-channel call: this call's side as channel 0, an
    independent one (another seed) as channel 1, cut to the same length."""
    other, other_bounds, _ = call_signal(seconds, seed + 10)
    n = min(ref.size, other.size)
    refs = (ref[:n], other[:n])
    cuts = ([b for b in bounds if b < n] + [n], [b for b in other_bounds if b < n] + [n])
    frames = np.stack([pcm[:n], np.round(other[:n] * 32768).astype(np.int16)], axis=1)
    data = codec.encode_bytes(frames.reshape(-1), "compact", channels=2)
    flac = codec.encode_bytes(frames.reshape(-1), "lossless", channels=2)
    deg, _ = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    quality = [round(score(refs[ch], deg[:, ch], cuts[ch])[0], 3) for ch in (0, 1)]
    return {"seconds": n / RATE, "bytes": len(data),
            "hours_per_gb": round(codec.hours_per_gb(len(data), n / RATE), 1),
            "pesq_nb": quality, "decoded_frames": int(deg.shape[0]),
            "flac_hours_per_gb": round(codec.hours_per_gb(len(flac), n / RATE), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worker-minutes", type=float, default=30.0)
    ap.add_argument("--json", default=default_json("codec"))
    args = ap.parse_args()

    ref, bounds, speech = call_signal(args.seconds, args.seed)
    seconds = ref.size / RATE
    pcm = np.round(ref * 32768).astype(np.int16)
    mask = codec.speech_mask(pcm)
    print(f"call: {seconds:.1f} s, speech {100 * speech:.0f} % of samples "
          f"(VAD with hangover: {100 * mask.mean():.0f} %), {len(bounds) - 1} PESQ windows")

    candidates: list[tuple[str, Any]] = [
        ("WAV PCM16", lambda: sf_bytes(ref, "WAV", "PCM_16")),
        ("WAV A-law", lambda: sf_bytes(ref, "WAV", "ALAW")),
        ("FLAC", lambda: codec.encode_bytes(pcm, "lossless")),
        ("Ogg/Vorbis 0.5", lambda: sf_bytes(ref, "OGG", "VORBIS", 0.5)),
        ("Ogg/Vorbis 1.0", lambda: sf_bytes(ref, "OGG", "VORBIS", 1.0)),
    ]
    for lvl in (0.9, 0.95, 0.97, 0.98, 0.985, 0.99, 0.995, 1.0):
        candidates.append((f"Ogg/Opus {lvl}",
                           lambda lvl=lvl: codec.encode_bytes(pcm, "compact", level=lvl,
                                                              dtx=False)))
    for lvl in (0.97, 0.98, 0.985, 0.99, 0.995, 1.0):
        candidates.append((f"Ogg/Opus {lvl} + DTX",
                           lambda lvl=lvl: codec.encode_bytes(pcm, "compact", level=lvl)))
    for lvl in (0.98, 0.99):
        candidates.append((f"Ogg/Opus {lvl} + DTX, no refresh",
                           lambda lvl=lvl: codec.encode_bytes(pcm, "compact", level=lvl,
                                                              refresh=0)))
    candidates.append((f"default: compact ({codec.COMPACT_LEVEL} + DTX)",
                       lambda: codec.encode_bytes(pcm, "compact")))

    rows = []
    print(f"\n{'format / setting':36s} {'bytes':>9s} {'h/GB':>8s} {'PESQ':>5s} {'worst':>5s}"
          f" {'enc s':>6s}  goal")
    for name, make in candidates:
        t0 = time.perf_counter()
        data = make()
        enc_s = time.perf_counter() - t0
        deg, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
        assert rate == RATE
        mean_q, worst = score(ref, deg[:, 0], bounds)
        hgb = codec.hours_per_gb(len(data), seconds)
        ok = hgb >= GOAL_H_PER_GB and mean_q >= GOAL_PESQ
        rows.append({"candidate": name, "bytes": len(data), "hours_per_gb": round(hgb, 1),
                     "pesq_nb": round(mean_q, 3), "pesq_nb_worst_window": round(worst, 3),
                     "decoded_samples": int(deg.shape[0]), "encode_s": round(enc_s, 3),
                     "meets_goal": ok})
        print(f"{name:36s} {len(data):9d} {hgb:8.0f} {mean_q:5.2f} {worst:5.2f} {enc_s:6.2f}"
              f"  {'yes' if ok else ''}", flush=True)

    print(f"\nchosen default: compact = Opus {codec.COMPACT_LEVEL} + DTX (the most compact "
          f"setting whose PESQ-NB stays >= {GOAL_PESQ} with margin); lossless = FLAC")

    stereo = stereo_figures(ref, bounds, pcm, args.seconds, args.seed)
    print(f"\ntwo channels (a SIP call; the other side: seed {args.seed + 10}), default compact:"
          f" {stereo['hours_per_gb']:.0f} h/GB, PESQ-NB {stereo['pesq_nb'][0]:.2f} (channel 0)"
          f" / {stereo['pesq_nb'][1]:.2f} (channel 1); FLAC {stereo['flac_hours_per_gb']:.1f}"
          " h/GB")

    print(f"\nthe transcoder child on a {args.worker_minutes:g}-minute call (as the appliance "
          "runs it):")
    worker = worker_figures(args.worker_minutes, args.seed)
    for key, value in worker.items():
        print(f"  {key:28s} {value}")
    write_result(args.json, {
        "bench": "codec", "machine": machine(),
        "versions": {"soundfile": sf.__version__, "libsndfile": sf.__libsndfile_version__},
        "signal": {"seconds": seconds, "seed": args.seed, "speech_fraction": speech,
                   "vad_active_fraction": float(mask.mean()), "pesq_windows": len(bounds) - 1,
                   "source": "/usr/share/sounds/alsa/*.wav (real speech), 300-3400 Hz, "
                             "-60 dBm0 line noise, A-law"},
        "pesq": "P.862 NB, mean over <=15 s windows of the whole call, cut in pauses",
        "goal": {"hours_per_gb": GOAL_H_PER_GB, "pesq_nb": GOAL_PESQ},
        "default": {"mode": "compact", "level": codec.COMPACT_LEVEL, "dtx": True,
                    "refresh_frames": codec.DTX_REFRESH_FRAMES},
        "results": rows,
        "stereo": stereo,
        "transcoder": worker,
    })


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
