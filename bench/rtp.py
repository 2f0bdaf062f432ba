"""Per-packet cost of the RTP receive path (callrec.sip.rtp): what recording one direction of
a SIP call costs the CPU, and what that means for 100 concurrent calls.

Each case feeds N 20 ms packets (160 bytes of G.711, as phones and SIPp send) of one stream,
already in memory, so only the pure code is timed (no socket, no disk):
  parse         parse_rtp only (header, bounds checks, payload copy)
  decode        G.711 → PCM16 only (table lookup on the payload)
  receiver      RtpReceiver.feed: parse + sequence/timestamp tracking + jitter + decode +
                placing on the timeline, in order (the usual case)
  receiver, 2 % loss + 2 % reordering + 1 % duplicates: holes held and filled
  receiver + advance every 100 ms   as the recorder would call it for both channels
Best of 5 runs. "per core" is packets per second of one core at 100 % (the GIL makes one
process one core, whatever the machine has). 100 calls × 2 directions × 50 packets/s =
10,000 packets/s: the load column says what fraction of a core that is.

    python bench/rtp.py [--packets 50000] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from benchlib import default_json, machine, write_result

from callrec.dsp.g711 import ULAW_DECODE, ulaw_encode
from callrec.sip.rtp import RtpReceiver, build_rtp, parse_rtp

CALLS = 100
PPS_PER_CALL = 2 * 50  # two directions of 20 ms packets
EPOCH = 1000.0


def packets(n: int, impaired: bool) -> list[tuple[float, bytes]]:
    rng = random.Random(1)
    pcm = np.round(8000 * np.sin(2 * np.pi * 440 * np.arange(n * 160) / 8000)).astype(np.int16)
    codes = ulaw_encode(pcm)
    out = []
    for k in range(n):
        arrival = EPOCH + (k + 1) * 0.02 + rng.uniform(0, 0.005)
        raw = build_rtp(0, k & 0xFFFF, (k * 160) & 0xFFFFFFFF, 0x1234,
                        codes[k * 160 : (k + 1) * 160].tobytes())
        if impaired:
            r = rng.random()
            if r < 0.02:
                continue  # lost
            if r < 0.04:
                arrival += 0.03  # after the next one
            elif r < 0.05:
                out.append((arrival + 0.001, raw))  # duplicated
        out.append((arrival, raw))
    out.sort(key=lambda p: p[0])
    return out


def best(fn: Callable[[], None], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packets", type=int, default=50_000)
    ap.add_argument("--json", default=default_json("rtp"))
    args = ap.parse_args()
    n = args.packets
    clean = packets(n, impaired=False)
    rough = packets(n, impaired=True)
    raws = [raw for _, raw in clean]
    payloads = [parse_rtp(raw).payload for raw in raws]

    def parse_only() -> None:
        for raw in raws:
            parse_rtp(raw)

    def decode_only() -> None:
        for p in payloads:
            ULAW_DECODE[np.frombuffer(p, dtype=np.uint8)]

    def receiver(stream: list[tuple[float, bytes]],
                 tick: float | None = None) -> Callable[[], None]:
        def run() -> None:
            rx = RtpReceiver({0: "PCMU"}, 101, EPOCH)
            next_tick = EPOCH + (tick or 0.0)
            for arrival, raw in stream:
                rx.feed(raw, arrival)
                if tick is not None and arrival >= next_tick:
                    rx.advance(arrival)
                    next_tick += tick
            rx.finish()
        return run

    cases = [("parse", parse_only, n), ("decode", decode_only, n),
             ("receiver, in order", receiver(clean), n),
             ("receiver, 2% loss, 2% reorder, 1% dup", receiver(rough), len(rough)),
             ("receiver + advance every 100 ms", receiver(clean, 0.1), n)]
    rows: list[dict[str, Any]] = []
    print(f"{'case':40} {'us/packet':>10} {'packets/s/core':>15} {'100 calls':>10}")
    for name, fn, count in cases:
        secs = best(fn)
        us = secs / count * 1e6
        pps = count / secs
        load = CALLS * PPS_PER_CALL / pps
        rows.append({"case": name, "packets": count, "us_per_packet": round(us, 2),
                     "packets_per_s_per_core": round(pps), "core_fraction_100_calls":
                     round(load, 4)})
        print(f"{name:40} {us:10.2f} {pps:15,.0f} {load:9.1%}")
    full = rows[2]
    print(f"\n100 concurrent calls = {CALLS * PPS_PER_CALL:,} packets/s received: "
          f"{full['core_fraction_100_calls']:.1%} of one core here for the receive path "
          "(the relay's send and the recorder's writes come on top).")
    write_result(args.json, {"machine": machine(), "packets": n, "cases": rows,
                             "calls": CALLS, "packets_per_s_per_call": PPS_PER_CALL})
    return 0


if __name__ == "__main__":
    sys.exit(main())
