"""`callrec dsp dtmf|callerid|tones`: the exact JSON formats, any WAV, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from callrec.dsp.gen_callerid import etsi_message, fsk_burst, sdmf_message
from callrec.dsp.gen_dtmf import dial
from callrec.dsp.gen_tones import tone_plan_signal


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, channels: int = 1,
              width: int = 2) -> Path:
    x = np.asarray(samples, dtype=np.float64)
    if rate != 8000:  # simple linear interpolation is enough to make a test file
        t = np.arange(int(len(x) * rate / 8000)) * 8000 / rate
        x = np.interp(t, np.arange(len(x)), x)
    if width == 2:
        data = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
    else:
        data = np.round(np.clip(x, -1, 1) * 127 + 128).astype(np.uint8)
    if channels == 2:
        data = np.repeat(data, 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.float32)


def callrec_dsp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callrec", "dsp", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(("rate", "channels", "width"), [(8000, 1, 2), (44100, 2, 2),
                                                         (16000, 1, 1)])
def test_dtmf(tmp_path: Path, rate: int, channels: int, width: int) -> None:
    signal = np.concatenate([silence(0.3), dial("123#", tone_s=0.1, gap_s=0.1), silence(0.3)])
    out = callrec_dsp("dtmf", str(write_wav(tmp_path / "d.wav", signal, rate, channels, width)))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["digits"] == "123#"
    first = report["events"][0]
    assert set(first) == {"digit", "start_s", "end_s"} and first["digit"] == "1"
    assert first["start_s"] == pytest.approx(0.30, abs=0.03)
    assert first["end_s"] == pytest.approx(0.40, abs=0.03)


def test_callerid_both_standards_and_a_bad_checksum(tmp_path: Path) -> None:
    signal = np.concatenate([
        silence(0.5), fsk_burst(etsi_message("0612345678", "DUPONT", datetime="11291030"),
                                "etsi-v23"),
        silence(1.0), fsk_burst(sdmf_message("2125551234"), "bell202"),
        silence(1.0), fsk_burst(etsi_message("0699999999", corrupt_checksum=True), "etsi-v23"),
        silence(0.5)])
    out = callrec_dsp("callerid", str(write_wav(tmp_path / "c.wav", signal)))
    assert out.returncode == 0, out.stderr
    messages = json.loads(out.stdout)["messages"]
    assert messages[0] == {"standard": "etsi-v23", "number": "0612345678", "name": "DUPONT",
                           "datetime": "11291030", "absence": None, "checksum_ok": True}
    assert messages[1]["standard"] == "bell202" and messages[1]["number"] == "2125551234"
    assert messages[2]["checksum_ok"] is False and messages[2]["number"] is None
    assert len(messages) == 3


def test_tones(tmp_path: Path) -> None:
    signal = np.concatenate([silence(0.3), tone_plan_signal("fr", "busy", 4.0), silence(0.5)])
    out = callrec_dsp("tones", str(write_wav(tmp_path / "t.wav", signal)))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    [busy] = report["tones"]
    assert busy["tone"] == "busy" and busy["cycles"] >= 3
    assert busy["start_s"] == pytest.approx(0.3, abs=0.1)
    assert busy["cadence"]["on_s"] == pytest.approx(0.5, abs=0.05)


def test_nothing_found_is_not_an_error(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "s.wav", silence(1.0))
    for command in ("dtmf", "callerid", "tones"):
        out = callrec_dsp(command, str(path))
        assert out.returncode == 0, out.stderr
    assert json.loads(callrec_dsp("dtmf", str(path)).stdout) == {"digits": "", "events": []}


@pytest.mark.parametrize("content", [None, b"", b"RIFF\x00\x00\x00\x00WAVEjunk", b"not audio"])
def test_unreadable_file_is_a_clear_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    out = callrec_dsp("dtmf", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith("callrec dsp: ") and "bad.wav" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_each_call_state_runs_only_the_detectors_it_needs() -> None:
    from callrec.dsp.chain import DETECTORS_BY_STATE, LineAnalyzer
    from callrec.dsp.gen_callerid import etsi_message, fsk_burst

    burst = np.concatenate([silence(0.2), fsk_burst(etsi_message("0612345678"), "etsi-v23"),
                            silence(0.5)])
    keys = np.concatenate([dial("9", tone_s=0.1), silence(0.3)])
    for state, wanted in DETECTORS_BY_STATE.items():
        a = LineAnalyzer(detectors=wanted)
        found = [e for chunk in (burst, keys) for e in a.feed(chunk)] + a.flush()
        kinds = {type(e).__name__ for e in found}
        assert ("CallerIdMessage" in kinds) == ("callerid" in wanted), state
        assert ("DtmfEvent" in kinds) == ("dtmf" in wanted), state
    # Switching a detector back on starts it afresh: a half-heard key is not reported.
    a = LineAnalyzer(detectors={"dtmf"})
    a.feed(dial("5", tone_s=0.1)[:400])
    a.listen_for({"tones"})
    a.feed(silence(0.2))
    a.listen_for({"dtmf"})
    assert a.feed(silence(0.5)) + a.flush() == []
