"""The do-not-record list, for the privacy officer (permission subjects.manage).

An objection made from a person's page puts their number on the list; this page shows the
whole list and manages what a person's page cannot: prefixes (a whole range, e.g. a partner
organisation's switchboard block), and taking an entry off when an objection is withdrawn.
Every change is in the access log, numbers as pseudonyms. The daemon re-reads the list when
the file changes, so a change applies from the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import bottle
from bottle import HTTPResponse

from callrec.audit import MAX_REASON
from callrec.privacy.donotrecord import KINDS, DoNotRecord, DoNotRecordError, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
from callrec_web import permissions as p
from callrec_web.access import Runtime, WebError, audit, form, principal, see_other
from callrec_web.api import as_json
from callrec_web.pages import render

PAGE = "/subjects/donotrecord"


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add the list's page and /api/v1/donotrecord to `app`."""
    config = rt.ctx.config
    keys = rt.ctx.store.keys
    path = config.privacy.do_not_record_path(config.data_dir)
    pseudonymize = Pseudonymizer(pseudonym_key(keys, config.data_dir))

    def route(path_: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path_, method, fn, perm=p.SUBJECTS_MANAGE)
            return fn

        return add

    def load() -> DoNotRecord:
        try:
            return DoNotRecord.load(path, sealer_for(keys))
        except DoNotRecordError as exc:
            raise WebError(500, "dnr_unreadable", f"the do-not-record list: {exc}") from None

    def target(value: str, kind: str) -> str:
        """What the access log names: a number's pseudonym; a prefix by its length only."""
        return pseudonymize(value) if kind == "number" else f"prefix of {len(value)} digits"

    def change(adding: bool) -> tuple[str, str]:
        value, kind = form("value", 40).strip(), form("kind", 10)
        reason = form("reason", MAX_REASON).strip()
        if kind not in KINDS:
            raise WebError(400, "bad_form", "choose number or prefix")
        lst = load()
        try:
            if adding:
                entry = lst.add(value, kind, reason)
                value = entry.value
            elif not lst.remove(value, kind):
                raise WebError(404, "not_found", "not on the list")
        except DoNotRecordError as exc:
            raise WebError(400, "bad_form", str(exc)) from None
        audit(rt, "subject.object" if adding else "subject.object_withdrawn",
              target(value, kind), reason=reason, details={"kind": kind})
        return value, kind

    def flash(key: str) -> None:
        who = principal()
        if who is not None and who.session is not None:
            who.session.flash.append(key)

    @route(PAGE, "GET")
    def page() -> str:
        entries = sorted(load().entries(), key=lambda e: (e.kind, e.value))
        return render(rt, "donotrecord.tpl", entries=entries, errors=[])

    @route(PAGE, "POST")
    def add() -> HTTPResponse:
        change(adding=True)
        flash("dnr_added")
        return see_other(PAGE)

    @route(PAGE + "/remove", "POST")
    def remove() -> HTTPResponse:
        change(adding=False)
        flash("dnr_removed")
        return see_other(PAGE)

    @route("/api/v1/donotrecord", "GET")
    def api_list() -> str:
        return as_json({"entries": [asdict(e) for e in load().entries()]})

    @route("/api/v1/donotrecord", "POST")
    def api_add() -> str:
        value, kind = change(adding=True)
        return as_json({"added": {"value": value, "kind": kind}})

    @route("/api/v1/donotrecord/remove", "POST")
    def api_remove() -> str:
        value, kind = change(adding=False)
        return as_json({"removed": {"value": value, "kind": kind}})
