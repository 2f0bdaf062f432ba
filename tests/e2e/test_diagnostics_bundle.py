"""The diagnostics bundle on the simulated appliance, after a call whose caller ID carried a
number and a name: neither is anywhere in the bundle (every member, decompressed), from the
web API (with the daemon's own recent log) or from `callrec diagnostics`."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from callrec.sim.harness import Appliance
from webclient import api, api_token

NUMBER, NAME = "0698765432", "DUPONT MARIE"
FORMS = (NUMBER, "06 98 76 54 32", "+33698765432", "33698765432", "698765432", NAME, "DUPONT",
         "MARIE")


def unzipped(blob: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n).decode("utf-8", errors="replace") for n in zf.namelist()}


def assert_nobody(members: dict[str, str], token: str) -> None:
    for name, text in members.items():
        for secret in (*FORMS, token):
            assert secret.lower() not in text.lower(), f"{secret!r} in {name}"


def test_no_number_or_name_in_the_bundle_after_a_call(appliance: Appliance,
                                                      media: dict[str, Any],
                                                      tmp_path: Path) -> None:
    appliance.call(direction="in", number=NUMBER, name=NAME, audio=str(media["speech"]),
                   rings=1, hangup="caller")
    appliance.wait_idle(timeout_s=30)
    token = api_token(appliance)
    code, headers, body = api(appliance, token, "/api/v1/diagnostics")
    assert code == 200 and headers["Content-Type"] == "application/zip"
    members = unzipped(body)
    log = members["logs/daemon.log"]
    assert "call finished" in log  # the daemon's own records of that call are there
    assert '"backend": "sim"' in members["versions.json"]
    assert_nobody(members, token)

    out = tmp_path / "bundle.zip"
    done = subprocess.run([sys.executable, "-m", "callrec", "diagnostics", "-o", str(out),
                           "--config", str(appliance.config_path)], capture_output=True,
                          text=True, env=appliance.env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    members = unzipped(out.read_bytes())
    assert '"state": "idle"' in members["status.json"]
    assert "in its memory" in members["logs/daemon.log"]
    assert_nobody(members, token)
