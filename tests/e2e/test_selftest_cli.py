"""`callrec selftest` on the simulated appliance: through the running daemon (its API, a
technician's token), with the daemon stopped (the CLI opens the board itself), and refused
during a call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from callrec_web.users import UserStore
from webclient import api

ITEMS = ["board", "pins", "audio", "storage", "index", "clock", "keys"]


def selftest(app: Appliance, *args: str, token: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in app.env.items() if k != "CALLREC_TOKEN"}
    if token:
        env["CALLREC_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "callrec", "selftest", *args, "--config",
                           str(app.config_path)], capture_output=True, text=True, env=env,
                          timeout=180)


def technician_token(app: Appliance) -> str:
    users = UserStore(app.config.data_dir / "users.json")
    if users.get("tech") is None:
        users.add_user("tech", "correct horse battery staple", ["technician"])
    return users.create_token("tech", "self-test")


def by_item(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {r["item"]: r for r in report["results"]}


def assert_healthy(report: dict[str, Any]) -> None:
    items = by_item(report)
    assert list(items) == ITEMS
    for item in ("board", "pins", "audio", "storage", "index", "keys"):
        assert items[item]["status"] == "ok", items[item]
    assert items["clock"]["status"] in ("ok", "warn")  # the test machine's NTP state
    assert "tone back" in items["audio"]["detail"]
    assert "sim board, MCU firmware" in items["board"]["detail"]


def test_selftest_through_the_running_daemon(appliance: Appliance) -> None:
    refused = selftest(appliance)
    assert refused.returncode == 3 and "token" in refused.stderr
    token = technician_token(appliance)
    out = selftest(appliance, "--json", token=token)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "daemon" and report["backend"] == "sim"
    assert_healthy(report)
    # The relay is open again, the LEDs as they were, the line idle.
    assert appliance.sim(cmd="status")["relay_closed"] is False
    assert appliance.recording_led() is False
    assert appliance.status()["state"] == "idle"
    # The table for people, and the last result for the web page.
    table = selftest(appliance, token=token)
    assert table.returncode == 0 and "audio" in table.stdout and "OK" in table.stdout
    code, _, body = api(appliance, token, "/api/v1/selftest")
    assert code == 200 and by_item(json.loads(body))["audio"]["status"] == "ok"


def test_selftest_is_refused_during_a_call(appliance: Appliance, media: dict[str, Any]) -> None:
    token = technician_token(appliance)
    call = threading.Thread(target=appliance.call, kwargs=dict(
        number="0611223344", rings=1, ring_on_s=0.4, audio=str(media["speech"])))
    call.start()
    try:
        deadline = time.monotonic() + 20
        while (appliance.status() or {}).get("state") in (None, "idle"):
            assert time.monotonic() < deadline, "the call did not start"
            time.sleep(0.05)
        code, _, body = api(appliance, token, "/api/v1/selftest", method="POST")
        assert code == 409
        assert json.loads(body) == {"error": "a call is in progress, try again after it"}
        out = selftest(appliance, token=token)
        assert out.returncode == 3 and "a call is in progress" in out.stderr
    finally:
        call.join(120)
    appliance.wait_idle(30)
    assert appliance.status()["last_call"]["outcome"] == "recorded"


def test_selftest_with_the_daemon_stopped_opens_the_board(appliance: Appliance) -> None:
    appliance.stop_proc("daemon")
    out = selftest(appliance, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "direct"
    assert_healthy(report)
    assert "fault LED switches" in by_item(report)["pins"]["detail"]
    assert appliance.sim(cmd="status")["relay_closed"] is False
    # Without the line simulator, the board check says what to start.
    appliance.stop_proc("line")
    out = selftest(appliance)
    assert out.returncode == 1
    assert "callrec sim line" in out.stdout and "FAIL" in out.stdout
    assert os.path.exists(appliance.config.runtime_dir + "/selftest.json")


def test_a_call_that_starts_during_the_selftest_takes_the_line_back(
        appliance: Appliance, media: dict[str, Any], tmp_path: Path) -> None:
    """The answer comes while the test tone plays: the test gives the relay back before the
    prompt closes it, the caller hears the whole prompt and the call is recorded."""
    token = technician_token(appliance)
    result: dict[str, Any] = {}

    def run() -> None:
        code, _, body = api(appliance, token, "/api/v1/selftest", method="POST")
        result.update(code=code, report=json.loads(body))

    test = threading.Thread(target=run)
    test.start()
    time.sleep(0.3)  # the checks have started: the tone plays from about 0.4 s
    heard = tmp_path / "heard.wav"
    reply = appliance.call(rings=1, ring_on_s=0.2, audio=str(media["speech"]),
                           heard_path=str(heard))
    test.join(60)
    assert reply["answered"] and reply["heard_prompt"]
    r, _ = best_match(read_wav(media["prompt"])[0], read_wav(heard)[0])
    assert r >= 0.95, f"the caller did not hear the whole prompt (r={r:.3f})"
    assert result["code"] == 200
    audio = by_item(result["report"])["audio"]
    assert audio["status"] == "fail" and "interrupted" in audio["detail"], audio
    appliance.wait_idle(30)
    assert appliance.status()["last_call"]["outcome"] == "recorded"
    assert appliance.sim(cmd="status")["relay_closed"] is False
