"""install.sh's HTTPS certificate step (prod_tls), run against a temporary root.

Like test_mdns.py: the function is cut out of install.sh as written and run in a bash whose
paths point into a temporary folder; here with the real config loader and the real
`callrec tls generate` (openssl) from this checkout's venv.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_mdns import HELPERS, INSTALL, REPO, _array, _function

from callrec.tls import fingerprint

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing (install.sh "
                       "--with-tests installs it)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="chown root:<group> needs root"),
]
GROUP = grp.getgrgid(os.getegid()).gr_name  # stands for the callrec group


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc" / "callrec").mkdir(parents=True)
    (tmp_path / "etc" / "hostname").write_text("frontdesk\n")
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "callrec").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m callrec "$@"\n')
    for exe in venv.iterdir():
        exe.chmod(0o755)
    _config(tmp_path, "0.0.0.0")
    return tmp_path


def _config(root: Path, host: str) -> None:
    tls = root / "etc" / "callrec" / "tls"
    (root / "etc" / "callrec" / "callrec.toml").write_text(
        f'[web]\nhost = "{host}"\ntls_cert_file = "{tls}/callrec.crt"\n'
        f'tls_key_file = "{tls}/callrec.key"\n')


def _prod_tls(root: Path) -> subprocess.CompletedProcess[str]:
    script = "\n".join([
        "set -Eeuo pipefail",
        *(_function(name) for name in [*HELPERS, "config_value", "prod_tls"]),
        "systemd_running() { false; }",
        f'REPO="{REPO}"',
        f'LOG="{root}/install.log"',
        f'PROD_VENV="{root}/venv"',
        f'PROD_CONFIG_DIR="{root}/etc/callrec"',
        f'PROD_CONFIG="{root}/etc/callrec/callrec.toml"',
        f'ETC_HOSTNAME="{root}/etc/hostname"',
        f'PROD_USER="{GROUP}"',
        *re.findall(r"^(?:APPLIANCE_HOSTNAME|PROD_TLS_DIR)=.*$", INSTALL.read_text(), re.M),
        "CHANGED=0",
        "prod_tls",
        'echo "CHANGED=$CHANGED FP=$TLS_FINGERPRINT"',
    ])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_certificate_is_made_once_with_a_private_key(root: Path) -> None:
    from cryptography import x509

    tls = root / "etc" / "callrec" / "tls"
    result = _prod_tls(root)
    assert result.returncode == 0, result.stdout + result.stderr
    cert, key = tls / "callrec.crt", tls / "callrec.key"
    fp = fingerprint(cert)
    assert f"CHANGED=1 FP={fp}" in result.stdout  # the daemon restarts to use it
    assert f"SHA-256 {fp}" in result.stdout
    assert "made a self-signed certificate for frontdesk, frontdesk.local" in result.stdout
    assert (key.stat().st_mode & 0o777, key.stat().st_uid, key.stat().st_gid) == (
        0o640, 0, os.getegid())
    assert cert.stat().st_mode & 0o777 == 0o644
    assert tls.stat().st_mode & 0o777 == 0o750
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["frontdesk", "frontdesk.local"]

    # Re-install: kept as it is (browsers that accepted it keep trusting it); modes repaired.
    key.chmod(0o644)
    again = _prod_tls(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kept" in again.stdout and f"CHANGED=0 FP={fp}" in again.stdout
    assert fingerprint(cert) == fp
    assert key.stat().st_mode & 0o777 == 0o640
    assert "fixed owner/mode of" in again.stdout


def test_half_a_pair_is_replaced(root: Path) -> None:
    assert _prod_tls(root).returncode == 0
    tls = root / "etc" / "callrec" / "tls"
    old = fingerprint(tls / "callrec.crt")
    (tls / "callrec.key").unlink()
    result = _prod_tls(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert fingerprint(tls / "callrec.crt") != old


def test_no_certificate_when_the_web_ui_is_on_loopback(root: Path) -> None:
    _config(root, "127.0.0.1")
    result = _prod_tls(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no certificate needed" in result.stdout
    assert not (root / "etc" / "callrec" / "tls").exists()


def test_openssl_is_installed_and_the_step_runs_in_the_appliance_install_only() -> None:
    assert "openssl" in _array("PROD_PACKAGES") and "openssl" in _array("TEST_PACKAGES")
    body = _function("prod_install")
    assert body.index("prod_hostname") < body.index("prod_tls") < body.index("prod_unit")
    assert "prod_tls" not in _function("dev_install")
    assert re.search(r"^PROD_TLS_DIR=\$PROD_CONFIG_DIR/tls", INSTALL.read_text(), re.M)
