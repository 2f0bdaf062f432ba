"""The JSON API under /api/v1/: status, recordings list, metadata, audio, erase, access log.

Authentication is a session cookie (state changes then need X-CSRF-Token) or
`Authorization: Bearer <token>`; the same permission table applies as for the pages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import bottle
from bottle import HTTPResponse, request

from callrec.audit import MAX_REASON
from callrec_web import permissions as p
from callrec_web.access import Runtime, WebError, form
from callrec_web.i18n import LANGUAGES
from callrec_web.linestatus import shown, snapshot
from callrec_web.pages import (
    audit_filters,
    audit_search,
    erase_recording,
    recording_or_404,
    send_audio,
)
from callrec_web.restriction import REFUSED as RESTRICTED
from callrec_web.restriction import masked, may_see
from callrec_web.translate import Translator

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
_INT_RE = re.compile(r"[0-9]{1,7}")


def as_json(value: Any, status: int = 200) -> str:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _INT_RE.fullmatch(raw) or not low <= int(raw) <= high:
        raise WebError(400, "bad_param", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add the /api/v1 routes to `app`."""
    ctx = rt.ctx

    def route(
        path: str, method: str, perm: str, **config: Any
    ) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route("/api/v1" + path, method, fn, perm=perm, **config)
            return fn

        return add

    # Polling does not count as activity: a status page left open still times out.
    @route("/status", "GET", p.STATUS_VIEW, touch=False)
    def status() -> str:
        snap = snapshot(ctx.status)
        lang = request.query.get("lang")
        if lang in LANGUAGES:  # the status page's script: its sentences in the page's language
            snap["shown"] = shown(snap, Translator(lang), rt.views.texts_in(lang))
        return as_json(snap)

    @route("/recordings", "GET", p.RECORDINGS_LIST)
    def recordings() -> str:
        offset = _int_param("offset", 0, 0, 9_999_999)
        limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        items, total = ctx.store.page(offset, limit)
        return as_json({"total": total, "offset": offset, "items": masked(items)})

    @route("/recordings/<rec_id>", "GET", p.RECORDINGS_LISTEN)
    def recording(rec_id: str) -> str:
        meta = recording_or_404(rt, rec_id)
        if not may_see(meta):
            raise WebError(403, "restricted", RESTRICTED)
        return as_json(meta)

    @route("/recordings/<rec_id>/audio", "GET", p.RECORDINGS_LISTEN)
    def audio(rec_id: str) -> HTTPResponse:
        return send_audio(rt, rec_id, download=False)

    @route("/recordings/<rec_id>", "DELETE", p.RECORDINGS_ERASE)
    def erase(rec_id: str) -> str:
        erase_recording(rt, rec_id, form("reason", MAX_REASON).strip())
        return as_json({"erased": rec_id})

    @route("/audit", "GET", p.AUDIT_VIEW)
    def audit_log() -> str:
        """The access log, newest first, filtered like /audit; `verify=1` adds the check of
        the whole chain."""
        offset = _int_param("offset", 0, 0, 9_999_999)
        limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        items, total = audit_search(rt, audit_filters(), offset, limit)
        result: dict[str, Any] = {"total": total, "offset": offset, "items": items}
        if request.query.get("verify") == "1" and ctx.audit is not None:
            result["verification"] = ctx.audit.verify().as_dict()
        return as_json(result)
