"""Convert an uploaded audio file into a prompt, in a confined child process (prompt_worker).

The web layer calls `convert()` with the upload's bytes; it never decodes them itself. The
child has a fixed argv (no shell) and hard resource limits; if it dies, overruns its time or
answers nonsense, the upload is refused as damaged and the web server carries on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callrec.prompt_audio import PromptAudioError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 30.0
WORKER = [sys.executable, "-m", "callrec.prompt_worker"]
# One thread per math library: their thread pools reserve address space the limit counts.
_ENV_THREADS = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass(frozen=True)
class Converted:
    wav: Path  # a new file next to the upload's temporary copy; the caller moves or deletes it
    seconds: float
    rms_dbfs: float
    peak_dbfs: float
    gain_db: float
    source_format: str  # "WAV", "FLAC", "Ogg", "MP3"


def convert(data: bytes, workdir: Path, timeout_s: float = TIMEOUT_S) -> Converted:
    """The upload as a line-ready WAV in `workdir`, or PromptAudioError (its code says why)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise PromptAudioError("too_big", "file too large", limit_mb=MAX_UPLOAD_BYTES / 2**20)
    if not data:
        raise PromptAudioError("not_audio", "empty file")
    workdir.mkdir(parents=True, exist_ok=True)
    fd, upload_name = tempfile.mkstemp(prefix=".upload-", dir=workdir)
    upload = Path(upload_name)
    out = upload.with_name(upload.name.replace(".upload-", ".converted-") + ".wav")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        answer = _run_worker({"input": str(upload), "output": str(out)}, timeout_s)
        if not answer.get("ok"):
            raw_values = answer.get("values")
            values: dict[str, Any] = raw_values if isinstance(raw_values, dict) else {}
            raise PromptAudioError(str(answer.get("code") or "damaged"), "refused", **values)
        try:
            return Converted(out, float(answer["seconds"]), float(answer["rms_dbfs"]),
                             float(answer["peak_dbfs"]), float(answer["gain_db"]),
                             str(answer["format"]))
        except (KeyError, TypeError, ValueError):
            raise PromptAudioError("damaged", "unreadable answer from the converter") from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        upload.unlink(missing_ok=True)


def _run_worker(job: dict[str, str], timeout_s: float) -> dict[str, Any]:
    child = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, **_ENV_THREADS})
    try:
        out, _err = child.communicate(json.dumps(job).encode() + b"\n", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise PromptAudioError("damaged", "decoding took too long") from None
    try:
        answer: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        # Killed by a limit (memory, CPU) or crashed: the file is what we cannot read.
        raise PromptAudioError("damaged", f"converter exited with {child.returncode}") from None
    if not isinstance(answer, dict):
        raise PromptAudioError("damaged", "unreadable answer from the converter")
    return answer
