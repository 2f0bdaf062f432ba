"""A call's whole path on the simulated board: line -> announcement -> disk -> API -> erasure.

Everything is real: the HAT firmware runs on a pty and is read with pyserial, pins are
gpiozero MockFactory pins, audio crosses PulseAudio through PyAudio. Audio is compared by
correlation, files and index are inspected, HTTP status and content are checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from recfiles import audio_files, recording_wav, sidecar, sidecar_files
from webclient import api, api_token

FAST_RINGS = {"ring_on_s": 0.4, "ring_off_s": 1.0}  # caller ID needs ~0.6 s between rings


def test_incoming_call_is_announced_recorded_listed_and_erased(
    appliance: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    reply = appliance.call(direction="in", number="0612345678", name="DUPONT MARIE",
                           audio=str(media["speech"]), rings=2, heard_path=str(heard),
                           **FAST_RINGS)
    assert reply["answered"] and reply["heard_prompt"]
    status = appliance.wait_idle()
    assert status["last_call"]["outcome"] == "recorded"

    # 1. The far end heard the consent prompt, intact.
    prompt, _ = read_wav(media["prompt"])
    heard_audio, _ = read_wav(heard)
    r_prompt, prompt_at = best_match(prompt, heard_audio)
    assert r_prompt >= 0.99, f"prompt correlation {r_prompt:.4f}"

    # 2. The recording holds what the far end said.
    rec_id = status["last_recording"]
    [stored] = audio_files(appliance)
    assert stored.stem == rec_id and stored.suffix == ".cra"  # encrypted at rest
    wav = recording_wav(appliance, rec_id, tmp_path)
    recorded, rate = read_wav(wav)
    speech, _ = read_wav(media["speech"])
    r_speech, speech_at = best_match(speech, recorded)
    assert rate == 8000
    assert r_speech >= 0.95, f"speech correlation {r_speech:.4f}"
    print(f"prompt r={r_prompt:.5f} at {prompt_at / 8000:.3f} s in what the far end heard; "
          f"speech r={r_speech:.5f} at {speech_at / 8000:.3f} s into the recording")

    # 3. Metadata: numbers, direction, proof of the announcement.
    meta = sidecar(appliance, rec_id)
    assert meta["direction"] == "in" and meta["line"] == "line1"
    assert (meta["caller_number"], meta["caller_name"]) == ("0612345678", "DUPONT MARIE")
    assert meta["ring_count"] == 2
    ann = meta["announcement"]
    assert ann["completed"] is True and ann["prompt"] == "test"
    assert ann["sha256"] == hashlib.sha256(media["prompt"].read_bytes()).hexdigest()
    assert meta["started_at"] <= ann["started_at"] < meta["ended_at"]
    assert meta["status"] == "complete" and meta["end_reason"] == "hangup"
    assert meta["duration_s"] == pytest.approx(len(recorded) / 8000, abs=0.01)
    assert meta["audio"]["bytes"] == 2 * len(recorded)
    # The harness says the clock is synchronised (CALLREC_CLOCK): the times are trusted.
    assert meta["clock_synchronised"] is True and "clock_note" not in meta
    # No personal data in any file or folder name.
    for path in appliance.config.data_dir.rglob("*"):
        assert "0612345678" not in path.name and "DUPONT" not in path.name

    # 4. The API lists it and serves the audio with Range requests.
    token = api_token(appliance)
    code, _, body = api(appliance, token, "/api/v1/recordings")
    assert code == 200
    listing = json.loads(body)
    assert listing["total"] == 1 and listing["items"][0]["id"] == rec_id
    code, headers, body = api(appliance, token, f"/api/v1/recordings/{rec_id}/audio",
                              headers={"Range": "bytes=44-1043"})
    assert code == 206 and body == wav.read_bytes()[44:1044]
    assert headers["Content-Range"].startswith("bytes 44-1043/")

    # 5. Erasure removes the file, the sidecar and the index entry.
    code, _, body = api(appliance, token, f"/api/v1/recordings/{rec_id}", method="DELETE")
    assert code == 200 and json.loads(body) == {"erased": rec_id}
    assert audio_files(appliance) == [] and sidecar_files(appliance) == []
    assert not list((appliance.config.data_dir / "keys").glob(f"*/{rec_id}.key"))
    assert api(appliance, token, f"/api/v1/recordings/{rec_id}")[0] == 404


def test_a_call_recorded_with_an_unsynchronised_clock_is_marked(
    appliance_factory: Any, media: dict[str, Path]
) -> None:
    app = appliance_factory()
    app.clock = "unsynchronised"  # callrec.clock's CALLREC_CLOCK: as after a boot offline
    app.start()
    token = api_token(app)
    code, _, body = api(app, token, "/api/v1/status")
    clock = json.loads(body)["clock"]
    assert code == 200 and clock["synchronised"] is False and "CALLREC_CLOCK" in clock["source"]
    assert json.loads(body)["faults"] == []  # just started: a warning, not a fault
    app.call(direction="in", number="0612345678", audio=str(media["speech"]), rings=1,
             **FAST_RINGS)
    rec_id = app.wait_idle()["last_recording"]
    meta = sidecar(app, rec_id)
    assert meta["clock_synchronised"] is False and "not been synchronised" in meta["clock_note"]
    code, _, body = api(app, token, "/api/v1/recordings")
    [item] = json.loads(body)["items"]
    assert item["id"] == rec_id and item["clock_synchronised"] is False


def test_outgoing_call_answered_by_reversal_and_ended_by_far_end(
    appliance: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    appliance.call(direction="out", digits="0145678912", audio=str(media["speech"]),
                   answer_after_s=1.0, reversal_on_answer=True, hangup="caller")
    status = appliance.wait_idle()
    meta = sidecar(appliance, status["last_recording"])
    assert meta["direction"] == "out" and meta["end_reason"] == "clear_down"
    # Whether the answer delay fired first or not, the exchange's reversal is the answer and
    # the announcement played in full after it.
    assert meta["answered_by"] == "reversal" and meta["announcement"]["completed"]
    assert meta["caller_number"] is None
    recorded, _ = read_wav(recording_wav(appliance, meta["id"], tmp_path))
    r, _ = best_match(read_wav(media["speech"])[0], recorded)
    assert r >= 0.95


def test_unanswered_and_abandoned_calls_leave_no_file(
    appliance: Appliance, media: dict[str, Path]
) -> None:
    appliance.call(direction="in", number="0611111111", answer=False, rings=2, **FAST_RINGS)
    # The line goes quiet: the ring timeout (3 s) decides that nobody answered.
    st = appliance.wait_idle(timeout_s=15)
    assert st["last_call"]["outcome"] == "unanswered"
    appliance.call(direction="in", audio=str(media["speech"]), hangup_after_s=0.3,
                   wait_for_prompt=False, **FAST_RINGS)
    st = appliance.wait_idle()
    assert st["last_call"]["outcome"] == "ended_during_announcement"
    assert audio_files(appliance) == [] and sidecar_files(appliance) == []


def test_back_to_back_calls_make_separate_recordings(
    appliance: Appliance, media: dict[str, Path]
) -> None:
    for number in ("0100000001", "0100000002", "0100000003"):
        # Two rings: caller ID comes between the first and the second ring.
        appliance.call(direction="in", number=number, audio=str(media["speech"]), rings=2,
                       talk_s=1.0, **FAST_RINGS)
    appliance.wait_idle()
    files = audio_files(appliance)
    assert len(files) == 3
    numbers = sorted(sidecar(appliance, f.stem)["caller_number"] for f in files)
    assert numbers == ["0100000001", "0100000002", "0100000003"]


def test_serial_garbage_mid_call_loses_nothing(
    appliance: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    import threading

    garbage = threading.Timer(1.5, lambda: appliance.sim(cmd="garbage",
                                                         hex="24ffff2a0a00de adbeef"
                                                         .replace(" ", "") * 20))
    garbage.start()
    appliance.call(direction="in", number="0622222222", audio=str(media["speech"]), rings=1,
                   **FAST_RINGS)
    garbage.join()
    status = appliance.wait_idle()
    assert status["last_call"]["outcome"] == "recorded"
    assert status["board"]["mcu_connected"]
    wav = recording_wav(appliance, status["last_recording"], tmp_path)
    r, _ = best_match(read_wav(media["speech"])[0], read_wav(wav)[0])
    assert r >= 0.95
