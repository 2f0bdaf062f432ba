"""The `callrec` command as a technician uses it, against the running simulated appliance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from callrec_web.users import UserStore
from recfiles import recording_wav, sidecar


def callrec(app: Appliance, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callrec", *args, "--config",
                           str(app.config_path)], input=stdin, capture_output=True, text=True,
                          env=app.env, timeout=120)


def test_sim_call_produces_a_recording_of_what_the_caller_said(
    appliance: Appliance, media: dict[str, Path], tmp_path: Path
) -> None:
    out = callrec(appliance, "sim", "call", "--number", "0611223344", "--name", "MARTIN",
                  "--audio", str(media["speech"]), "--rings", "2", "--ring-on-s", "0.4",
                  "--ring-off-s", "1.2", "--heard", str(tmp_path / "heard.wav"))
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["answered"] and reply["heard_prompt"]
    rec_id = appliance.wait_idle()["last_recording"]
    wav = recording_wav(appliance, rec_id, tmp_path)
    r, _ = best_match(read_wav(media["speech"])[0], read_wav(wav)[0])
    assert r >= 0.95
    meta = sidecar(appliance, rec_id)
    assert meta["caller_number"] == "0611223344" and meta["caller_name"] == "MARTIN"

    # status: human and JSON forms, no personal data
    status = callrec(appliance, "status")
    assert status.returncode == 0, status.stdout
    assert "line line1: idle" in status.stdout and "MCU connected" in status.stdout
    assert "clock: synchronised (set by CALLREC_CLOCK)" in status.stdout  # the harness's
    as_json = json.loads(callrec(appliance, "status", "--json").stdout)
    assert as_json["last_recording"] == rec_id
    assert "0611223344" not in json.dumps(as_json)

    # reindex rebuilds the index from the sidecars
    reindex = callrec(appliance, "reindex")
    assert reindex.returncode == 0 and reindex.stdout.strip() == "1 recordings indexed"


def test_status_reports_faults_with_exit_code(appliance_factory) -> None:
    app = appliance_factory(prompt="absent")
    app.start()
    out = callrec(app, "status")
    assert out.returncode == 1
    assert "FAULT announcement" in out.stdout and "absent.wav" in out.stdout


def test_user_add_from_a_shell(appliance: Appliance) -> None:
    weak = callrec(appliance, "user", "add", "alice", "--role", "supervisor",
                   "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "password" in weak.stderr.lower()
    ok = callrec(appliance, "user", "add", "alice", "--role", "supervisor", "--role",
                 "privacy_officer", "--password-stdin", stdin="a sentence long enough\n")
    assert ok.returncode == 0, ok.stderr
    user = UserStore(appliance.config.data_dir / "users.json").verify(
        "alice", "a sentence long enough")
    assert user is not None and set(user.roles) == {"supervisor", "privacy_officer"}
    # The first account closes the first-start setup.
    closed = callrec(appliance, "setup-code")
    assert closed.returncode == 1 and "already exists" in closed.stderr
    assert closed.stdout == ""


def test_status_after_the_daemon_stopped(appliance: Appliance) -> None:
    appliance.stop_proc("daemon")
    out = callrec(appliance, "status")
    assert out.returncode == 3 and out.stdout.startswith("callrec is stopped")
