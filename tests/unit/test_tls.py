"""HTTPS settings ([web] tls*), the certificate made with openssl, and `callrec tls`."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callrec.cli import main
from callrec.config import ConfigError, WebConfig, parse
from callrec.tls import TlsError, fingerprint, generate, server_context, subject_alt_names

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl missing (install.sh "
                                   "--with-tests installs it)")


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("web", "on"), [
    ({}, False),  # the default host is 127.0.0.1: the simulated appliance stays plain HTTP
    ({"host": "0.0.0.0"}, True),
    ({"host": "192.168.1.20"}, True),
    ({"host": "::"}, True),
    ({"host": "127.0.0.2"}, False),
    ({"host": "::1"}, False),
    ({"host": "localhost"}, False),
    ({"host": "127.0.0.1", "tls": "on"}, True),
    ({"host": "0.0.0.0", "tls": "off"}, False),
])
def test_tls_auto_is_on_unless_loopback(web: dict[str, str], on: bool) -> None:
    assert parse({"web": web}).web.tls_on is on


def test_tls_defaults() -> None:
    web = WebConfig()
    assert (web.tls, web.port, web.tls_port) == ("auto", 8080, 8443)
    assert web.tls_cert_file == "/etc/callrec/tls/callrec.crt"
    assert web.tls_key_file == "/etc/callrec/tls/callrec.key"


@pytest.mark.parametrize(("web", "message"), [
    ({"tls": "yes"}, "key 'web.tls': 'yes' is not one of auto, on, off"),
    ({"tls_port": 443}, "key 'web.tls_port': must be from 1024 to 65535"),
    ({"tls_port": 70000}, "key 'web.tls_port': must be from 1024 to 65535"),
    ({"tls_port": 8080}, "key 'web.tls_port': 8080 is also web.port"),
    ({"port": 9000, "tls_port": 9000, "tls": "on"}, "9000 is also web.port"),
    ({"tls_cert_file": "tls/x.crt"}, "key 'web.tls_cert_file': must be an absolute path"),
    ({"tls_key_file": "x.key"}, "key 'web.tls_key_file': must be an absolute path"),
])
def test_tls_settings_are_checked(web: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^<memory>: ") as err:
        parse({"web": web})
    assert message in str(err.value)


def test_same_ports_are_fine_with_tls_off() -> None:
    assert parse({"web": {"tls": "off", "tls_port": 8080}}).web.tls_on is False


# --- the certificate -------------------------------------------------------------------------


def test_subject_alt_names_add_the_mdns_name() -> None:
    assert subject_alt_names(["CallRec", "box.example.org", "callrec"], ["192.168.1.20", "fd00::5"]
                             ) == ["DNS:callrec", "DNS:callrec.local", "DNS:box.example.org",
                                   "IP:192.168.1.20", "IP:fd00::5"]


@needs_openssl
def test_generate_makes_a_self_signed_server_certificate(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    cert, key = tmp_path / "tls" / "callrec.crt", tmp_path / "tls" / "callrec.key"
    fp = generate(str(cert), str(key), ["callrec"], ["192.168.1.20"])
    assert fp == fingerprint(cert)
    assert key.stat().st_mode & 0o777 == 0o640  # never readable by others
    assert cert.stat().st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path / "tls")) == ["callrec.crt", "callrec.key"]  # no leftovers
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert parsed.issuer == parsed.subject  # self-signed
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["callrec", "callrec.local"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.168.1.20"]
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    pub = parsed.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    days = (parsed.not_valid_after_utc - datetime.now(UTC)).days
    assert 3640 <= days <= 3650
    # openssl's own fingerprint is the same, written the same way.
    out = subprocess.run([OPENSSL or "openssl", "x509", "-noout", "-fingerprint", "-sha256",
                          "-in", str(cert)], capture_output=True, text=True, check=True).stdout
    assert out.strip().split("=", 1)[1] == fp
    server_context(str(cert), str(key))  # the pair works
    with pytest.raises(TlsError, match="exists: kept"):
        generate(str(cert), str(key), ["callrec"], [])
    assert fingerprint(cert) == fp  # kept
    assert generate(str(cert), str(key), ["callrec"], [], force=True) != fp


def test_unusable_certificates_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"no certificate: .* missing; run install.sh or "
                       r"'sudo /opt/callrec/bin/callrec tls generate'"):
        server_context(str(tmp_path / "a.crt"), str(tmp_path / "a.key"))
    (tmp_path / "a.crt").write_text("not a certificate")
    (tmp_path / "a.key").write_text("not a key")
    with pytest.raises(TlsError, match="holds no PEM certificate"):
        fingerprint(tmp_path / "a.crt")
    with pytest.raises(TlsError, match="unusable certificate"):
        server_context(str(tmp_path / "a.crt"), str(tmp_path / "a.key"))


@needs_openssl
def test_cli_generate_and_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    config = tmp_path / "callrec.toml"
    config.write_text(f'[web]\nhost = "0.0.0.0"\ntls_cert_file = "{tmp_path}/c.crt"\n'
                      f'tls_key_file = "{tmp_path}/c.key"\n')
    assert main(["tls", "fingerprint", "--config", str(config)]) == 1
    assert "cannot read the certificate" in capsys.readouterr().err
    assert main(["tls", "generate", "--config", str(config), "--name", "box",
                 "--ip", "10.0.0.7"]) == 0
    made = capsys.readouterr().out.strip()
    assert main(["tls", "fingerprint", "--config", str(config)]) == 0
    shown = capsys.readouterr().out.strip()
    assert shown == made == fingerprint(tmp_path / "c.crt")
    assert len(shown.split(":")) == 32 and shown == shown.upper()
    assert main(["tls", "generate", "--config", str(config)]) == 1  # kept without --force
    assert "exists: kept" in capsys.readouterr().err
