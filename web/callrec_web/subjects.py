"""People: requests about a person, for the privacy officer (permission subjects.manage).

The officer types a number; the page of that person (/subjects/<pseudonym>) lists every
recording of that number on every volume, the requests and whether the number is on the
do-not-record list, with each right one or two clicks away: export (a ZIP streamed with its
length known in advance), erase (confirmation, then a receipt), restrict / lift, rectify,
object. The JSON API under /api/v1/subjects does the same for scripts and the CLI.

URLs carry the pseudonym, never the number (URLs end up in browser history and proxies). The
number itself is kept in memory only (`_Numbers`, a bounded map filled when the officer types
it) and in the open requests of the register (sealed at rest); a subject page whose number
is known by neither asks for it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import bottle
from bottle import HTTPResponse, request

from callrec.audit import MAX_REASON
from callrec.privacy.donotrecord import DoNotRecord, normalise_number, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, is_pseudonym, pseudonym_key
from callrec.privacy.requests import TYPES, RequestBook, RequestError, overdue
from callrec.privacy.sheet import access_entries, information_sheet, receipt_html, style_csp
from callrec.privacy.subjects import RECTIFIABLE, Subjects
from callrec.storage.recordings import UnknownRecording, is_recording_id
from callrec_web import permissions as p
from callrec_web.access import Runtime, WebError, audit, form, form_list, principal, see_other
from callrec_web.pages import recording_or_404, render

log = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"R[0-9]{8}-[0-9a-f]{6}")
_NUMBER_RE = re.compile(r"[0-9+ .()/-]{3,32}")
# Actions whose entry must be written before the access happens (fail closed).
_REQUIRED = frozenset({"subject.export", "recording.restricted_access"})


class _Numbers:
    """pseudonym -> number, in memory only, the last 256 looked up."""

    def __init__(self, size: int = 256) -> None:
        self._map: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, subject: str, number: str) -> None:
        with self._lock:
            self._map[subject] = number
            self._map.move_to_end(subject)
            while len(self._map) > self._size:
                self._map.popitem(last=False)

    def get(self, subject: str) -> str | None:
        with self._lock:
            return self._map.get(subject)

    def forget(self, subject: str) -> None:
        with self._lock:
            self._map.pop(subject, None)


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add the People pages and the /api/v1/subjects routes to `app`."""
    ctx = rt.ctx
    config = ctx.config
    keys = ctx.store.keys
    pseudonymize = Pseudonymizer(pseudonym_key(keys, config.data_dir))
    book = RequestBook.for_data_dir(config.data_dir, keys)
    numbers = _Numbers()
    dnr_path = config.privacy.do_not_record_path(config.data_dir)

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=p.SUBJECTS_MANAGE)
            return fn

        return add

    def record(action: str, target: str, reason: str, details: dict[str, Any]) -> None:
        audit(rt, action, target, reason=reason, details=details, required=action in _REQUIRED)

    def service() -> Subjects:
        return Subjects(ctx.store, book, pseudonymize,
                        lambda: DoNotRecord.load(dnr_path, sealer_for(keys)), record)

    def me() -> str:
        who = principal()
        return who.name if who else "?"

    def number_of(subject: str) -> str:
        """The number behind a pseudonym in a URL; 404 when neither memory nor an open
        request knows it (the officer types it again)."""
        if not is_pseudonym(subject):
            raise WebError(404, "not_found", "not found")
        number = numbers.get(subject)
        if number is None:
            with contextlib.suppress(RequestError):
                number = book.number_of(subject)
        if number is None:
            raise WebError(404, "subject_unknown", "type the number again: it is not kept "
                           "once the person's requests are closed")
        return number

    def typed_number() -> tuple[str, str]:
        number = form("number", 64).strip()
        if not _NUMBER_RE.fullmatch(number) or not normalise_number(number):
            raise WebError(400, "number_invalid", "not a phone number")
        subject = pseudonymize(number)
        numbers.put(subject, number)
        return number, subject

    def requests_view() -> list[dict[str, Any]]:
        today = datetime.now(UTC).date()
        try:
            items = book.all()
        except RequestError as exc:
            log.error("%s", exc)
            raise WebError(500, "requests_unreadable", "the request register cannot be read"
                           ) from None
        return [{**r.as_dict(), "overdue": overdue(r, today)} for r in items]

    def zip_response(number: str, subject: str, reason: str) -> HTTPResponse:
        def sheet_for(docs: list[dict[str, Any]]) -> str:
            # Who accessed: entries about the recordings, and about the person (lookups,
            # earlier exports, refused calls), found by the pseudonym.
            return information_sheet(
                config.controller, config.retention, docs,
                access_entries(ctx.audit, [subject, *(d["id"] for d in docs)]),
                datetime.now(UTC).isoformat(timespec="seconds"))

        try:
            plan = service().export_plan(number, sheet_for, me(), reason)
        except ValueError as exc:
            raise WebError(403, "restricted_reason", str(exc)) from None
        headers = {
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="callrec-{subject}.zip"',
            "Cache-Control": "no-store",
        }
        if plan.length is not None:  # the browser shows real progress
            headers["Content-Length"] = str(plan.length)
        return HTTPResponse(plan.iter_bytes(), status=200, **headers)

    def page_values(number: str, subject: str) -> dict[str, Any]:
        svc = service()
        today = datetime.now(UTC).date()
        return {
            "phone": number,
            "subject": subject,
            "recordings": svc.recordings(number),
            "requests": [{**r.as_dict(), "overdue": overdue(r, today)}
                         for r in book.for_subject(subject)],
            "listed": svc.listed(number),
            "types": TYPES,
            "today": today.isoformat(),
            "errors": [],
        }

    def flash(key: str) -> None:
        who = principal()
        if who is not None and who.session is not None:
            who.session.flash.append(key)

    # -- pages -----------------------------------------------------------------------------
    @route("/subjects", "GET")
    def index() -> str:
        return render(rt, "subjects.tpl", requests=requests_view(), errors=[])

    @route("/subjects", "POST")
    def lookup() -> HTTPResponse:
        number, subject = typed_number()
        recordings = service().recordings(number)
        audit(rt, "subject.show", subject, details={"recordings": len(recordings)})
        return see_other(f"/subjects/{subject}")

    @route("/subjects/<subject>", "GET")
    def person(subject: str) -> str:
        number = number_of(subject)
        return render(rt, "subjects_person.tpl", **page_values(number, subject))

    @route("/subjects/<subject>/requests", "POST")
    def register(subject: str) -> HTTPResponse:
        number = number_of(subject)
        kind = form("type", 32)
        raw = form("received", 10) or datetime.now(UTC).date().isoformat()
        try:
            received = date.fromisoformat(raw)
            book.open(kind, subject, number, me(), received)
        except (ValueError, RequestError):
            raise WebError(400, "bad_form", "type or date not valid") from None
        audit(rt, "subject.request", subject, details={"type": kind, "received": raw})
        flash("request_registered")
        return see_other(f"/subjects/{subject}")

    @route("/subjects/requests/<req_id>/close", "POST")
    def close_request(req_id: str) -> HTTPResponse:
        if not _REQUEST_ID_RE.fullmatch(req_id):
            raise WebError(404, "not_found", "not found")
        status = form("status", 16)
        try:
            req = book.close(req_id, status, form("outcome", 2000).strip(), me())
        except RequestError:
            raise WebError(400, "bad_form", "no such open request, or status not valid"
                           ) from None
        audit(rt, "subject.request", req.subject, details={"request": req_id,
                                                            "status": status})
        flash("request_closed")
        back = form("back", 100)
        return see_other(back if back.startswith("/subjects") else "/subjects")

    @route("/subjects/requests/<req_id>/receipt", "GET")
    def receipt(req_id: str) -> HTTPResponse:
        req = book.get(req_id) if _REQUEST_ID_RE.fullmatch(req_id) else None
        if req is None or req.receipt is None:
            raise WebError(404, "not_found", "not found")
        if request.query.get("format") == "json":
            body, kind = json.dumps(req.receipt, indent=1), "application/json"
        else:
            body, kind = receipt_html(req.receipt, config.controller.name), \
                "text/html; charset=utf-8"
        return HTTPResponse(body, status=200, **{
            "Content-Type": kind, "Cache-Control": "no-store",
            "Content-Security-Policy": style_csp(),  # the receipt's own inline style only
            "Content-Disposition": f'inline; filename="receipt-{req_id}"'})

    @route("/subjects/<subject>/<action:re:export|erase|object>", "GET")
    def confirm(subject: str, action: str) -> str:
        number = number_of(subject)
        return render(rt, "subjects_confirm.tpl", action=action,
                      **page_values(number, subject))

    @route("/subjects/<subject>/export", "POST")
    def export(subject: str) -> HTTPResponse:
        number = number_of(subject)
        return zip_response(number, subject, form("reason", MAX_REASON).strip())

    @route("/subjects/<subject>/erase", "POST")
    def erase(subject: str) -> str:
        number = number_of(subject)
        if form("confirm") != "yes":
            raise WebError(400, "confirm_missing", "confirm the erasure")
        result = service().erase(number, me(), form("reason", MAX_REASON).strip())
        numbers.forget(subject)
        return render(rt, "subjects_receipt.tpl", receipt=result.as_dict())

    @route("/subjects/<subject>/object", "POST")
    def objection(subject: str) -> HTTPResponse:
        number = number_of(subject)
        service().object(number, me(), form("reason", MAX_REASON).strip())
        flash("objection_recorded")
        return see_other(f"/subjects/{subject}")

    @route("/subjects/<subject>/restrict", "GET")
    def restrict_form(subject: str) -> str:
        number = number_of(subject)
        return render(rt, "subjects_restrict.tpl", **page_values(number, subject))

    @route("/subjects/<subject>/restrict", "POST")
    def restrict(subject: str) -> str | HTTPResponse:
        number = number_of(subject)
        reason = form("reason", MAX_REASON).strip()
        if not reason:
            values = page_values(number, subject)
            values["errors"] = ["reason_missing"]
            return render(rt, "subjects_restrict.tpl", 400, **values)
        chosen = form_list("recording")
        service().restrict(number, reason, me(), chosen or None)
        flash("restriction_set")
        return see_other(f"/subjects/{subject}")

    @route("/subjects/<subject>/rectify/<rec_id>", "GET")
    def rectify_form(subject: str, rec_id: str) -> str:
        number = number_of(subject)
        meta = recording_or_404(rt, rec_id)
        return render(rt, "subjects_rectify.tpl", phone=number, subject=subject, meta=meta,
                      rec_id=rec_id, errors=[])

    @route("/subjects/<subject>/rectify/<rec_id>", "POST")
    def rectify(subject: str, rec_id: str) -> str | HTTPResponse:
        number = number_of(subject)
        meta = recording_or_404(rt, rec_id)
        changes = {name: form(name, 1000) for name in RECTIFIABLE}
        try:
            service().rectify(rec_id, changes, me(), form("reason", MAX_REASON).strip())
        except ValueError:
            return render(rt, "subjects_rectify.tpl", 400, phone=number, subject=subject,
                          meta={**meta, **changes}, rec_id=rec_id, errors=["rectify_invalid"])
        flash("rectified")
        return see_other(f"/subjects/{subject}")

    # -- restriction from the recording's own page -----------------------------------------
    @route("/recordings/<rec_id>/restrict", "POST")
    def restrict_one(rec_id: str) -> HTTPResponse:
        recording_or_404(rt, rec_id)
        reason = form("reason", MAX_REASON).strip()
        if not reason:
            raise WebError(400, "reason_missing", "a restriction needs a reason")
        service().set_restriction(rec_id, reason, me())
        flash("restriction_set")
        return see_other(f"/recordings/{rec_id}")

    @route("/recordings/<rec_id>/unrestrict", "POST")
    def unrestrict_one(rec_id: str) -> HTTPResponse:
        recording_or_404(rt, rec_id)
        service().lift(rec_id, form("reason", MAX_REASON).strip(), me())
        flash("restriction_lifted")
        back = form("back", 100)
        return see_other(back if back.startswith("/subjects/") else f"/recordings/{rec_id}")

    # -- JSON API --------------------------------------------------------------------------
    def as_json(value: Any, status: int = 200) -> str:
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def shown(number: str, subject: str) -> dict[str, Any]:
        svc = service()
        today = datetime.now(UTC).date()
        return {"subject": subject, "recordings": svc.recordings(number),
                "requests": [{**r.as_dict(), "overdue": overdue(r, today)}
                             for r in book.for_subject(subject)],
                "on_do_not_record_list": svc.listed(number)}

    @route("/api/v1/subjects", "POST")
    def api_lookup() -> str:
        number, subject = typed_number()
        value = shown(number, subject)
        audit(rt, "subject.show", subject, details={"recordings": len(value["recordings"])})
        return as_json(value)

    @route("/api/v1/subjects/requests", "GET")
    def api_requests() -> str:
        return as_json({"items": requests_view()})

    @route("/api/v1/subjects/<subject>", "GET")
    def api_show(subject: str) -> str:
        return as_json(shown(number_of(subject), subject))

    @route("/api/v1/subjects/<subject>/requests", "POST")
    def api_register(subject: str) -> str:
        number = number_of(subject)
        raw = form("received", 10) or datetime.now(UTC).date().isoformat()
        try:
            req = book.open(form("type", 32), subject, number, me(), date.fromisoformat(raw))
        except (ValueError, RequestError):
            raise WebError(400, "bad_form", "type or date not valid") from None
        audit(rt, "subject.request", subject, details={"type": req.type, "received": raw})
        return as_json(req.as_dict(), 201)

    @route("/api/v1/subjects/<subject>/export", "POST")
    def api_export(subject: str) -> HTTPResponse:
        return zip_response(number_of(subject), subject, form("reason", MAX_REASON).strip())

    @route("/api/v1/subjects/<subject>/erase", "POST")
    def api_erase(subject: str) -> str:
        number = number_of(subject)
        if form("confirm") != "yes":
            raise WebError(400, "confirm_missing", "send confirm=yes to erase")
        result = service().erase(number, me(), form("reason", MAX_REASON).strip())
        numbers.forget(subject)
        return as_json(result.as_dict())

    @route("/api/v1/subjects/<subject>/restrict", "POST")
    def api_restrict(subject: str) -> str:
        number = number_of(subject)
        try:
            done = service().restrict(number, form("reason", MAX_REASON), me(),
                                      form_list("recording") or None)
        except ValueError:
            raise WebError(400, "reason_missing", "a restriction needs a reason") from None
        return as_json({"restricted": done})

    @route("/api/v1/subjects/<subject>/object", "POST")
    def api_object(subject: str) -> str:
        added = service().object(number_of(subject), me(), form("reason", MAX_REASON).strip())
        return as_json({"on_do_not_record_list": True, "added": added})

    @route("/api/v1/subjects/<subject>/rectify/<rec_id>", "POST")
    def api_rectify(subject: str, rec_id: str) -> str:
        number_of(subject)
        recording_or_404(rt, rec_id)
        changes = {name: form(name, 1000) for name in RECTIFIABLE
                   if request.forms.get(name) is not None}
        try:
            changed = service().rectify(rec_id, changes, me(),
                                        form("reason", MAX_REASON).strip())
        except ValueError as exc:
            raise WebError(400, "rectify_invalid", str(exc)) from None
        return as_json({"changed": changed})

    @route("/api/v1/recordings/<rec_id>/restrict", "POST")
    def api_restrict_one(rec_id: str) -> str:
        recording_or_404(rt, rec_id)
        reason = form("reason", MAX_REASON).strip()
        if not reason:
            raise WebError(400, "reason_missing", "a restriction needs a reason")
        service().set_restriction(rec_id, reason, me())
        return as_json({"restricted": rec_id})

    @route("/api/v1/recordings/<rec_id>/unrestrict", "POST")
    def api_unrestrict_one(rec_id: str) -> str:
        if not is_recording_id(rec_id):
            raise WebError(404, "no_recording", "no such recording")
        try:
            service().lift(rec_id, form("reason", MAX_REASON).strip(), me())
        except UnknownRecording:
            raise WebError(404, "no_recording", "no such recording") from None
        return as_json({"unrestricted": rec_id})
