"""`callrec dsp dtmf|callerid|tones FILE.wav`: the line decoders on a recorded file, as JSON.

For technicians and outside test suites. Exit 0 when the file was read (even if nothing was
found), 2 with a clear message when it cannot be read. Fields are reported exactly as they
were on the line: numbers are not normalised here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callrec.dsp.callerid import CallerIdDecoder
from callrec.dsp.callerid_types import CallerIdMessage
from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.tones import ToneDetector
from callrec.dsp.wavin import WavError, read_wav

CHUNK = 800  # 100 ms: detectors give the same results for any chunking, so this is free


def _chunks(samples: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    return [samples[i : i + CHUNK] for i in range(0, len(samples), CHUNK)]


def _run(detector: Any, samples: npt.NDArray[np.float32]) -> list[Any]:
    found: list[Any] = []
    for chunk in _chunks(samples):
        found += detector.feed(chunk)
    return found + list(detector.flush())


def dtmf_report(samples: npt.NDArray[np.float32]) -> dict[str, Any]:
    events: list[DtmfEvent] = _run(DtmfDetector(), samples)
    return {
        "digits": "".join(e.digit for e in events),
        "events": [{"digit": e.digit, "start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3)}
                   for e in events],
    }


def callerid_report(samples: npt.NDArray[np.float32], standard: str = "auto") -> dict[str, Any]:
    messages: list[CallerIdMessage] = _run(CallerIdDecoder(standard=standard), samples)
    messages += dtmf_callerid_messages(samples)
    messages.sort(key=lambda m: m.start_s)
    return {"messages": [m.as_json() for m in messages]}


def dtmf_callerid_messages(samples: npt.NDArray[np.float32]) -> list[CallerIdMessage]:
    from callrec.dsp.dtmf_cid import DtmfCallerIdDecoder

    found: list[CallerIdMessage] = _run(DtmfCallerIdDecoder(), samples)
    return found


def tones_report(samples: npt.NDArray[np.float32], country: str = "fr") -> dict[str, Any]:
    tones = _run(ToneDetector(country), samples)
    return {
        "country": country,
        "tones": [
            {"tone": t.tone, "start_s": round(t.start_s, 3), "end_s": round(t.end_s, 3),
             "cycles": t.cycles,
             "cadence": {"on_s": None if t.on_s is None else round(t.on_s, 3),
                         "off_s": None if t.off_s is None else round(t.off_s, 3)}}
            for t in tones
        ],
    }


def main(args: argparse.Namespace) -> int:
    try:
        samples, _duration = read_wav(Path(args.file))
    except WavError as exc:
        print(f"callrec dsp: {exc}", file=sys.stderr)
        return 2
    if args.dsp_command == "dtmf":
        report = dtmf_report(samples)
    elif args.dsp_command == "callerid":
        report = callerid_report(samples, args.standard)
    else:
        report = tones_report(samples, args.country)
    json.dump(report, sys.stdout, ensure_ascii=False)
    print()
    return 0
