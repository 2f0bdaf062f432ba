"""The web application: `make_app(ctx)` builds the Bottle app the daemon serves."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import bottle

from callrec_web import (
    announcements,
    api,
    donotrecord,
    info,
    maintenance,
    pages,
    selftest,
    settings,
    subjects,
)
from callrec_web.access import Guard, Runtime, WebError, check_body_size, is_api
from callrec_web.context import WebContext
from callrec_web.ratelimit import LoginThrottle
from callrec_web.security import with_security_headers
from callrec_web.sessions import SessionStore
from callrec_web.views import Views

__all__ = ["WebContext", "make_app"]

log = logging.getLogger(__name__)

_ERROR_STATUSES = (400, 401, 403, 404, 405, 413, 416, 429, 500)
_API_TEXT = {
    400: "bad request",
    401: "authentication required",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    416: "range not satisfiable",
    429: "too many requests",
    500: "internal error",
}


class _HardenedBottle(bottle.Bottle):
    """Bottle that adds the security headers to every response, errors and crashes included."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, with_security_headers(list(headers)), exc_info)

        result: Iterable[bytes] = self.wsgi(environ, start)
        return result


def make_app(ctx: WebContext, *, clock: Callable[[], float] = time.monotonic) -> bottle.Bottle:
    """Build the app; `clock` (monotonic seconds) is injectable for session/throttle tests."""
    web = ctx.config.web
    rt = Runtime(
        ctx=ctx,
        sessions=ctx.sessions or SessionStore(web.session_idle_minutes * 60,
                                              web.session_max_hours * 3600, clock),
        throttle=LoginThrottle(clock=clock),
        views=Views(web.language),  # the default; each request may choose its own
    )
    app = _HardenedBottle()
    app.install(Guard(rt))
    app.add_hook("before_request", check_body_size)
    pages.install(app, rt)
    api.install(app, rt)
    info.install(app, rt)  # /privacy (public) and /privacy/record
    subjects.install(app, rt)  # People: requests about a person (privacy officer)
    donotrecord.install(app, rt)  # the do-not-record list (privacy officer)
    selftest.install(app, rt)  # the self-test (technician, administrator)
    settings.install(app, rt)  # the settings (technician, administrator)
    announcements.install(app, rt)  # consent prompts' versions (technician, administrator)
    maintenance.install(app, rt)  # config backup/restore, diagnostics (technician, admin)
    for route in app.routes:
        Guard.check_route(route)  # fail at start, not at the first request
    handler = _error_handler(rt)
    for status in _ERROR_STATUSES:
        app.error(status)(handler)
    return app


def _error_handler(rt: Runtime) -> Callable[[bottle.HTTPError], str]:
    def handle(err: bottle.HTTPError) -> str:
        status = err.status_code
        if status == 500:
            log.error("internal error on %s %s", bottle.request.method, bottle.request.path)
        try:
            if is_api():
                bottle.response.content_type = "application/json"
                known = isinstance(err, WebError)
                text = str(err.body) if known else _API_TEXT.get(status, "error")
                return json.dumps({"error": text})
            key = getattr(err, "key", "") or f"http_{status}"
            return pages.render(rt, "error.tpl", status, key=key, code=status)
        except Exception:
            log.exception("error page failed")
            bottle.response.content_type = "text/plain; charset=utf-8"
            return f"Error {status}"

    return handle
