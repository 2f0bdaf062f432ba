"""Saying no, end to end on the simulated board: the caller's refusal key, the office's privacy
prefix and privacy button, and an objector on the do-not-record list. Each call that must not
be recorded leaves nothing in the data directory (no audio, no sidecar, no key), the evidence
names no number in clear, and a normal call afterwards is still recorded.

The calls run one after the other on one appliance (module scope), in file order: each test
also checks that the previous ones left nothing behind.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audiocheck import best_match, read_wav
from callrec.audit import open_audit_for_reading
from callrec.privacy.donotrecord import DoNotRecord, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
from callrec.sim.harness import Appliance, Pulse, write_config
from callrec.storage.open_store import open_keys
from recfiles import audio_files, sidecar, sidecar_files

RINGS = {"rings": 2, "ring_on_s": 0.4, "ring_off_s": 1.2}  # caller ID between the rings
REFUSER = "0611111111"
OBJECTOR = "0622222222"  # listed as "+33 6 22 22 22 22": another form of the same number
STAFF_CONTACT = "0633333333"
NUMBERS = (REFUSER, OBJECTOR, STAFF_CONTACT, "0145678912")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, pulse: Pulse,
        media: dict[str, Path]) -> Iterator[Appliance]:
    directory = tmp_path_factory.mktemp("privacy")
    config = write_config(directory)  # the product's default refusal key, 9
    shutil.copy(media["prompt"], directory / "data" / "prompts" / "test.wav")
    appliance = Appliance(directory, pulse, config)
    try:
        appliance.start()
        yield appliance
    finally:
        appliance.stop()


def nothing_stored(app: Appliance) -> None:
    """No audio, no sidecar, no recording key, nothing indexed."""
    assert audio_files(app) == [] and sidecar_files(app) == []
    keys = app.config.data_dir / "keys"
    assert [p.name for p in keys.glob("*/*.key")] == []
    assert app.status()["last_recording"] is None  # type: ignore[index]


def daemon_log(app: Appliance) -> str:
    return app.logs["daemon"].read_text(errors="replace")


def evidence_lines(app: Appliance, kind: str) -> list[str]:
    return [line for line in daemon_log(app).splitlines() if f"privacy evidence: {kind}" in line]


def pseudonym_of(app: Appliance, number: str) -> str:
    return Pseudonymizer(pseudonym_key(open_keys(app.config), app.config.data_dir))(number)


def prompt_heard(heard: Path, media: dict[str, Path]) -> bool:
    r, _ = best_match(read_wav(media["prompt"])[0], read_wav(heard)[0])
    return r > 0.9


def not_recorded(app: Appliance) -> dict[str, Any]:
    status = app.wait_idle(timeout_s=15)
    assert status["last_call"]["outcome"] == "not_recorded", status["last_call"]
    return status


def test_refusal_key_during_the_prompt_leaves_nothing_but_evidence(
    app: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    # The far end does not wait for the end of a prompt that the key cuts short.
    reply = app.call(direction="in", number=REFUSER, keys_during_prompt="9",
                     audio=str(media["speech"]), talk_s=2.0, wait_for_prompt=False,
                     heard_path=str(heard), **RINGS)
    assert reply["answered"]
    not_recorded(app)
    nothing_stored(app)
    [line] = evidence_lines(app, "call.refused")
    assert "reason=refusal key" in line and "line=line1" in line and "direction=in" in line
    assert f"subject={pseudonym_of(app, REFUSER)}" in line  # the pseudonym, never the number
    assert "prompt=test" in line and "prompt_sha256=" in line  # which prompt the caller heard
    assert REFUSER not in daemon_log(app)
    # The record itself is in the access log, under the caller's pseudonym.
    journal, _ = open_audit_for_reading(app.config)
    [entry] = [e for e in journal.entries() if e["action"] == "call.refused"]
    assert entry["target"] == pseudonym_of(app, REFUSER) and entry["actor"] == "system"
    assert entry["details"]["prompt_sha256"] and REFUSER not in json.dumps(entry)
    assert journal.verify().ok


def test_privacy_prefix_on_an_outgoing_call(app: Appliance, media: dict[str, Path]) -> None:
    app.call(direction="out", digits="*00145678912", audio=str(media["speech"]),
             answer_after_s=1.0, reversal_on_answer=True, wait_for_prompt=False, talk_s=2.0)
    not_recorded(app)
    nothing_stored(app)
    [line] = evidence_lines(app, "call.not_recorded")
    assert "reason=privacy prefix" in line and "subject=" not in line  # staff: no trace of whom


def test_objector_on_the_do_not_record_list_calling_in(
    app: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    # Listed while the daemon runs, as the web UI or the CLI would: it notices the change.
    path = app.config.privacy.do_not_record_path(app.config.data_dir)
    DoNotRecord.load(path, sealer_for(open_keys(app.config))).add(
        "+33 6 22 22 22 22", "number", "objection")
    heard = tmp_path / "heard.wav"
    app.call(direction="in", number=OBJECTOR, audio=str(media["speech"]), talk_s=2.0,
             wait_for_prompt=False, heard_path=str(heard), **RINGS)
    not_recorded(app)
    nothing_stored(app)
    assert not prompt_heard(heard, media)  # decided before the answer: no announcement
    lines = [x for x in evidence_lines(app, "call.not_recorded") if "do-not-record" in x]
    assert len(lines) == 1 and f"subject={pseudonym_of(app, OBJECTOR)}" in lines[0]
    assert b"2222" not in path.read_bytes()  # the list itself is sealed


def test_privacy_button_before_and_during_a_call(
    app: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    # Pressed between calls: the next call is not announced nor recorded.
    app.press_privacy_button()
    deadline = time.monotonic() + 5
    while not (app.status() or {}).get("next_call_private_until"):
        assert time.monotonic() < deadline, "the status page does not show the press"
        time.sleep(0.1)
    heard = tmp_path / "heard.wav"
    app.call(direction="in", number=STAFF_CONTACT, audio=str(media["speech"]), talk_s=2.0,
             wait_for_prompt=False, heard_path=str(heard), **RINGS)
    not_recorded(app)
    nothing_stored(app)
    assert not prompt_heard(heard, media)

    # Pressed while the call is being recorded: the recording stops and is erased; the LED,
    # read on the board's pin, was on while it was written and is off after.
    led: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            led.append(app.recording_led())
            stop.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        app.call(direction="in", number=STAFF_CONTACT, audio=str(media["speech"]), talk_s=6.0,
                 privacy_button_after_s=5.5, **RINGS)
        not_recorded(app)
    finally:
        stop.set()
        watcher.join()
    assert True in led, "the recording LED never came on"
    assert led[-1] is False and app.recording_led() is False
    assert "erased while in progress (privacy button)" in daemon_log(app)
    nothing_stored(app)
    buttons = [x for x in evidence_lines(app, "call.not_recorded") if "privacy button" in x]
    assert len(buttons) == 2 and all("subject=" not in x for x in buttons)


def test_a_normal_call_afterwards_is_recorded(app: Appliance, media: dict[str, Path]) -> None:
    app.call(direction="in", number="0644444444", keys_during_prompt="1",
             audio=str(media["speech"]), talk_s=2.0, **RINGS)
    status = app.wait_idle()
    assert status["last_call"]["outcome"] == "recorded"
    meta = sidecar(app, status["last_recording"])
    assert meta["caller_number"] == "0644444444" and meta["keys_during_prompt"] == "1"
    assert len(audio_files(app)) == 1
    # No number of the calls kept out shows anywhere in the daemon's log or the data files.
    log = daemon_log(app)
    for path in app.config.data_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert all(n.encode() not in raw for n in NUMBERS), path
    assert all(n not in log for n in NUMBERS)
