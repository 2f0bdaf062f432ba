"""The recorder under stress: a busy web UI during a call, and a crash in the middle of one."""

from __future__ import annotations

import json
import threading
import time
import wave
from pathlib import Path

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from recfiles import audio_files, recording_wav, sidecar
from webclient import api, api_token

CALL = {"rings": 2, "ring_on_s": 0.4, "ring_off_s": 1.0}


def test_web_load_during_a_call_loses_no_audio(appliance: Appliance,
                                               media: dict[str, Path],
                                               tmp_path: Path) -> None:
    appliance.call(direction="in", audio=str(media["speech"]), talk_s=3.0, **CALL)
    first = appliance.wait_idle()["last_recording"]
    token = api_token(appliance)
    stop = threading.Event()
    results: list[int] = []

    def hammer(path: str) -> None:
        deadline = time.monotonic() + 60  # bounded even if the call hangs
        while not stop.is_set() and time.monotonic() < deadline:
            results.append(api(appliance, token, path)[0])

    paths = [f"/api/v1/recordings/{first}/audio", "/api/v1/recordings",
             "/api/v1/status", f"/api/v1/recordings/{first}/audio"]
    threads = [threading.Thread(target=hammer, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    try:
        appliance.call(direction="in", audio=str(media["speech"]), **CALL)
    finally:
        stop.set()
        for t in threads:
            t.join()
    second = appliance.wait_idle()["last_recording"]
    assert second != first
    assert len(results) > 40 and set(results) == {200}, (len(results), set(results))
    # Every sample the caller said is in the recording, in one piece.
    recorded = read_wav(recording_wav(appliance, second, tmp_path))[0]
    r, _ = best_match(read_wav(media["speech"])[0], recorded)
    assert r >= 0.95, f"speech correlation {r:.4f} under web load"


def test_crash_mid_call_keeps_all_but_the_last_second(appliance: Appliance,
                                                      media: dict[str, Path],
                                                      tmp_path: Path) -> None:
    call = threading.Thread(target=appliance.call, kwargs={
        "direction": "in", "number": "0633333333", "audio": str(media["speech"]),
        "talk_s": 8.0, **CALL})
    call.start()
    deadline = time.monotonic() + 30
    while (appliance.status() or {}).get("state") != "recording":
        assert time.monotonic() < deadline, "the call never reached the recording state"
        time.sleep(0.05)
    recording_since = time.monotonic()
    time.sleep(3.0)
    daemon = appliance.procs.pop("daemon")
    daemon.kill()  # power cut, as far as the process is concerned
    daemon.wait()
    killed_after = time.monotonic() - recording_since
    call.join()

    appliance.start_daemon()  # recovers at start
    [stored] = audio_files(appliance)
    meta = sidecar(appliance, stored.stem)
    assert meta["status"] == "interrupted" and meta["caller_number"] == "0633333333"
    assert meta["announcement"]["completed"] is True
    wav = recording_wav(appliance, stored.stem, tmp_path)
    with wave.open(str(wav)) as w:  # a valid, playable WAV
        frames = w.getnframes()
        assert frames * 2 + 44 == wav.stat().st_size
    # The file holds the prompt time plus what was recorded before the kill, minus <= ~1 s.
    assert meta["duration_s"] == frames / 8000
    assert meta["duration_s"] >= killed_after - 1.2, (meta["duration_s"], killed_after)
    token = api_token(appliance)
    code, _, body = api(appliance, token, "/api/v1/recordings")
    assert code == 200
    assert [i["id"] for i in json.loads(body)["items"]] == [meta["id"]]
