"""HTTP hardening that does not depend on who is logged in: headers and origin checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
# Everything is personal data or behind a login unless a route says otherwise (static files).
DEFAULT_CACHE_CONTROL = "no-store"

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_NEXT_RE = re.compile(r"/[A-Za-z0-9/_.\-]*(\?[A-Za-z0-9=&_.\-]*)?")


def with_security_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Add the hardening headers and a default Cache-Control to a WSGI header list."""
    present = {name.lower() for name, _ in headers}
    extra = [(n, v) for n, v in SECURITY_HEADERS if n.lower() not in present]
    if "cache-control" not in present:
        extra.append(("Cache-Control", DEFAULT_CACHE_CONTROL))
    return [*headers, *extra]


def _origin(scheme: str, netloc: str) -> str:
    scheme, netloc = scheme.lower(), netloc.lower()
    host, sep, port = netloc.rpartition(":")
    if sep and "]" not in port and port == _DEFAULT_PORTS.get(scheme):
        netloc = host
    return f"{scheme}://{netloc}"


def same_origin(environ: Mapping[str, Any], https: bool) -> bool:
    """False if Origin (or, without it, Referer) names another site than this request's host.

    Both headers may be absent (old browsers, API clients): the CSRF token still protects.
    """
    host = environ.get("HTTP_HOST") or ""
    if not host:
        return False
    scheme = "https" if https else str(environ.get("wsgi.url_scheme", "http"))
    expected = _origin(scheme, host)
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        return _origin(*origin.partition("://")[::2]) == expected if "://" in origin else False
    referer = environ.get("HTTP_REFERER")
    if referer:
        parts = urlsplit(referer)
        return _origin(parts.scheme, parts.netloc) == expected
    return True


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after login; anything else (other sites, //host) gives default."""
    if value and _NEXT_RE.fullmatch(value) and not value.startswith("//") and "/.." not in value:
        return value
    return default
