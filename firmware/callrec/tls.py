"""The web UI's certificate: its fingerprint, the server's TLS settings, and making one.

The appliance uses a self-signed certificate made at install (install.sh runs
`callrec tls generate`): there is no certificate authority on an office LAN, so people check
the SHA-256 fingerprint that the console, `callrec tls fingerprint` and the status page show
against the one their browser shows on first connection.

Python's standard library cannot make certificates, and no runtime dependency is added for
it: `generate` runs the openssl command (Raspberry Pi OS has it; install.sh makes sure). Only
the CLI and the installer call it, never the web layer or the daemon.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from callrec.config import Config, WebConfig

DAYS = 3650  # ten years: the appliance outlives a shorter certificate, nobody renews it
FIX_HINT = ("run install.sh or 'sudo /opt/callrec/bin/callrec tls generate', then "
            "'systemctl restart callrec'")
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 (a bind address read, never bound)


class TlsError(Exception):
    """The certificate or key cannot be used (the message says why and what to do)."""


def fingerprint(cert_file: str | os.PathLike[str]) -> str:
    """SHA-256 of the (first) certificate in a PEM file, as colon-separated upper-case hex,
    the way browsers show it."""
    try:
        pem = Path(cert_file).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise TlsError(f"cannot read the certificate {cert_file}: {exc}") from None
    start = pem.find(ssl.PEM_HEADER)
    end = pem.find(ssl.PEM_FOOTER, start)
    if start < 0 or end < 0:
        raise TlsError(f"{cert_file} holds no PEM certificate")
    try:
        der = ssl.PEM_cert_to_DER_cert(pem[start:end + len(ssl.PEM_FOOTER)])
    except ValueError as exc:
        raise TlsError(f"{cert_file}: not a valid PEM certificate ({exc})") from None
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The HTTPS server's settings: TLS 1.2 and 1.3 only, no compression, Python's default
    (modern, forward-secret, AEAD) cipher suites; the key must match the certificate."""
    missing = [f for f in (cert_file, key_file) if not os.path.exists(f)]
    if missing:
        raise TlsError(f"no certificate: {' and '.join(missing)} missing; {FIX_HINT}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert_file, key_file)
    except PermissionError as exc:
        raise TlsError(f"cannot read {exc.filename}: the key must be readable by the callrec "
                       "group (root:callrec 0640); re-run install.sh") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"unusable certificate {cert_file} or key {key_file} ({exc}); "
                       f"{FIX_HINT}") from None
    return context


def check(web: WebConfig) -> str:
    """The configured certificate's fingerprint if the server can use it, else TlsError."""
    server_context(web.tls_cert_file, web.tls_key_file)
    return fingerprint(web.tls_cert_file)


def local_address(web: WebConfig) -> str:
    """Where this machine reaches the web server (the bind address, or loopback for 'any')."""
    return "127.0.0.1" if web.host in _ANY_ADDRESS else web.host


def local_api(config: Config) -> tuple[str, ssl.SSLContext | None]:
    """The base URL (scheme://host:port) the CLI uses to reach the running daemon from this
    machine, and the TLS context that trusts exactly the configured certificate (pinned: its
    name need not match 127.0.0.1)."""
    web = config.web
    host = local_address(web)
    if ":" in host:
        host = f"[{host}]"
    if not web.tls_on:
        return f"http://{host}:{web.port}", None
    context = ssl.create_default_context()
    context.check_hostname = False  # the certificate itself is the trust anchor
    try:
        context.load_verify_locations(cafile=web.tls_cert_file)
    except (OSError, ssl.SSLError):
        pass  # the daemon has no usable certificate either: the connection fails, and says so
    return f"https://{host}:{web.tls_port}", context


def default_addresses() -> list[str]:
    """This machine's non-loopback IP addresses (`hostname -I`), for the certificate."""
    found: list[str] = []
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for word in out.split():
        try:
            ip = ipaddress.ip_address(word.split("%")[0])
        except ValueError:
            continue
        if not ip.is_loopback and not ip.is_link_local and str(ip) not in found:
            found.append(str(ip))
    return found


def subject_alt_names(names: Iterable[str], addresses: Iterable[str]) -> list[str]:
    """SAN entries: each name, NAME.local for each single-label name (mDNS), each address."""
    out: list[str] = []
    for name in names:
        name = name.strip().rstrip(".").lower()
        if not name:
            continue
        for entry in (name, f"{name}.local") if "." not in name else (name,):
            if f"DNS:{entry}" not in out:
                out.append(f"DNS:{entry}")
    for address in addresses:
        entry = f"IP:{ipaddress.ip_address(address)}"
        if entry not in out:
            out.append(entry)
    return out


def generate(cert_file: str, key_file: str, names: list[str], addresses: list[str], *,
             days: int = DAYS, force: bool = False) -> str:
    """Make a self-signed EC P-256 certificate and its key with openssl; the fingerprint.

    Existing files are kept unless `force`. The key is written 0640 with the group of its
    folder (root:callrec under /etc/callrec/tls), never readable by others; both files are
    renamed into place only once complete."""
    if not force and (os.path.exists(cert_file) or os.path.exists(key_file)):
        raise TlsError(f"{cert_file} or {key_file} exists: kept (--force replaces them, and "
                       "browsers will then warn again)")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("the openssl command is missing: apt-get install openssl")
    san = subject_alt_names(names, addresses)
    if not san:
        raise TlsError("no name or address for the certificate")
    folder = Path(cert_file).parent
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    Path(key_file).parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    common_name = san[0].partition(":")[2][:64]
    with tempfile.TemporaryDirectory(dir=Path(key_file).parent, prefix=".tls-") as tmp:
        os.chmod(tmp, 0o700)
        new_key, new_cert = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        argv = [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-sha256", "-nodes", "-days", str(days), "-subj", f"/CN={common_name}",
            "-addext", f"subjectAltName={','.join(san)}",
            # A server certificate, not a CA: Firefox refuses a CA certificate as a server's.
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature",
            "-addext", "extendedKeyUsage=serverAuth",
            "-keyout", str(new_key), "-out", str(new_cert),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise TlsError(f"openssl failed: {done.stderr.strip()[-500:]}")
        group = os.stat(Path(key_file).parent).st_gid
        if os.geteuid() == 0:
            os.chown(new_key, 0, group)
        os.chmod(new_key, 0o640)
        os.chmod(new_cert, 0o644)
        os.replace(new_key, key_file)
        shutil.move(new_cert, cert_file)  # a rename when on the same file system
    server_context(cert_file, key_file)  # the pair works
    return fingerprint(cert_file)


def hostname() -> str:
    return socket.gethostname().partition(".")[0]
