"""Benchmark of encryption at rest: CPU per recorded hour, range reads, recovery.

One hour of 8 kHz 16-bit mono audio (57.6 MB) is written the way the recorder writes it:
800-sample (1600-byte) writes, sync() every second, so one AES-256-GCM chunk per second.

- seal only: AES-GCM of 3600 one-second chunks in memory (the cipher's own cost);
- EncryptedWriter: the whole write path with its fdatasync every second, against the plain
  StreamingWavWriter doing the same writes and syncs. The encrypted writer buffers whole
  chunks, so it makes one write() per second where the plain one makes ten: the difference
  can come out negative, and "seal only" is the honest cost of the cipher.
  CPU time (process_time: user + system of this process), so waiting for the disk is not
  counted, but the system calls are;
- read_all: decrypt the whole hour;
- open: EncryptedReader on the 1-hour file (header, chunk index by 4-byte reads, final chunk
  authenticated); range: a 64 KiB read_range at a random offset on an open reader, and
  open + range (what one HTTP Range request costs without a reader cache);
- recover: an interrupted 1-hour file with its last chunk torn (decrypts everything).

    python bench/crypto.py [--seconds 3600] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import default_json, machine, write_result

from callrec.storage.crypto import (
    DEFAULT_CHUNK_BYTES,
    EncryptedReader,
    EncryptedWav,
    EncryptedWriter,
    _stream_cipher,
    new_data_key,
    recover,
)
from callrec.storage.wavstream import StreamingWavWriter

RATE = 8000
BYTES_PER_S = 2 * RATE
WRITE = 1600  # the daemon's 800-sample blocks
REC = "20261129T100000Z-0123abcd"


def audio(seconds: int) -> bytes:
    rnd = random.Random(1)
    second = bytes(rnd.getrandbits(8) for _ in range(BYTES_PER_S))
    return second * seconds


def cpu(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def record(path: Path, data: bytes, encrypted: bool, key: bytes) -> None:
    path.unlink(missing_ok=True)
    w: EncryptedWriter | StreamingWavWriter
    w = EncryptedWriter(path, key, REC) if encrypted else StreamingWavWriter(path, RATE)
    per_sync = BYTES_PER_S // WRITE
    for n, i in enumerate(range(0, len(data), WRITE), 1):
        w.write(data[i : i + WRITE])
        if n % per_sync == 0:
            w.sync()
    w.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=3600)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ranges", type=int, default=200)
    p.add_argument("--json", default=default_json("crypto"))
    args = p.parse_args()
    hours = args.seconds / 3600
    data = audio(args.seconds)
    key = new_data_key()
    rows: list[tuple[str, float, str]] = []
    aead = f"system libcrypto ({ssl.OPENSSL_VERSION})"
    result: dict[str, Any] = {"machine": machine(), "aead": aead,
                              "audio_seconds": args.seconds, "chunk_bytes": DEFAULT_CHUNK_BYTES}

    aead = _stream_cipher(key)
    chunks = [data[i : i + DEFAULT_CHUNK_BYTES] for i in range(0, len(data), DEFAULT_CHUNK_BYTES)]
    nonce, aad = bytes(12), bytes(60)
    seal = cpu(lambda: [aead.encrypt(nonce, c, aad) for c in chunks], args.repeats) / hours
    rows.append(("seal only (AES-256-GCM), CPU s per recorded hour", seal, "s"))

    with tempfile.TemporaryDirectory() as tmp:
        enc, wav = Path(tmp) / "a.enc", Path(tmp) / "a.wav"
        plain_w = cpu(lambda: record(wav, data, False, key), args.repeats) / hours
        enc_w = cpu(lambda: record(enc, data, True, key), args.repeats) / hours
        rows.append(("StreamingWavWriter (plain), CPU s per hour", plain_w, "s"))
        rows.append(("EncryptedWriter, CPU s per hour", enc_w, "s"))
        rows.append(("  difference (encrypted - plain)", enc_w - plain_w, "s"))
        overhead = (enc.stat().st_size - len(data)) / len(data) * 100
        rows.append(("size overhead", overhead, "%"))

        def read_all() -> None:
            with EncryptedReader(enc, key, REC) as r:
                r.read_all()

        rows.append(("decrypt whole file, CPU s per hour",
                     cpu(read_all, args.repeats) / hours, "s"))

        opens = []
        for _ in range(20):
            t = time.perf_counter()
            EncryptedReader(enc, key, REC).close()
            opens.append((time.perf_counter() - t) * 1e3)
        rows.append(("open 1-hour file (index + final chunk), median", statistics.median(opens),
                     "ms"))

        rnd = random.Random(2)
        size = len(data)
        starts = [rnd.randrange(0, size - 65536) for _ in range(args.ranges)]
        warm, cold = [], []
        with EncryptedReader(enc, key, REC) as r:
            view = EncryptedWav(r, RATE)
            for s in starts:
                t = time.perf_counter()
                view.read_range(s, s + 65536)
                warm.append((time.perf_counter() - t) * 1e3)
        for s in starts[:50]:
            t = time.perf_counter()
            with EncryptedReader(enc, key, REC) as r:
                EncryptedWav(r, RATE).read_range(s, s + 65536)
            cold.append((time.perf_counter() - t) * 1e3)
        q = statistics.quantiles
        rows.append(("64 KiB range, open reader, median", statistics.median(warm), "ms"))
        rows.append(("64 KiB range, open reader, p95", q(warm, n=20)[-1], "ms"))
        rows.append(("64 KiB range incl. open, median", statistics.median(cold), "ms"))

        # an interrupted recording with a torn last chunk
        raw = enc.read_bytes()
        torn = Path(tmp) / "torn.enc"
        rec_t = []
        for _ in range(args.repeats):
            torn.write_bytes(raw[: len(raw) - 40 - 5000])  # drop final + part of last chunk
            t = time.perf_counter()
            kept = recover(torn, key, REC)
            rec_t.append(time.perf_counter() - t)
        rows.append(("recover interrupted 1-hour file", min(rec_t) / hours, "s per hour"))
        rows.append(("  audio lost by the torn chunk", (size - kept) / BYTES_PER_S, "s"))

    width = max(len(r[0]) for r in rows)
    print(f"AES-GCM: {result['aead']}; {args.seconds} s of 8 kHz 16-bit audio, "
          f"{DEFAULT_CHUNK_BYTES}-byte chunks, best of {args.repeats}")
    for name, value, unit in rows:
        print(f"  {name:<{width}}  {value:10.4f} {unit}")
    result["results"] = [{"name": n, "value": round(v, 6), "unit": u} for n, v, u in rows]
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
