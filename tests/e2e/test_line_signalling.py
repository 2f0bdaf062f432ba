"""What the box hears on the line, end to end: caller ID bursts, dialled digits, keys pressed
during the prompt, and the exchange's busy tone, all decoded from the line audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callrec.sim.harness import Appliance
from recfiles import sidecar

RINGS = {"rings": 2, "ring_on_s": 0.4, "ring_off_s": 1.2}


def last_meta(app: Appliance) -> dict[str, Any]:
    return sidecar(app, app.wait_idle()["last_recording"])


@pytest.mark.parametrize(("cid", "number", "name", "absence"), [
    ("etsi-v23", "0612345678", "DUPONT MARIE", None),
    ("bell202", "2125551234", "SMITH JOHN", None),
    ("etsi-v23", None, None, "P"),
    ("dtmf", "0201234567", None, None),
])
def test_caller_id_is_decoded_from_the_line(appliance: Appliance, media: dict[str, Path],
                                            cid: str, number, name, absence) -> None:
    appliance.call(direction="in", cid=cid, number=number, name=name, absence=absence,
                   audio=str(media["speech"]), talk_s=1.0, **RINGS)
    meta = last_meta(appliance)
    assert (meta["caller_number"], meta["caller_name"]) == (number, name)
    assert meta["caller_absence"] == absence


def test_dialled_digits_give_the_called_number(appliance: Appliance,
                                               media: dict[str, Path]) -> None:
    appliance.call(direction="out", digits="0145678912", audio=str(media["speech"]),
                   answer_after_s=1.0, reversal_on_answer=True, talk_s=1.0)
    assert last_meta(appliance)["called_number"] == "0145678912"


def test_keys_pressed_during_the_prompt_are_heard(appliance: Appliance,
                                                  media: dict[str, Path]) -> None:
    # Any key but the refusal key (9 by default, tests/e2e/test_privacy_calls.py).
    appliance.call(direction="in", keys_during_prompt="1", audio=str(media["speech"]),
                   talk_s=1.0, **RINGS)
    assert last_meta(appliance)["keys_during_prompt"] == "1"


def test_busy_tone_ends_the_recording_when_the_line_signals_nothing(
    appliance: Appliance, media: dict[str, Path]
) -> None:
    reply = appliance.call(direction="in", audio=str(media["speech"]), hangup="caller-tone",
                           busy_s=6.0, **RINGS)
    meta = last_meta(appliance)
    assert meta["end_reason"] == "disconnect_tone"
    # The recording ended after a few busy cycles, not when the office hung up 6 s into the
    # tone (the recording starts at the answer, like the simulator's timeline offset).
    timeline = reply["timeline"]
    office_on_hook_after_answer = timeline["hangup"] - timeline["answer"]
    tone_started_after_answer = timeline["speech_end"] - timeline["answer"]
    assert tone_started_after_answer + 1.0 < meta["duration_s"]
    assert meta["duration_s"] < office_on_hook_after_answer - 1.5
