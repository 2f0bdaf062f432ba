"""A running appliance served over HTTPS (callrec_web.transport) with a test certificate."""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from webtest_support import PASSWORD, ROLE_USERS, Client, FakeClock, FakeSelfTest

from callrec.config import Config, StorageConfig, WebConfig
from callrec.storage.open_store import open_store
from callrec.storage.recordings import RecordingStore
from callrec_web.app import make_app
from callrec_web.context import WebContext
from callrec_web.transport import WebTransport


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed EC P-256 server certificate for localhost and 127.0.0.1 (cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callrec-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "callrec.crt", folder / "callrec.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o640)
    return cert_file, key_file


def served_fingerprint(port: int, host: str = "127.0.0.1") -> tuple[str, str | None]:
    """SHA-256 of the certificate the server presents (unverified connection), and the TLS
    version negotiated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()), tls.version()


def pinned_context(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate (and checks the name)."""
    return ssl.create_default_context(cafile=str(cert_file))


@dataclass
class TlsAppliance:
    transport: WebTransport
    store: RecordingStore
    cert_file: Path
    key_file: Path
    status: dict[str, Any]

    @property
    def port(self) -> int:
        """The plain-HTTP port (redirects)."""
        return self.transport.port

    @property
    def tls_port(self) -> int:
        assert self.transport.tls_port is not None
        return self.transport.tls_port

    def client(self) -> Client:
        """A browser on the HTTPS port, trusting the appliance's certificate."""
        return Client(self.tls_port, tls=pinned_context(self.cert_file))


def start_tls_appliance(tmp_path: Path, *, cert: bool = True,
                        tls: str = "on") -> Iterator[TlsAppliance]:
    """The real transport and app on 127.0.0.1, ephemeral ports, one account per role."""
    if cert:
        cert_file, key_file = make_certificate(tmp_path / "tls")
    else:
        cert_file, key_file = tmp_path / "tls" / "none.crt", tmp_path / "tls" / "none.key"
    web = WebConfig(host="127.0.0.1", port=0, tls_port=0, tls=tls,
                    tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "data")), web=web)
    store = open_store(config)
    from callrec_web.users import UserStore

    users = UserStore(tmp_path / "data" / "users.json")
    for name, roles in ROLE_USERS.items():
        users.add_user(name, PASSWORD, roles)
    transport = WebTransport(web)
    status: dict[str, Any] = {"version": "0.1.0", "running": True, "line": "line1",
                              "state": "idle", "faults": [], "board": {}}
    ctx = WebContext(config=config, store=store, users=users,
                     status=lambda: {**status, "web": transport.status()},
                     setup_code=lambda: None, https=transport.https, selftest=FakeSelfTest())
    transport.start(make_app(ctx, clock=FakeClock()), poll_interval_s=0.02)
    try:
        yield TlsAppliance(transport, store, cert_file, key_file, status)
    finally:
        transport.stop()
        store.close()
