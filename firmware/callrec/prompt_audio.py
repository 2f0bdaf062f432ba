"""Turn any decoded recording into a consent prompt the line can play (pure: arrays in and out).

A phone line has a narrow band and a limited level: the announcement must be loud enough to be
understood and never so loud that the line or the far end's codec clips it. So an upload is
mixed to mono, resampled to the line's rate, trimmed of the silence around the words, then
brought to one loudness target: RMS at TARGET_RMS_DBFS unless the peaks would then exceed
PEAK_LIMIT_DBFS, in which case the peaks decide. What cannot become a good prompt is refused
with a reason (`PromptAudioError.code`), never silently "fixed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callrec.dsp.resample import resample

LINE_RATE = 8000
MIN_SECONDS = 2.0
MAX_SECONDS = 60.0
TARGET_RMS_DBFS = -20.0
PEAK_LIMIT_DBFS = -3.0
SILENT_DBFS = -50.0  # loudest 20 ms below this: nothing to announce
TRIM_BELOW_PEAK_DB = 40.0  # edges quieter than this under the loudest frame are silence
TRIM_MARGIN_S = 0.05  # kept around the words so the first consonant is not cut
CLIP_LEVEL = 0.999  # of full scale: a sample there was (almost surely) clipped
CLIP_RUN = 3  # consecutive samples at full scale: a flattened waveform, not a lucky peak
MAX_CLIPPED_FRACTION = 0.01  # more than 1 % of flattened samples: distortion we cannot undo
MIN_INPUT_RATE = 8000
MAX_INPUT_RATE = 192000
MAX_DECODED_SAMPLES = 24_000_000  # all channels: 96 MB as float32, whatever the rate
MAX_RESAMPLE_PHASES = 640  # rates with a stranger ratio to 8 kHz are not real audio rates
FRAME_S = 0.02


class PromptAudioError(ValueError):
    """The audio cannot become a prompt; `code` names the reason for the UI, `values` its
    figures (seconds, rate)."""

    def __init__(self, code: str, message: str, **values: float) -> None:
        super().__init__(message)
        self.code = code
        self.values = values


@dataclass(frozen=True)
class Conditioned:
    pcm: bytes  # mono 16-bit little-endian at LINE_RATE
    seconds: float
    rms_dbfs: float
    peak_dbfs: float
    gain_db: float


def dbfs(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else -math.inf


def check_input(rate: int, frames: int, channels: int) -> None:
    """Before decoding: refuse what is too long or not at an audio rate, so a file announcing
    hours of audio is never read into memory."""
    if channels < 1 or not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise PromptAudioError("bad_rate", f"unsupported sample rate {rate} Hz", rate=rate)
    if LINE_RATE // math.gcd(rate, LINE_RATE) > MAX_RESAMPLE_PHASES:
        raise PromptAudioError("bad_rate", f"unsupported sample rate {rate} Hz", rate=rate)
    # Silence is trimmed later: allow twice the limit before decoding.
    if frames > 2 * MAX_SECONDS * rate:
        raise PromptAudioError("too_long", "longer than the limit", seconds=frames / rate,
                               limit=MAX_SECONDS)
    if frames * channels > MAX_DECODED_SAMPLES:
        raise PromptAudioError("too_much_data", "too many samples", seconds=frames / rate)


def to_mono(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(frames,) or (frames, channels) floats in [-1, 1] to one channel (their mean)."""
    data = np.asarray(samples)
    if data.ndim == 2:
        return data.mean(axis=1, dtype=np.float64)
    return data.astype(np.float64).reshape(-1)


def clipped_fraction(samples: npt.ArrayLike) -> float:
    """The share of samples inside runs of CLIP_RUN or more at full scale, in any channel."""
    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[:, None]
    if data.size == 0:
        return 0.0
    worst = 0
    for channel in data.T:
        at_top = np.concatenate(([0], (np.abs(channel) >= CLIP_LEVEL).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(at_top))
        runs = edges[1::2] - edges[::2]
        worst = max(worst, int(runs[runs >= CLIP_RUN].sum()))
    return worst / data.shape[0]


def frame_rms(x: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    n = max(1, int(rate * FRAME_S))
    count = len(x) // n
    if count == 0:
        return np.array([math.sqrt(float(np.mean(x**2)))]) if len(x) else np.zeros(0)
    frames = x[: count * n].reshape(count, n)
    return np.sqrt(np.mean(frames**2, axis=1))


def trim_silence(x: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """`x` without the silence before the first and after the last sound (plus a margin)."""
    levels = frame_rms(x, rate)
    if levels.size == 0:
        return x
    floor = max(float(levels.max()) * 10 ** (-TRIM_BELOW_PEAK_DB / 20), 10 ** (SILENT_DBFS / 20))
    loud = np.flatnonzero(levels >= floor)
    if loud.size == 0:
        return x[:0]
    n = max(1, int(rate * FRAME_S))
    margin = int(rate * TRIM_MARGIN_S)
    start = max(0, int(loud[0]) * n - margin)
    end = min(len(x), (int(loud[-1]) + 1) * n + margin)
    return x[start:end]


def condition(samples: npt.ArrayLike, rate: int) -> Conditioned:
    """Decoded samples (floats in [-1, 1], frames x channels) to a line-ready prompt, or
    PromptAudioError: bad_rate, too_long, too_short, silent, clipped."""
    data = np.asarray(samples)
    if not np.issubdtype(data.dtype, np.floating):
        raise PromptAudioError("not_audio", "the samples are not numbers")
    channels = data.shape[1] if data.ndim == 2 else 1
    check_input(rate, data.shape[0] if data.ndim else 0, channels)
    if not np.all(np.isfinite(data)):
        raise PromptAudioError("not_audio", "the samples are not numbers")
    clipped = clipped_fraction(data)
    if clipped > MAX_CLIPPED_FRACTION:
        raise PromptAudioError("clipped", "the recording is clipped", percent=100 * clipped)
    mono = to_mono(data)
    mono = mono - float(mono.mean()) if mono.size else mono  # a DC offset only eats headroom
    line = resample(mono, rate, LINE_RATE).astype(np.float64)
    levels = frame_rms(line, LINE_RATE)
    if levels.size == 0 or dbfs(float(levels.max())) < SILENT_DBFS:
        raise PromptAudioError("silent", "the recording is silent")
    line = trim_silence(line, LINE_RATE)
    seconds = len(line) / LINE_RATE
    if seconds < MIN_SECONDS:
        raise PromptAudioError("too_short", "shorter than the minimum", seconds=seconds,
                               limit=MIN_SECONDS)
    if seconds > MAX_SECONDS:
        raise PromptAudioError("too_long", "longer than the limit", seconds=seconds,
                               limit=MAX_SECONDS)
    rms = math.sqrt(float(np.mean(line**2)))
    peak = float(np.max(np.abs(line)))
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_LIMIT_DBFS / 20) / peak)
    out = np.clip(np.round(line * gain * 32767), -32768, 32767).astype("<i2")
    final = out.astype(np.float64) / 32768
    return Conditioned(
        pcm=out.tobytes(),
        seconds=len(out) / LINE_RATE,
        rms_dbfs=round(dbfs(math.sqrt(float(np.mean(final**2)))), 2),
        peak_dbfs=round(dbfs(float(np.max(np.abs(final)))), 2),
        gain_db=round(dbfs(gain), 2),
    )
