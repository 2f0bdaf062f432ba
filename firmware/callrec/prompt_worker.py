"""Child process: decode one uploaded audio file and write the line-ready prompt.

    python -m callrec.prompt_worker    (stdin: {"input": path, "output": path}, one JSON line)

An uploaded file is untrusted, and decoders (libsndfile, libmpg123, libvorbis, libopus) are
large C libraries: a crafted file could make one loop, allocate without end or crash. So it is
decoded here, in a process of its own under hard limits set before anything is read (address
space, CPU seconds, size of the files it may write, no core dump); the parent
(prompt_upload.py) also kills it after a wall-clock timeout. Whatever happens here, the web
server only sees a refusal.

Answer on stdout, one JSON object: {"ok": true, "seconds", "rms_dbfs", "peak_dbfs", "gain_db",
"format", "rate", "channels"} or {"ok": false, "code", "values"}.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import wave
from typing import Any

MAX_ADDRESS_SPACE = 1024 * 1024 * 1024  # numpy and the decoders fit with room; a bomb does not
MAX_CPU_S = 20
MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # 60 s at 8 kHz 16-bit is under 1 MB
ACCEPTED_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "FLAC": "FLAC", "OGG": "Ogg",
                    "MP3": "MP3"}


def limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE, MAX_ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CPU, (MAX_CPU_S, MAX_CPU_S + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT_BYTES, MAX_OUTPUT_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def refuse(code: str, **values: Any) -> dict[str, Any]:
    return {"ok": False, "code": code, "values": values}


def convert(source: str, target: str) -> dict[str, Any]:
    import soundfile as sf

    from callrec.prompt_audio import LINE_RATE, PromptAudioError, check_input, condition

    try:
        info = sf.info(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return refuse("not_audio")
    kind = ACCEPTED_FORMATS.get(info.format)
    if kind is None:
        return refuse("unsupported", format=str(info.format))
    try:
        check_input(int(info.samplerate), int(info.frames), int(info.channels))
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
        if samples.shape[0] == 0:
            return refuse("not_audio")
        result = condition(samples, int(rate))
    except PromptAudioError as exc:
        return refuse(exc.code, **exc.values)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return refuse("damaged")
    with wave.open(target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(LINE_RATE)
        w.writeframes(result.pcm)
    return {"ok": True, "seconds": result.seconds, "rms_dbfs": result.rms_dbfs,
            "peak_dbfs": result.peak_dbfs, "gain_db": result.gain_db, "format": kind,
            "rate": int(info.samplerate), "channels": int(info.channels)}


def main() -> int:
    limit_resources()
    try:
        job = json.loads(sys.stdin.readline())
        source, target = str(job["input"]), str(job["output"])
    except (ValueError, KeyError, TypeError):
        print(json.dumps(refuse("internal")))
        return 2
    answer = convert(source, target)
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    os._exit(0 if answer["ok"] else 1)  # skip interpreter teardown: the answer is out


if __name__ == "__main__":
    sys.exit(main())
