"""The box's network identity for the settings page: host name and addresses, read without a
shell-out (the web layer never runs a command): IPv4 from the kernel by ioctl per interface,
IPv6 from /proc/net/if_inet6. Read-only; nothing here changes the network."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915
IF_INET6 = Path("/proc/net/if_inet6")


def parse_if_inet6(text: str) -> list[tuple[str, str]]:
    """(interface, address) of each line of /proc/net/if_inet6 (32 hex digits, index,
    prefix length, scope, flags, name); loopback left out."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 6 or len(parts[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
        except ValueError:
            continue
        if not addr.is_loopback:
            found.append((parts[5], str(addr)))
    return found


def _ipv4(name: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:  # no IPv4 address on it (or it went away)
            return None
    return socket.inet_ntoa(packed[20:24])


def addresses() -> list[tuple[str, str]]:
    """(interface, address) of every non-loopback address of this machine."""
    found: list[tuple[str, str]] = []
    for _, name in socket.if_nameindex():
        addr = _ipv4(name)
        if addr and not ipaddress.IPv4Address(addr).is_loopback:
            found.append((name, addr))
    with contextlib.suppress(OSError):
        found += parse_if_inet6(IF_INET6.read_text())
    return found


def hostname() -> str:
    return socket.gethostname().partition(".")[0]
