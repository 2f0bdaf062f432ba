"""The files install.sh installs: systemd unit, config templates, ALSA config, udev rules."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from callrec.config import Config

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "callrec.service"
HAT = REPO / "hw" / "config" / "callrec-hat.toml"
SIM = REPO / "hw" / "config" / "callrec-sim.toml"
EXEC_START = "/opt/callrec/bin/callrec"


def load(path: Path) -> Config:
    """The daemon's own config loader (imported here: callrec's import group is ruff-ambiguous)."""
    from callrec.config import load as load_config

    return load_config(path)


def _unit_settings() -> list[tuple[str, str]]:
    pairs = []
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


# --- systemd unit ----------------------------------------------------------------------------


def _unit_copy_with_existing_exec_start(tmp_path: Path) -> Path:
    # /opt/callrec/bin/callrec exists only after ./install.sh, and systemd-analyze verify fails on
    # a missing ExecStart binary: verify an exact copy whose ExecStart names an existing
    # executable. Everything else (keys, values, dependencies) is checked as written.
    assert UNIT.read_text().count(EXEC_START) == 1
    stub = tmp_path / "callrec"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / "callrec.service"
    copy.write_text(UNIT.read_text().replace(EXEC_START, str(stub)))
    return copy


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    copy = _unit_copy_with_existing_exec_start(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "callrec" in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours == [], "\n".join(ours)


def test_unit_exposure_stays_low(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    copy = _unit_copy_with_existing_exec_start(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    if result.returncode != 0 and match is None:
        pytest.skip(f"systemd-analyze security --offline unsupported: {result.stderr.strip()}")
    assert match, result.stdout + result.stderr
    print(f"systemd-analyze security exposure: {match.group(1)}")
    assert float(match.group(1)) <= 3.0, result.stdout


def test_every_unit_option_has_a_comment_saying_why() -> None:
    previous = ""
    missing = []
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and not previous.startswith("#"):
            missing.append(line)
        previous = line
    assert missing == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("ExecStart", f"{EXEC_START} run --config /etc/callrec/callrec.toml"),
        ("User", "callrec"),
        ("Group", "callrec"),
        ("SupplementaryGroups", "audio dialout gpio video"),
        ("RuntimeDirectory", "callrec"),
        ("StateDirectory", "callrec"),
        ("ConfigurationDirectory", "callrec"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("DevicePolicy", "closed"),
        ("ReadWritePaths", "/var/lib/callrec -/media/callrec /etc/callrec"),
    ],
)
def test_unit_setting(key: str, value: str) -> None:
    assert (key, value) in _unit_settings()


def test_unit_allows_exactly_the_devices_it_needs() -> None:
    allowed = {v for k, v in _unit_settings() if k == "DeviceAllow"}
    assert allowed == {"char-ttyAMA rw", "char-ttyS rw", "char-alsa rw", "char-gpiochip rw",
                       "/dev/vcio rw"}
    keys = [k for k, _ in _unit_settings()]
    assert "StartLimitIntervalSec" in keys and "StartLimitBurst" in keys


# --- config templates ------------------------------------------------------------------------


@pytest.mark.parametrize("template", [HAT, SIM], ids=["hat", "sim"])
def test_template_parses_with_the_daemons_loader(template: Path) -> None:
    cfg = load(template)
    assert cfg.board.capture_device == cfg.board.playback_device == "callrec-line"


def test_hat_template() -> None:
    cfg = load(HAT)
    assert cfg.board.backend == "hat"
    assert cfg.board.serial_port == "/dev/serial0"
    assert cfg.storage.data_dir == "/var/lib/callrec"
    assert cfg.announcement.directory.startswith("/var/lib/callrec/")
    assert cfg.runtime_dir == "/run/callrec"


def test_sim_template() -> None:
    assert load(SIM).board.backend == "sim"


@pytest.mark.parametrize("template", [HAT, SIM], ids=["hat", "sim"])
def test_template_lists_every_key_of_config_py(template: Path) -> None:
    # A key added to config.py must be added (with its why) to both templates.
    from callrec import config as config_module

    data = tomllib.loads(template.read_text())
    expected = set(config_module._TOP_LEVEL)
    for section, cls in config_module._SECTIONS.items():
        expected |= {f"{section}.{f.name}" for f in dataclasses.fields(cls)}
    written = {k for k, v in data.items() if not isinstance(v, dict)}
    written |= {f"{s}.{k}" for s, table in data.items() if isinstance(table, dict) for k in table}
    assert written == expected


@pytest.mark.parametrize("template", [HAT, SIM], ids=["hat", "sim"])
def test_every_template_key_has_a_comment(template: Path) -> None:
    previous = ""
    bare = []
    for line in template.read_text().splitlines():
        is_key = bool(re.match(r"^[a-z_]+ = ", line))
        if is_key and not previous.startswith("#") and not re.match(r"^[a-z_]+ = ", previous):
            bare.append(line)
        previous = line
    # A key directly below another key shares that key's comment (e.g. capture/playback).
    assert bare == []


# --- ALSA and udev ---------------------------------------------------------------------------


def _alsa_pcms(tmp_path: Path, conf: str) -> list[str]:
    if not shutil.which("aplay"):
        pytest.skip("aplay not installed (Debian package alsa-utils)")
    top = tmp_path / "asound.conf"
    top.write_text(f"</usr/share/alsa/alsa.conf>\n<{REPO / 'hw' / 'alsa' / conf}>\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER",)}
    env["ALSA_CONFIG_PATH"] = str(top)
    result = subprocess.run(
        ["aplay", "-L"], capture_output=True, text=True, env=env, timeout=30, check=False
    )
    assert "error" not in result.stderr.lower(), result.stderr
    return [line for line in result.stdout.splitlines() if line and not line[0].isspace()]


def test_alsa_hat_config_defines_callrec_line(tmp_path: Path) -> None:
    pcms = _alsa_pcms(tmp_path, "callrec-hat.conf")
    assert "callrec-line" in pcms
    # The daemon matches device names as substrings: no other PCM may contain "callrec-line".
    assert [p for p in pcms if "callrec-line" in p] == ["callrec-line"]
    assert 'card "callrechat"' in (REPO / "hw" / "alsa" / "callrec-hat.conf").read_text()


def test_alsa_hat_config_yields_to_the_simulators_definition(tmp_path: Path) -> None:
    # On a Pi with the appliance installed, hw/sim/pulse-line.sh's ALSA config (read first)
    # must keep its callrec-line: the dev setup and the simulated tests run there too.
    sim = (
        'pcm.callrec-line { type asym playback.pcm { type pulse device "line_out" } '
        'capture.pcm { type pulse device "line_in.monitor" } '
        'hint { show on description "simulated" } }'
    )
    top = tmp_path / "both.conf"
    top.write_text(
        f"</usr/share/alsa/alsa.conf>\n{sim}\n<{REPO / 'hw' / 'alsa' / 'callrec-hat.conf'}>\n"
    )
    if not shutil.which("aplay"):
        pytest.skip("aplay not installed (Debian package alsa-utils)")
    env = {**os.environ, "ALSA_CONFIG_PATH": str(top)}
    result = subprocess.run(
        ["aplay", "-L"], capture_output=True, text=True, env=env, timeout=30, check=False
    )
    assert "error" not in result.stderr.lower() and "ALSA lib" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert lines[lines.index("callrec-line") + 1].strip() == "simulated"


def test_alsa_hil_config_defines_callrec_farend(tmp_path: Path) -> None:
    pcms = _alsa_pcms(tmp_path, "callrec-hil.conf")
    assert [p for p in pcms if "callrec-farend" in p] == ["callrec-farend"]


def test_udev_rules_are_well_formed() -> None:
    rules = REPO / "hw" / "udev" / "99-callrec.rules"
    token = re.compile(r'^\s*([A-Z_]+(\{[^}]+\})?)\s*(==|!=|\+=|=|:=)\s*"[^"]*"\s*$')
    lines = [ln for ln in rules.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines
    for line in lines:
        for part in line.split(","):
            assert token.match(part), f"{line!r}: bad token {part!r}"
    assert any('SYMLINK+="callrec-mcu"' in ln and 'GROUP="dialout"' in ln for ln in lines)
    if (
        shutil.which("udevadm")
        and "verify"
        in subprocess.run(["udevadm", "--help"], capture_output=True, text=True, check=False).stdout
    ):
        result = subprocess.run(
            ["udevadm", "verify", str(rules)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
