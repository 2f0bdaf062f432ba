"""Crash recovery on the simulated appliance: SIGKILL the daemon mid-recording, restart it,
and measure through the JSON API how much of the call survived.

One iteration (`run_crash_iteration`):

 1. an incoming call whose far end plays a known signal that never repeats (band-limited
    noise with a random envelope, `make_reference`) from the moment it answers, so every
    100 ms of a recording can be located in it by correlation;
 2. once the daemon's status says "recording", wait a random delay and SIGKILL the daemon;
 3. the far end talks a little longer and hangs up (the line simulator does not need the
    daemon); only then is the daemon restarted, as a supervisor would, on the same data;
 4. through the API only (never the files: the storage format is not the API's business),
    the new recording is found, its metadata read and its audio downloaded and decoded.

Loss is measured on the far end's clock. The far end starts playing reference sample 0 at
monotonic time T (the simulator's `speech_start`; CLOCK_MONOTONIC is one clock for every
process of the machine), so at the kill it had played `t_kill - T` seconds of the
reference. The recording is cut into 100 ms windows, each located in the reference; the end
of the last window that matches is how far into the reference the recording reaches. The
difference is the audio the far end had said before the kill that is not in the recording:

    lost_s = (t_kill - T) - reference position reached by the recording

It is an upper bound of what the daemon lost: it also counts audio that was still in the
far end's output buffer and in PulseAudio at the kill (`pipeline_s` estimates those), which
no software on the box could have saved. `lost_daemon_clock_s` is the same figure on the
daemon's clock: (kill - the recording's `started_at`) - recorded duration.

The test (tests/e2e/test_crash_recovery.py) asserts on the results; the benchmark
(bench/crash.py) summarises them.
"""

from __future__ import annotations

import io
import json
import statistics
import threading
import time
import urllib.error
import urllib.request
import wave
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from callrec.callflow import REFUSAL_GRACE_S
from callrec.sim.harness import Appliance, HarnessError

RATE = 8000
WINDOW_S = 0.1  # resolution of the audio match
MIN_R = 0.9  # correlation of a window that is "the same audio" (a bit-exact copy gives 1.0)
# From the status file saying "recording" back to the far end's first sample: the prompt, the
# refusal grace after it (callflow.REFUSAL_GRACE_S: the call is committed, and the status says
# "recording", up to a daemon tick after it) and the status poll. The far end must still be
# talking at the kill, or the call is complete.
STATUS_SLACK_S = 0.5 + REFUSAL_GRACE_S + 0.5
TALK_MARGIN_S = 1.5  # the far end goes on this long after the planned kill, then hangs up


# -- the far end's signal ------------------------------------------------------------------
class Reference:
    """A far-end signal that never repeats, and where a piece of audio sits in it."""

    def __init__(self, samples: np.ndarray, path: Path, rate: int = RATE) -> None:
        self.samples = samples.astype(np.float64)
        self.path, self.rate = path, rate
        self._size = 1 << (len(self.samples) + 8 * rate - 1).bit_length()
        self._spectrum = np.fft.rfft(self.samples, self._size)
        # Running sums of x and x^2 give each alignment's mean and energy in O(1).
        self._csum = np.concatenate([[0.0], np.cumsum(self.samples)])
        self._csum2 = np.concatenate([[0.0], np.cumsum(self.samples * self.samples)])

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def pearson(self, piece: np.ndarray, at: int) -> float:
        """Correlation between `piece` and the reference at sample `at` (0.0 if outside)."""
        n = len(piece)
        if at < 0 or at + n > len(self.samples) or n < 2:
            return 0.0
        ref = self.samples[at : at + n]
        a, b = ref - ref.mean(), piece - piece.mean()
        denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum() / denom) if denom else 0.0

    def locate(self, piece: np.ndarray) -> tuple[float, int]:
        """(correlation, offset) of the best normalised match of `piece` in the reference."""
        n = len(piece)
        if n < 2 or n > len(self.samples) or n + len(self.samples) > self._size:
            return 0.0, 0
        centred = piece - piece.mean()
        xc = np.fft.irfft(self._spectrum * np.conj(np.fft.rfft(centred, self._size)), self._size)
        lags = xc[: len(self.samples) - n + 1]
        sums = self._csum[n:] - self._csum[:-n]
        energy = (self._csum2[n:] - self._csum2[:-n]) - sums * sums / n
        piece_energy = float((centred * centred).sum())
        if piece_energy <= 0:
            return 0.0, 0
        r = lags / np.sqrt(np.maximum(energy[: len(lags)], 1e-9) * piece_energy)
        at = int(np.argmax(r))
        return float(r[at]), at


def make_reference(path: Path, seconds: float = 30.0, seed: int = 20240407,
                   rate: int = RATE) -> Reference:
    """Telephone-band noise (300-3400 Hz) under a random syllable-like envelope, as WAV.

    Noise, unlike repeated speech, has one sharp correlation peak at any point, and the
    envelope never goes silent, so every 100 ms of it can be found.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    noise = np.fft.irfft(spectrum, n)
    noise /= noise.std()
    # A new level every 50-300 ms, between -14 and -4 dB, smoothed over 20 ms.
    env = np.empty(n)
    i = 0
    while i < n:
        step = int(rng.uniform(0.05, 0.3) * rate)
        env[i : i + step] = 10 ** (rng.uniform(-14, -4) / 20)
        i += step
    kernel = np.ones(rate // 50) / (rate // 50)
    env = np.convolve(env, kernel, mode="same")
    pcm = np.clip(np.round(noise * env * 0.25 * 32767), -32767, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return Reference(pcm, path, rate)


# -- the JSON API --------------------------------------------------------------------------
class Api:
    """The appliance's JSON API with a bearer token (the daemon may be restarted under it)."""

    def __init__(self, app: Appliance, token: str) -> None:
        self.app, self.token = app, token

    def get(self, path: str, headers: dict[str, str] | None = None,
            timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
            self.app.base_url + path,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str) -> Any:
        code, _, body = self.get(path)
        if code != 200:
            raise HarnessError(f"GET {path}: HTTP {code}: {body[:200]!r}")
        return json.loads(body)

    def recordings(self) -> list[dict[str, Any]]:
        """Every recording the API lists (all pages), newest first."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.json(f"/api/v1/recordings?offset={len(items)}&limit=200")
            items.extend(page["items"])
            if not page["items"] or len(items) >= int(page["total"]):
                return items


def decode_audio(body: bytes, content_type: str) -> tuple[np.ndarray, int]:
    """Samples (float, 16-bit scale) and rate of what the API served: WAV with the standard
    library, anything else (the transcoded Ogg/Opus or FLAC) with libsndfile."""
    if body[:4] == b"RIFF" or "wav" in content_type:
        with wave.open(io.BytesIO(body), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise ValueError("served WAV is not mono 16-bit")
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            return data.astype(np.float64), w.getframerate()
    import soundfile

    data, rate = soundfile.read(io.BytesIO(body), dtype="int16", always_2d=False)
    return np.asarray(data, dtype=np.float64), int(rate)


# -- matching a recording against the reference ---------------------------------------------
@dataclass
class AudioMatch:
    recorded_s: float
    matched_s: float  # seconds of the recording found in the reference
    first_match_s: float | None  # where in the recording the far end's audio starts
    ref_start_s: float | None  # the reference position at the recording's first sample
    ref_end_s: float | None  # how far into the reference the recording reaches
    unmatched_after_start_s: float  # recording after the first match that is not the far end
    silent_after_start_s: float  # digital silence inside the call, left out of the matching
    min_r: float  # the worst window's correlation (among those that match)
    discontinuities: int  # matching windows that are not where the previous one ended


def _drop_inner_silence(x: np.ndarray, min_run: int = 8) -> tuple[np.ndarray, int]:
    """`x` without the runs of digital silence (>= 1 ms of exact zeros) after its first
    sound, and how many samples they held. On a loaded machine the simulated far end's
    playback can run dry (a PulseAudio underrun): the line then carries zeros and the far end
    resumes where it was. Nothing of its audio is missing there, but the inserted zeros would
    shift every later window against the reference. The reference itself (noise) never has
    such runs; the silence before the far end starts is kept (it is the recording's start)."""
    nonzero = np.flatnonzero(x)
    if nonzero.size == 0:
        return x, 0
    head, body = x[: nonzero[0]], x[nonzero[0] :]
    zero = body == 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], zero.view(np.int8), [0]))))
    keep = np.ones(len(body), dtype=bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= min_run:
            keep[start:end] = False
    return np.concatenate((head, body[keep])), int(len(body) - keep.sum())


def match_recording(ref: Reference, recorded: np.ndarray, window_s: float = WINDOW_S,
                    min_r: float = MIN_R) -> AudioMatch:
    win = max(16, int(window_s * ref.rate))
    recorded_s = len(recorded) / ref.rate
    recorded, silent_after = _drop_inner_silence(recorded)
    matched = unmatched_after = 0
    first: int | None = None
    start_ref: int | None = None
    end_ref: int | None = None
    worst = 1.0
    jumps = 0
    expected: int | None = None  # where the next window should sit in the reference
    for pos in range(0, len(recorded), win):
        piece = recorded[pos : pos + win]
        if len(piece) < 16:  # a sample or two cut by the crash: nothing to locate
            break
        r, at = (ref.pearson(piece, expected), expected) if expected is not None else (0.0, 0)
        if r < min_r and float(np.std(piece)) > 0:
            r, at = ref.locate(piece)
            if r >= min_r and expected is not None:
                jumps += 1
        if r >= min_r:
            if first is None:
                first, start_ref = pos, at - pos
            matched += len(piece)
            end_ref = at + len(piece)
            expected = end_ref
            worst = min(worst, r)
        else:
            expected = None
            if first is not None:
                unmatched_after += len(piece)
    return AudioMatch(
        recorded_s=recorded_s,
        matched_s=matched / ref.rate,
        first_match_s=None if first is None else first / ref.rate,
        ref_start_s=None if start_ref is None else start_ref / ref.rate,
        ref_end_s=None if end_ref is None else end_ref / ref.rate,
        unmatched_after_start_s=unmatched_after / ref.rate,
        silent_after_start_s=silent_after / ref.rate,
        min_r=round(worst, 4) if first is not None else 0.0,
        discontinuities=jumps,
    )


# -- one iteration -------------------------------------------------------------------------
@dataclass
class CrashResult:
    iteration: int
    number: str  # the caller ID of this call (to find duplicates)
    delay_s: float  # planned: from "recording" in the status to the kill
    killed_after_recording_s: float  # actual
    far_end_at_kill_s: float | None  # reference seconds the far end had played at the kill
    call_completed: bool  # the simulated call ended normally (after the kill)
    killed_before_hangup: bool
    restart_web_s: float  # restart (process spawned) -> web UI answering
    restart_ready_s: float  # restart -> API status: MCU link and audio device up
    kill_to_restart_s: float  # the far end finishing the call before the restart
    faults_after_restart: list[str] = field(default_factory=list)  # API status, once ready
    new_ids: list[str] = field(default_factory=list)
    rec_id: str | None = None
    status: str | None = None
    duration_s: float | None = None  # the API's metadata
    started_at: str | None = None
    caller_number: str | None = None
    audio_http: int | None = None
    content_type: str | None = None
    audio_rate: int | None = None
    match: AudioMatch | None = None
    lost_s: float | None = None  # far end's clock: said before the kill, not in the recording
    lost_daemon_clock_s: float | None = None  # (kill - started_at) - recorded duration
    errors: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        """Listed, marked interrupted, downloadable, and holding the far end's audio."""
        return (self.rec_id is not None and self.status == "interrupted"
                and self.audio_http == 200 and self.match is not None
                and self.match.ref_end_s is not None and not self.errors)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recovered"] = self.recovered
        return d


def _wait(check: Any, timeout_s: float, what: str, poll_s: float = 0.02) -> float:
    """Poll `check` until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(poll_s)
    raise HarnessError(f"timed out ({timeout_s} s) waiting for {what}")


def _api_status(api: Api) -> dict[str, Any] | None:
    try:
        code, _, body = api.get("/api/v1/status", timeout_s=2.0)
    except OSError:  # not listening yet
        return None
    return json.loads(body) if code == 200 else None


def restart_daemon(app: Appliance, api: Api, timeout_s: float = 60.0) -> tuple[float, float]:
    """Start the daemon again; (seconds to the web UI answering, seconds to board ready),
    both from the process's start.

    The harness starts it (and notices if it dies) on a helper thread while this one polls
    the API every 10 ms. Readiness is read from the API, not from status.json: the killed
    daemon's file still says the board was up.
    """
    failed: list[BaseException] = []

    def start() -> None:
        try:
            app.start_daemon(timeout_s=timeout_s, wait_ready=False)
        except BaseException as exc:  # handed to the caller below
            failed.append(exc)

    t0 = time.monotonic()
    starter = threading.Thread(target=start, name="crash-restart", daemon=True)
    starter.start()

    def answering() -> bool:
        return _api_status(api) is not None or bool(failed)

    def ready() -> bool:
        board = (_api_status(api) or {}).get("board", {})
        return bool(board.get("mcu_connected") and board.get("audio_open")) or bool(failed)

    try:
        t_web = _wait(answering, timeout_s, "the restarted daemon's web API", poll_s=0.01)
        t_ready = _wait(ready, timeout_s, "the restarted daemon's board", poll_s=0.01)
    finally:
        starter.join(timeout_s)
    if failed:
        raise failed[0]
    app.wait_ready(timeout_s)  # status.json fresh, and PortAudio's capture callbacks flowing
    return t_web - t0, t_ready - t0


def run_crash_iteration(app: Appliance, rng: np.random.Generator, reference: Reference,
                        api: Api, iteration: int, prompt_s: float,
                        min_delay_s: float = 0.3, max_delay_s: float = 6.0) -> CrashResult:
    """One call, killed mid-recording, then the daemon restarted and the recording checked."""
    before = {item["id"] for item in api.recordings()}
    number = f"0199{iteration:06d}"
    delay = float(rng.uniform(min_delay_s, max_delay_s))
    talk_s = prompt_s + STATUS_SLACK_S + delay + TALK_MARGIN_S
    if talk_s > reference.seconds:
        raise ValueError(f"reference ({reference.seconds} s) shorter than the call ({talk_s} s)")
    outcome: dict[str, Any] = {}

    def place_call() -> None:
        outcome["t_request"] = time.monotonic()
        try:
            outcome["reply"] = app.call(
                direction="in", number=number, cid="chip", audio=str(reference.path),
                rings=1, ring_on_s=0.4, ring_off_s=0.4,
                # The far end talks from the answer on, over the announcement: the recording
                # holds its signal from the first sample.
                wait_for_prompt=False, talk_s=talk_s,
            )
        except Exception as exc:  # reported with the result, never lost in a thread
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    call = threading.Thread(target=place_call, name=f"crash-call-{iteration}", daemon=True)
    call.start()
    daemon = app.procs["daemon"]
    try:
        t_recording = _wait(lambda: (app.status() or {}).get("state") == "recording"
                            or not call.is_alive(), 30.0, "the daemon's status 'recording'")
    except HarnessError:
        call.join(talk_s + 30.0)
        raise
    if not call.is_alive():
        raise HarnessError(f"call ended before the recording started: {outcome}\n"
                           f"{app.log_tail('daemon')}")
    time.sleep(max(0.0, t_recording + delay - time.monotonic()))
    t_kill = time.monotonic()
    wall_kill = time.time()
    daemon.kill()  # SIGKILL: no handler, no flush, no atexit
    daemon.wait(10)
    killed_after = t_kill - t_recording

    call.join(talk_s + 30.0)
    t_restart = time.monotonic()
    web_s, ready_s = restart_daemon(app, api)

    reply = outcome.get("reply") or {}
    timeline = reply.get("timeline", {})
    far_end_at_kill: float | None = None
    killed_before_hangup = False
    if "t_request" in outcome and "speech_start" in timeline:
        t_speech = outcome["t_request"] + float(timeline["speech_start"])
        far_end_at_kill = t_kill - t_speech
        if "hangup" in timeline:
            killed_before_hangup = t_kill < outcome["t_request"] + float(timeline["hangup"])
    result = CrashResult(
        iteration=iteration, number=number, delay_s=round(delay, 3),
        killed_after_recording_s=round(killed_after, 3),
        far_end_at_kill_s=None if far_end_at_kill is None else round(far_end_at_kill, 3),
        call_completed=bool(reply.get("ok")), killed_before_hangup=killed_before_hangup,
        restart_web_s=round(web_s, 3), restart_ready_s=round(ready_s, 3),
        kill_to_restart_s=round(t_restart - t_kill, 3),
    )
    status = _api_status(api) or {}
    result.faults_after_restart = [
        f"{f.get('part')}: {f.get('detail') or f.get('code')}" for f in status.get("faults", [])
    ]
    if "error" in outcome:
        result.errors.append(f"simulated call: {outcome['error']}")

    items = api.recordings()
    result.new_ids = sorted({item["id"] for item in items} - before)
    if len(result.new_ids) != 1:
        result.errors.append(f"{len(result.new_ids)} new recordings listed: {result.new_ids}")
    if not result.new_ids:
        return result
    rec_id = result.rec_id = result.new_ids[-1]
    meta = api.json(f"/api/v1/recordings/{rec_id}")
    result.status = meta.get("status")
    result.duration_s = meta.get("duration_s")
    result.started_at = meta.get("started_at")
    result.caller_number = meta.get("caller_number")
    code, headers, body = api.get(f"/api/v1/recordings/{rec_id}/audio")
    result.audio_http = code
    result.content_type = headers.get("Content-Type")
    if code != 200:
        result.errors.append(f"audio: HTTP {code}")
        return result
    try:
        recorded, rate = decode_audio(body, result.content_type or "")
    except (ValueError, EOFError, wave.Error, RuntimeError) as exc:
        result.errors.append(f"audio does not decode: {exc}")
        return result
    result.audio_rate = rate
    if rate != reference.rate:
        result.errors.append(f"audio at {rate} Hz, the line runs at {reference.rate} Hz")
        return result
    result.match = m = match_recording(reference, recorded)
    if m.ref_end_s is not None and far_end_at_kill is not None:
        result.lost_s = round(far_end_at_kill - m.ref_end_s, 3)
    if result.started_at:
        started = datetime.fromisoformat(result.started_at).timestamp()
        result.lost_daemon_clock_s = round((wall_kill - started) - m.recorded_s, 3)
    return result


# -- summary -------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 3)


def spread(values: list[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": round(max(values), 3) if values else None,
        "min": round(min(values), 3) if values else None,
        "mean": round(statistics.fmean(values), 3) if values else None,
    }


def summarize(results: list[CrashResult]) -> dict[str, Any]:
    lost = [r.lost_s for r in results if r.lost_s is not None]
    lost_daemon = [r.lost_daemon_clock_s for r in results if r.lost_daemon_clock_s is not None]
    pipeline = [r.lost_s - r.lost_daemon_clock_s for r in results
                if r.lost_s is not None and r.lost_daemon_clock_s is not None]
    return {
        "iterations": len(results),
        "recovered": sum(r.recovered for r in results),
        "interrupted_flag": sum(r.status == "interrupted" for r in results),
        "audio_http_200": sum(r.audio_http == 200 for r in results),
        "iterations_with_errors": sum(bool(r.errors) for r in results),
        "lost_s": spread(lost),
        "lost_daemon_clock_s": spread(lost_daemon),
        "pipeline_s": spread(pipeline),
        "killed_after_recording_s": spread([r.killed_after_recording_s for r in results]),
        "restart_web_s": spread([r.restart_web_s for r in results]),
        "restart_ready_s": spread([r.restart_ready_s for r in results]),
        # Includes the far end finishing its call: the daemon is restarted on an idle line.
        "kill_to_ready_s": spread([r.kill_to_restart_s + r.restart_ready_s for r in results]),
        "faults_after_restart": sum(bool(r.faults_after_restart) for r in results),
    }


def _num(x: float | None, width: int = 6) -> str:
    return f"{x:{width}.3f}" if x is not None else " " * (width - 1) + "-"


def table(results: list[CrashResult]) -> str:
    """One line per iteration, for a test's output or a benchmark's log."""
    lines = [f"{'#':>3} {'kill@':>6} {'farend':>7} {'rec_s':>6} {'reach':>7} {'lost':>6} "
             f"{'lost_d':>6} {'web':>5} {'ready':>5}  status"]
    for r in results:
        m = r.match
        lines.append(
            f"{r.iteration:>3} {_num(r.killed_after_recording_s)} {_num(r.far_end_at_kill_s, 7)} "
            f"{_num(m.recorded_s if m else None)} {_num(m.ref_end_s if m else None, 7)} "
            f"{_num(r.lost_s)} {_num(r.lost_daemon_clock_s)} {_num(r.restart_web_s, 5)} "
            f"{_num(r.restart_ready_s, 5)}  {r.status} {'; '.join(r.errors)}"
        )
    return "\n".join(lines)
