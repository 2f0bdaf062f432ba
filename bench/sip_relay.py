"""N concurrent simulated SIP calls through the RTP relay (callrec.sip.relay) on loopback.

Each call: two legs, 50 packets/s each direction (G.711, 20 ms, 172-byte datagrams), its
phase spread over the 20 ms so the calls do not all send at once (as real calls do not).
Recording is on for every call (RtpReceiver decode + placing + 100 ms advance), as in service.

The load generator is a separate process (one core; the relay gets the other of a 2-core
machine, the target), holding both endpoints of every call. Each packet carries its send time
(CLOCK_MONOTONIC, shared by the processes) and the generator takes the arrival time, so the
latency includes the generator's own scheduling; the same generator sending endpoint to
endpoint directly (the "direct path") measures that, and "added" is relay minus direct, per
percentile.
  jitter   mean RFC 3550 A.8 interarrival jitter over the streams, ms
  drops    packets sent and never received (0.3 s grace at the end)
  cpu      the relay process's CPU time over the run: per call (ms of CPU per second of call)
           and in total (% of one core)

    python bench/sip_relay.py [--calls 10,50,100,150] [--seconds 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import subprocess
import sys
import time
from typing import Any

from benchlib import default_json, machine, write_result

from callrec.sip.b2bua import RelayLeg
from callrec.sip.relay import MediaRelay
from callrec.sip.rtp import build_rtp

HOST = "127.0.0.1"
PORT_BASE = 20000  # the production rtp_ports, below the ephemeral range the generator binds in
PTIME = 0.02
_STAMP = struct.Struct("!q")


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def generator(n: int, seconds: float, direct: bool) -> None:
    """The endpoints of n calls: print their addresses, wait for "go" on stdin, send and
    receive for `seconds`, print the measurements as JSON."""
    socks = []
    for _ in range(2 * n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        socks.append(s)
    print(json.dumps([s.getsockname()[1] for s in socks]), flush=True)
    targets = json.loads(sys.stdin.readline())  # where each endpoint sends
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    lat: list[float] = []
    jitter = [0.0] * (2 * n)
    transit: list[float | None] = [None] * (2 * n)
    received = 0
    seqs = [0] * (2 * n)
    pad = bytes(160 - _STAMP.size)
    t0 = time.monotonic() + 0.05
    end = t0 + seconds
    slot = 0  # the next call to send, in phase order
    tick = 0
    sent = 0

    def due() -> float:
        return t0 + tick * PTIME + slot * PTIME / n

    while True:
        now = time.monotonic()
        while now < end and due() <= now:
            for i in (2 * slot, 2 * slot + 1):  # both directions of the call
                payload = _STAMP.pack(time.monotonic_ns()) + pad
                pkt = build_rtp(0, seqs[i] & 0xFFFF, (seqs[i] * 160) & 0xFFFFFFFF, i + 1,
                                payload)
                seqs[i] += 1
                socks[i].sendto(pkt, tuple(targets[i]))
                sent += 1
            slot += 1
            if slot == n:
                slot, tick = 0, tick + 1
        if now > end + 0.3:
            break
        wait = min(due(), end + 0.3) - now if now < end else end + 0.3 - now
        for key, _ in sel.select(max(0.0, wait)):
            s = key.fileobj
            i = key.data
            while True:
                try:
                    data = s.recv(2048)  # type: ignore[union-attr]
                except BlockingIOError:
                    break
                arrival = time.monotonic_ns()
                sent_ns = _STAMP.unpack_from(data, 12)[0]
                d = (arrival - sent_ns) / 1e6
                lat.append(d)
                received += 1
                # RFC 3550 A.8 on the stream received by endpoint i (ms units).
                ts_ms = struct.unpack_from("!I", data, 4)[0] / 8.0
                tr = arrival / 1e6 - ts_ms
                prev = transit[i]
                if prev is not None:
                    jitter[i] += (abs(tr - prev) - jitter[i]) / 16
                transit[i] = tr
    print(json.dumps({"sent": sent, "received": received,
                      "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                      "max": max(lat) if lat else float("nan"),
                      "jitter": sum(jitter) / len(jitter)}), flush=True)


def run(n: int, seconds: float, direct: bool) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--generator", str(n), "--seconds",
                             str(seconds)] + (["--direct"] if direct else []),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    ports = json.loads(proc.stdout.readline())
    relay = None
    if direct:  # pbx endpoint of call k sends to its trunk endpoint and back
        targets = [(HOST, ports[i ^ 1]) for i in range(2 * n)]
    else:
        relay = MediaRelay({"lan": HOST, "trunk": HOST}, lambda e: None,
                           lambda c, d, pcm, start: None, port_range=(PORT_BASE, PORT_BASE + 4 * n),
                           media_timeout_s=30)
        relay.start()
        targets = []
        for k in range(n):
            lan_port, trunk_port = PORT_BASE + 4 * k, PORT_BASE + 4 * k + 2
            relay.start_call(f"c{k}", RelayLeg("lan", lan_port, (HOST, ports[2 * k]),
                                               ((0, "PCMU"),), 101),
                             RelayLeg("trunk", trunk_port, (HOST, ports[2 * k + 1]),
                                      ((0, "PCMU"),), 101))
            relay.start_recording(f"c{k}")
            targets += [(HOST, lan_port), (HOST, trunk_port)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    proc.stdin.write(json.dumps(targets) + "\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    proc.wait()
    if relay is not None:
        result["ignored"] = sum(relay.counters()["ignored"].values())  # type: ignore[attr-defined]
        relay.close()
        result["cpu_ms_per_call_s"] = cpu / n / wall * 1000
        result["cpu_core_pct"] = cpu / wall * 100
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", default="10,50,100,150")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", default=default_json("sip_relay"))
    ap.add_argument("--generator", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generator:
        generator(args.generator, args.seconds, args.direct)
        return 0
    rows = []
    print(f"{'calls':>5} {'pps':>6} {'added p50':>9} {'added p99':>9} {'relay p99':>9} "
          f"{'direct p99':>10} {'jitter':>7} {'drops':>6} {'cpu/call':>9} {'cpu':>6}")
    for n in (int(x) for x in args.calls.split(",")):
        base = run(n, args.seconds, direct=True)
        rel = run(n, args.seconds, direct=False)
        row = {"calls": n, "pps": 2 * n * 50, "seconds": args.seconds,
               "added_p50_ms": rel["p50"] - base["p50"], "added_p99_ms": rel["p99"] - base["p99"],
               "relay": rel, "direct": base, "drops": rel["sent"] - rel["received"],
               "jitter_ms": rel["jitter"], "cpu_ms_per_call_s": rel["cpu_ms_per_call_s"],
               "cpu_core_pct": rel["cpu_core_pct"]}
        rows.append(row)
        print(f"{n:>5} {row['pps']:>6} {row['added_p50_ms']:>7.3f}ms {row['added_p99_ms']:>7.3f}ms "
              f"{rel['p99']:>7.3f}ms {base['p99']:>8.3f}ms {rel['jitter']:>5.2f}ms "
              f"{row['drops']:>6} {rel['cpu_ms_per_call_s']:>6.2f}ms {rel['cpu_core_pct']:>5.1f}%",
              flush=True)
    write_result(args.json, {"machine": machine(), "goal": "100 calls, added p99 <= 2 ms",
                             "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
