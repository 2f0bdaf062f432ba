"""systemd/callrec.service as a Type=notify service with a watchdog, checked by systemd itself.

systemd-analyze is in install.sh's TEST_PACKAGES (Debian package systemd): these tests fail,
never skip, without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "callrec.service"
EXEC_START = "/opt/callrec/bin/callrec"


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit as written, but with an ExecStart that exists here (verify checks it)."""
    text = UNIT.read_text()
    assert text.count(EXEC_START) == 1
    stub = tmp_path / "callrec"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / "callrec.service"
    copy.write_text(text.replace(EXEC_START, str(stub)))
    return copy


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze missing: ./install.sh --dev --with-tests installs it (systemd)"
    result = subprocess.run([tool, "verify", str(_verifiable_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert [ln for ln in output.splitlines() if "callrec" in ln] == [], output


def test_notify_and_watchdog_settings() -> None:
    s = _settings()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30"]
    assert s["TimeoutStartSec"] == ["90"]
    assert s["Restart"] == ["on-failure"]  # a watchdog kill counts as a failure: restarted
    assert s["LimitCORE"] == ["0"]  # a watchdog kill (SIGABRT) must not dump audio and keys


def test_watchdog_outlasts_the_daemons_ping_interval() -> None:
    from callrec import daemon

    (watchdog,) = _settings()["WatchdogSec"]
    # The loop turns every TICK_S at worst and pings at half the interval.
    assert daemon.TICK_S * 4 < int(watchdog) / 2


def test_every_option_says_why() -> None:
    previous = ""
    bare = []
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and not previous.startswith("#"):
            bare.append(line)
        previous = line
    assert bare == []
    # The why is in a comment of its own, right above, and says something.
    for match in re.finditer(r"^# (.*)\n(?:Type|NotifyAccess|WatchdogSec|TimeoutStartSec)=",
                             UNIT.read_text(), re.M):
        assert len(match.group(1)) > 20
