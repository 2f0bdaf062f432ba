"""The self-test page and /api/v1/selftest (technician and administrator).

GET shows the last report; POST runs the self-test in the daemon (its own thread, only while
the line is idle) and waits for the report: a few seconds. During a call the answer is 409
and nothing touches the line. The page's POST is a form with the CSRF token, as every other;
the API takes a session with X-CSRF-Token or a bearer token, as the rest of the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bottle

from callrec.selftest import ITEMS, TITLES, LineBusy
from callrec_web import permissions as p
from callrec_web.access import Runtime, see_other
from callrec_web.api import as_json
from callrec_web.pages import render
from callrec_web.phrases import say
from callrec_web.translate import N_

NO_BOARD = N_("the self-test runs in the recorder daemon, which is not serving this page")
TIMED_OUT = N_("the self-test did not finish in time")
STATUS_TEXT = {"ok": N_("OK"), "warn": N_("Warning"), "fail": N_("Failed")}


def install(app: bottle.Bottle, rt: Runtime) -> None:
    ctx = rt.ctx

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=p.SELFTEST_RUN)
            return fn

        return add

    def last() -> dict[str, Any] | None:
        return ctx.selftest.last() if ctx.selftest is not None else None

    def page(status: int = 200, error: str = "") -> str:
        return render(rt, "selftest.tpl", status, report=last(), error=error, titles=TITLES,
                      items=ITEMS, status_text=STATUS_TEXT, say=say,
                      available=ctx.selftest is not None)

    @route("/selftest", "GET")
    def show() -> str:
        return page()

    @route("/selftest", "POST")
    def run() -> str | bottle.HTTPResponse:
        if ctx.selftest is None:
            return page(503, NO_BOARD)
        try:
            ctx.selftest.run()
        except LineBusy as exc:
            return page(409, str(exc))
        except TimeoutError:
            return page(503, TIMED_OUT)
        return see_other("/selftest#result")

    @route("/api/v1/selftest", "GET")
    def api_last() -> str:
        report = last()
        if report is None:
            return as_json({"error": "no self-test has run yet"}, 404)
        return as_json(report)

    @route("/api/v1/selftest", "POST")
    def api_run() -> str:
        if ctx.selftest is None:
            return as_json({"error": NO_BOARD}, 503)
        try:
            return as_json(ctx.selftest.run())
        except LineBusy as exc:
            return as_json({"error": str(exc)}, 409)
        except TimeoutError as exc:
            return as_json({"error": str(exc)}, 503)
