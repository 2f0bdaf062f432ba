"""mDNS: hw/avahi/callrec.service, and install.sh's steps that install it and name the host.

install.sh's appliance mode writes to /etc and needs root, so these tests run its functions
(prod_mdns, prod_hostname and the helpers they use, cut out of install.sh as written) in a bash
whose paths point into a temporary folder, with systemd "not running" (as in an image build).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AVAHI = REPO / "hw" / "avahi" / "callrec.service"
INSTALL = REPO / "install.sh"
HELPERS = ["is_true", "systemd_running", "say", "step", "ok", "note", "warn", "die", "run",
           "try", "install_file"]


def _function(name: str) -> str:
    """One top-level function of install.sh, as written."""
    text = INSTALL.read_text()
    match = re.search(rf"^{name}\(\) \{{ .* \}}$", text, re.M) or re.search(
        rf"^{name}\(\) \{{\n.*?^\}}$", text, re.M | re.S
    )
    assert match, f"install.sh has no function {name}"
    return match.group(0)


def _array(name: str) -> list[str]:
    match = re.search(rf"^{name}=\((.*?)\)$", INSTALL.read_text(), re.M | re.S)
    assert match, name
    return match.group(1).split()


def _services(path: Path) -> list[tuple[str | None, str | None, list[str]]]:
    root = ET.parse(path).getroot()
    assert root.tag == "service-group"
    return [
        (s.findtext("type"), s.findtext("port"), [t.text or "" for t in s.iter("txt-record")])
        for s in root.iter("service")
    ]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fake root: etc/hostname, etc/hosts, a venv python, a config whose web.port is 8443."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost\n127.0.1.1\traspberrypi\n")
    (etc / "hostname").write_text("raspberrypi\n")
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "python").chmod(0o755)
    return tmp_path


def _install_step(
    root: Path, *calls: str, host: str = "0.0.0.0", tls: bool = False
) -> subprocess.CompletedProcess[str]:
    script = "\n".join([
        "set -Eeuo pipefail",
        *(_function(name) for name in [*HELPERS, "prod_mdns", "prod_hostname"]),
        # The real config_value needs the callrec package and a config: the values it returns.
        'config_value() { case $3 in web.port) echo 8443 ;; web.host) echo "$HOST" ;; '
        'web.tls_on) echo "$TLS" ;; web.tls_port) echo 9443 ;; esac; }',
        "systemd_running() { false; }",
        f'REPO="{REPO}"',
        f'LOG="{root}/install.log"',
        f'PROD_VENV="{root}/venv"',
        f'PROD_CONFIG="{root}/etc/callrec/callrec.toml"',
        f'PROD_AVAHI="{root}/etc/avahi/services/callrec.service"',
        f'ETC_HOSTNAME="{root}/etc/hostname"',
        f'ETC_HOSTS="{root}/etc/hosts"',
        # The values of install.sh's own assignments, so a change there is tested too.
        *re.findall(r"^(?:PI_DEFAULT_HOSTNAME|APPLIANCE_HOSTNAME)=\S+$", INSTALL.read_text(),
                    re.M),
        "CHANGED=0",
        "CLEANUP_FILES=()",
        *calls,
        'rm -f "${CLEANUP_FILES[@]}"',
    ])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    env["HOST"] = host
    env["TLS"] = "True" if tls else "False"
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


# --- the service file ------------------------------------------------------------------------


def test_service_file_is_valid_xml_advertising_http_on_the_default_port() -> None:
    assert _services(AVAHI) == [("_http._tcp", "8080", ["path=/"]),
                                ("_https._tcp", "8443", ["path=/"])]
    root = ET.parse(AVAHI).getroot()
    name = root.find("name")
    assert name is not None and name.get("replace-wildcards") == "yes"
    assert "%h" in (name.text or "")  # several boxes on one LAN keep apart
    assert AVAHI.read_text().count("<port>8080</port>") == 1  # what install.sh replaces
    assert AVAHI.read_text().count("<port>8443</port>") == 1


def test_web_port_default_is_what_the_service_file_says() -> None:
    from callrec.config import WebConfig

    assert WebConfig().port == 8080


# --- install.sh ------------------------------------------------------------------------------


def test_avahi_daemon_is_a_production_package_only() -> None:
    assert "avahi-daemon" in _array("PROD_PACKAGES")
    assert "avahi-daemon" not in _array("DEV_PACKAGES")
    text = INSTALL.read_text()
    # Only the appliance install runs the step (--dev never calls it).
    assert re.search(r"^prod_install\(\) \{\n.*?^  prod_mdns$.*?^\}$", text, re.M | re.S)
    dev = _function("dev_install")
    assert "prod_mdns" not in dev and "prod_hostname" not in dev


def test_install_places_the_service_file_with_the_configured_port(root: Path) -> None:
    result = _install_step(root, "prod_mdns")
    assert result.returncode == 0, result.stdout + result.stderr
    placed = root / "etc" / "avahi" / "services" / "callrec.service"
    assert _services(placed) == [("_http._tcp", "8443", ["path=/"])]
    assert placed.stat().st_mode & 0o777 == 0o644
    assert "advertises _http._tcp on port 8443" in result.stdout
    again = _install_step(root, "prod_mdns")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "unchanged" in again.stdout


def test_install_advertises_https_on_tls_port_when_tls_is_on(root: Path) -> None:
    result = _install_step(root, "prod_mdns", tls=True)
    assert result.returncode == 0, result.stdout + result.stderr
    placed = root / "etc" / "avahi" / "services" / "callrec.service"
    assert _services(placed) == [("_http._tcp", "8443", ["path=/"]),
                                 ("_https._tcp", "9443", ["path=/"])]
    assert "advertises _http._tcp on port 8443 and _https._tcp on port 9443" in result.stdout
    off = _install_step(root, "prod_mdns")  # TLS turned off: the https service goes
    assert off.returncode == 0, off.stdout + off.stderr
    assert _services(placed) == [("_http._tcp", "8443", ["path=/"])]
    assert "https" not in placed.read_text().split("<service-group>")[1]


def test_install_warns_when_the_web_ui_is_on_loopback_only(root: Path) -> None:
    result = _install_step(root, "prod_mdns", host="127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not reachable from the LAN" in result.stderr


def test_default_raspberry_pi_hostname_becomes_callrec(root: Path) -> None:
    result = _install_step(root, "prod_hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "etc" / "hostname").read_text() == "callrec\n"
    hosts = (root / "etc" / "hosts").read_text().splitlines()
    assert hosts == ["127.0.0.1\tlocalhost", "::1\t\tlocalhost", "127.0.1.1\tcallrec"]
    assert "hostname changed from 'raspberrypi' to 'callrec'" in result.stdout
    again = _install_step(root, "prod_hostname")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "hostname 'callrec' kept" in again.stdout
    assert (root / "etc" / "hosts").read_text().count("callrec") == 1


def test_hosts_without_a_127_0_1_1_line_gets_one(root: Path) -> None:
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n")
    result = _install_step(root, "prod_hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "etc" / "hosts").read_text() == "127.0.0.1\tlocalhost\n127.0.1.1\tcallrec\n"


@pytest.mark.parametrize("name", ["frontdesk", "callrec", "raspberrypi2", "my-raspberrypi"])
def test_a_chosen_hostname_is_never_changed(root: Path, name: str) -> None:
    hosts = f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n"
    (root / "etc" / "hosts").write_text(hosts)
    (root / "etc" / "hostname").write_text(f"{name}\n")
    result = _install_step(root, "prod_hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "etc" / "hostname").read_text() == f"{name}\n"
    assert (root / "etc" / "hosts").read_text() == hosts
    assert f"hostname '{name}' kept" in result.stdout


def test_uninstall_removes_the_advertisement() -> None:
    body = _function("prod_uninstall")
    assert 'rm -f "$PROD_AVAHI"' in body
    assert re.search(r"^PROD_AVAHI=/etc/avahi/services/callrec\.service$", INSTALL.read_text(),
                     re.M)
