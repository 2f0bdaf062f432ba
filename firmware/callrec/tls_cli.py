"""`callrec tls fingerprint|generate`: the web UI's certificate (callrec/tls.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from callrec.config import load
from callrec.tls import TlsError, default_addresses, fingerprint, generate, hostname


def cmd_tls_fingerprint(args: argparse.Namespace) -> int:
    web = load(args.config).web
    try:
        print(fingerprint(web.tls_cert_file))
    except TlsError as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    if not web.tls_on:
        print(f"callrec: note: web.tls is {web.tls!r} with web.host {web.host!r}: the web UI "
              "does not serve this certificate", file=sys.stderr)
    return 0


def cmd_tls_generate(args: argparse.Namespace) -> int:
    web = load(args.config).web
    names = args.name or [hostname()]
    addresses = args.ip if args.ip is not None else default_addresses()
    try:
        print(generate(web.tls_cert_file, web.tls_key_file, names, addresses,
                       days=args.days, force=args.force))
    except (TlsError, OSError, ValueError) as exc:
        print(f"callrec: {exc}", file=sys.stderr)
        return 1
    print(f"callrec: {web.tls_cert_file} made for {', '.join(names + addresses)}; restart "
          "the service to use it (systemctl restart callrec)", file=sys.stderr)
    return 0


def add_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`callrec tls fingerprint|generate` on the main parser."""
    tls = sub.add_parser("tls", help="the web UI's HTTPS certificate").add_subparsers(
        dest="tls_command", required=True, metavar="ACTION")
    add("fingerprint", cmd_tls_fingerprint, "print the SHA-256 fingerprint of the configured "
        "certificate (compare it with what the browser shows)", tls)
    g = add("generate", cmd_tls_generate, "make a self-signed certificate and key (openssl, "
            "EC P-256, 10 years) where web.tls_cert_file and web.tls_key_file say; an existing "
            "one is kept unless --force. Run as root", tls)
    g.add_argument("--name", action="append", help="a host name (repeat; NAME.local is added "
                   "for a name without a dot); default: this machine's host name")
    g.add_argument("--ip", action="append", help="an IP address (repeat); default: this "
                   "machine's addresses (hostname -I)")
    g.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    g.add_argument("--force", action="store_true", help="replace an existing certificate")
