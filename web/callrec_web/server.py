"""Serve the app with cheroot's thread pool (one slow download must not block the others)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from callrec.tls import server_context

log = logging.getLogger(__name__)

# A backstop only: the app itself answers bodies over 64 KiB with a proper 413 page, and an
# upload route over its own limit (access.UPLOAD_BODY_BYTES: an announcement, 20 MB). Above
# this, cheroot drops the connection without a page, so it must exceed every route's limit.
MAX_BODY_BYTES = 21 * 1024 * 1024


class WebServer:
    """A WSGI app on host:port in a background thread; port 0 picks a free port."""

    def __init__(
        self,
        app: Callable[..., Any],
        host: str,
        port: int,
        threads: int = 6,
        *,
        poll_interval_s: float = 0.5,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """`tls`: (certificate, key) files to serve HTTPS (callrec.tls.server_context's
        settings); TlsError if they cannot be used."""
        self._server = wsgi.Server(
            (host, port), app, numthreads=max(1, threads), server_name="callrec", timeout=10
        )
        self.scheme = "http"
        if tls is not None:
            # Cheroot's own adapter (it loads the files itself), with our context: TLS 1.2+,
            # no compression, no renegotiation. The handshake runs in cheroot's accept loop,
            # bounded by the 10 s socket timeout above.
            context = server_context(*tls)
            adapter = BuiltinSSLAdapter(*tls)
            adapter.context = context
            self._server.ssl_adapter = adapter
            self.scheme = "https"
        # How often the accept loop wakes up; stop() waits for it. Low values cost idle CPU.
        self._server.expiration_interval = poll_interval_s
        self._server.max_request_body_size = MAX_BODY_BYTES
        self._server.max_request_header_size = 16 * 1024
        self._thread: threading.Thread | None = None
        self.port = port
        self.host = host

    def start(self) -> None:
        """Bind and start serving; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._server.prepare()  # binds and listens, so errors (port in use) surface here
        self.port = int(self._server.bind_addr[1])
        self._thread = threading.Thread(target=self._server.serve, name="callrec-web", daemon=True)
        self._thread.start()
        log.info("web UI listening on %s:%d (%s)", self.host, self.port, self.scheme)

    def stop(self) -> None:
        """Stop accepting, finish the running requests, and join the thread."""
        if self._thread is None:
            return
        self._server.stop()
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
