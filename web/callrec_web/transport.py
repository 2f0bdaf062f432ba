"""How the web UI is served: HTTPS with plain HTTP redirecting to it, or plain HTTP.

- TLS on (`web.tls_on`: "on", or "auto" with a LAN address) and a usable certificate: the app
  on `tls_port` over HTTPS; `port` answers every request with a redirect to
  https://<the host the browser asked for>:<tls_port><same path and query> and serves no
  content (a one-line page with the link, for clients that do not follow redirects).
- TLS on but no usable certificate (missing, unreadable, not matching its key): the app is NOT
  served at all, neither over HTTPS (nothing to serve it with) nor over plain HTTP (passwords
  and recordings would cross the LAN in clear while everybody expects TLS). `port` answers
  503 with a page saying what to run on the box; the daemon sets a status fault (fault LED,
  `callrec status`, journal). Recording goes on: only the web UI waits for its certificate.
- TLS off: the app on `port` over plain HTTP (the developer's loopback appliance; on a LAN
  address the status page warns).

No HSTS: the certificate is self-signed, so browsers accept it only by a per-site exception;
HSTS forbids such exceptions (a browser that saw it would lock people out after a
certificate change or a re-install), and a box switched to web.tls = "off" later would be
unreachable from every browser that remembered it.
"""

from __future__ import annotations

import html
import logging
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from callrec.config import WebConfig, is_loopback
from callrec.tls import TlsError, check
from callrec_web.security import with_security_headers
from callrec_web.server import WebServer

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 (a bind address read, never bound)
# A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address; an optional port.
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::[0-9]{1,5})?")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def _page(title: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    ).encode()


def _respond(start_response: Callable[..., Any], status: str, body: bytes,
             extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers = [("Content-Type", "text/html; charset=utf-8"),
               ("Content-Length", str(len(body))), *(extra or [])]
    # Cache-Control: no-store (added with the other hardening headers) also keeps browsers
    # from caching the permanent redirect, so turning TLS off later is not undone by a cache.
    start_response(status, with_security_headers(headers))
    return [body]


def request_host(environ: dict[str, Any]) -> str | None:
    """The host name (without port) the client asked for, if it is a well-formed one."""
    host = str(environ.get("HTTP_HOST") or "")
    match = _HOST_RE.fullmatch(host)
    return match.group(1).lower() if match else None


def https_location(environ: dict[str, Any], host: str, tls_port: int) -> str:
    """https://host[:tls_port] followed by the request's own path and query, re-encoded."""
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")) or "/"
    # WSGI hands the path over decoded as latin-1: back to its bytes, then percent-encoded.
    target = quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE)
    query = str(environ.get("QUERY_STRING", ""))
    if query:
        target += "?" + quote(query.encode("latin-1", "replace"), safe=_QUERY_SAFE)
    port = "" if tls_port == 443 else f":{tls_port}"
    return f"https://{host}{port}{target}"


def redirect_app(tls_port: int, default_host: str = "") -> WsgiApp:
    """The plain-HTTP port when TLS is on: 301 (GET, HEAD) or 308 (other methods, which keep
    their method and body) to the same path on HTTPS; nothing else is served."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = request_host(environ) or (default_host if default_host not in _ANY_ADDRESS
                                         else None)
        if host is None:
            return _respond(start_response, "400 Bad Request",
                            _page("Bad request", "<p>This appliance is served over HTTPS.</p>"))
        location = https_location(environ, host, tls_port)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        status = "301 Moved Permanently" if method in ("GET", "HEAD") else \
            "308 Permanent Redirect"
        link = html.escape(location)
        body = _page("Moved to HTTPS", f'<p>This appliance is served over HTTPS: '
                     f'<a href="{link}">{link}</a>.</p>')
        return _respond(start_response, status, b"" if method == "HEAD" else body,
                        [("Location", location)])

    return app


def no_certificate_app() -> WsgiApp:
    """The plain-HTTP port when TLS is on but the certificate cannot be used: 503 everywhere
    (the detail is in the journal and the status, not shown to whoever asks)."""
    body = _page(
        "Web interface unavailable: no certificate",
        "<p>This call recorder serves its web interface over HTTPS only, and its certificate "
        "is missing or unusable, so the interface is off. Calls are still recorded.</p>"
        "<p>On the appliance, run <code>sudo /opt/callrec/bin/callrec tls generate</code> "
        "(or re-run <code>install.sh</code>), then <code>sudo systemctl restart callrec</code>. "
        "<code>callrec status</code> says what is wrong.</p>",
    )

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return _respond(start_response, "503 Service Unavailable", body,
                        [("Retry-After", "3600")])

    return app


class WebTransport:
    """The web UI's listeners as `[web]` says (module docstring). The certificate is checked
    at construction, so the app can be built knowing whether it is served over TLS."""

    def __init__(self, web: WebConfig) -> None:
        self.web = web
        self.tls = web.tls_on
        self.fingerprint: str | None = None
        self.problem: str | None = None  # TLS expected but impossible: why
        if self.tls:
            try:
                self.fingerprint = check(web)
            except TlsError as exc:
                self.problem = str(exc)
        self._https: WebServer | None = None
        self._plain: WebServer | None = None

    @property
    def https(self) -> bool:
        """The app is served over TLS (cookies get Secure, the origin check expects https)."""
        return self.tls and self.problem is None

    def start(self, app: WsgiApp, *, poll_interval_s: float = 0.5) -> None:
        w = self.web
        if not self.tls:
            self._plain = WebServer(app, w.host, w.port, w.threads,
                                    poll_interval_s=poll_interval_s)
        elif self.problem is not None:
            self._plain = WebServer(no_certificate_app(), w.host, w.port, 1,
                                    poll_interval_s=poll_interval_s)
        else:
            self._https = WebServer(app, w.host, w.tls_port, w.threads,
                                    poll_interval_s=poll_interval_s,
                                    tls=(w.tls_cert_file, w.tls_key_file))
            self._https.start()
            self._plain = WebServer(redirect_app(self._https.port, w.host), w.host, w.port, 2,
                                    poll_interval_s=poll_interval_s)
        try:
            self._plain.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in (self._plain, self._https):
            if server is not None:
                server.stop()

    @property
    def port(self) -> int:
        """The plain-HTTP port (bound, once started)."""
        return self._plain.port if self._plain is not None else self.web.port

    @property
    def tls_port(self) -> int | None:
        return self._https.port if self._https is not None else None

    def url(self) -> str:
        """The address people open (the bind address, or this host's mDNS name for 'any')."""
        host = self.web.host
        if host in _ANY_ADDRESS:
            host = f"{socket.gethostname().partition('.')[0]}.local"
        elif ":" in host:
            host = f"[{host}]"
        if self._https is not None:
            return f"https://{host}:{self._https.port}/"
        return f"http://{host}:{self.port}/"

    def warning(self) -> str | None:
        if self.web.tls == "off" and not is_loopback(self.web.host):
            return ('TLS is off (web.tls = "off"): passwords and recordings cross the network '
                    "unencrypted")
        return None

    def status(self) -> dict[str, Any]:
        """For the status snapshot (no personal data): where, whether TLS, the fingerprint."""
        return {"url": self.url(), "tls": self.https, "fingerprint": self.fingerprint,
                "warning": self.warning()}

    def describe(self) -> str:
        """The console line at start."""
        if self._https is not None:
            return (f"web UI on {self.url()} (http port {self.port} redirects to it), "
                    f"certificate SHA-256 {self.fingerprint}")
        if self.problem is not None:
            return (f"web UI OFF: {self.problem} (http port {self.port} only says how to fix "
                    "it)")
        return f"web UI on {self.url()}" + (f" ({self.warning()})" if self.warning() else "")
