"""The HTML pages: setup, login, recordings, status, account and users.

Handlers only read input, call the stores and pick a template; access rules are declared per
route (`perm=`) and enforced by access.Guard before any handler runs.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

import bottle
from bottle import HTTPResponse, request

from callrec.audit import MAX_REASON
from callrec.storage.audio_files import EXTENSION
from callrec.storage.recordings import is_recording_id
from callrec_web import permissions as p
from callrec_web import uilang
from callrec_web.access import (
    AUTHENTICATED,
    PUBLIC,
    Principal,
    Runtime,
    WebError,
    audit,
    client_ip,
    form,
    form_list,
    principal,
    require,
    see_other,
)
from callrec_web.files import send_file, send_source
from callrec_web.linestatus import snapshot
from callrec_web.permissions import may_grant
from callrec_web.restriction import REFUSED as RESTRICTED
from callrec_web.restriction import access_reason, check_access, masked, may_see
from callrec_web.security import safe_next
from callrec_web.users import ROLES, USERNAME_RE, UserError
from callrec_web.views import STATIC_DIR

log = logging.getLogger(__name__)

_PAGE_RE = re.compile(r"[1-9][0-9]{0,5}")
_STATIC_RE = re.compile(r"[a-z0-9_-]{1,40}\.(css|js|svg)")
_TOKEN_ID_RE = re.compile(r"[0-9a-f]{16}")
_STATIC_TYPES = {
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
}


def render(rt: Runtime, name: str, status: int = 200, **values: Any) -> str:
    """A page with the layout's shared values: caller, permissions, CSRF token, flash."""
    who = principal()
    flash: list[str] = []
    if who is not None and who.session is not None:
        flash, who.session.flash = who.session.flash, []
        csrf = who.session.csrf
    else:
        csrf = rt.form_token()
    bottle.response.status = status
    bottle.response.content_type = "text/html; charset=utf-8"
    lang = uilang.for_request(rt.views.lang, rt.ctx.https)
    bottle.response.set_header("Content-Language", lang)
    return rt.views.render(
        name,
        ui_lang=lang,
        ui_languages=uilang.links_for_request(lang),
        who=who,
        can=lambda perm: who is not None and who.can(perm),
        csrf=csrf,
        flash=flash,
        **values,
    )


def page_number() -> int:
    """The ?page= of a paged list (1 if absent); 400 if it is not a positive whole number."""
    raw = request.query.get("page", "1")
    if not _PAGE_RE.fullmatch(raw):
        raise WebError(400, "bad_page", "page must be a positive whole number")
    return int(raw)


def recording_or_404(rt: Runtime, rec_id: str) -> dict[str, Any]:
    """The metadata of a known recording; 404 for unknown or malformed ids."""
    meta = rt.ctx.store.get(rec_id) if is_recording_id(rec_id) else None
    if meta is None:
        raise WebError(404, "no_recording", "no such recording")
    return meta


def send_audio(rt: Runtime, rec_id: str, *, download: bool) -> HTTPResponse:
    """The recording as stored (WAV, Ogg/Opus or FLAC) with Range support, decrypted as it
    is sent; the file name is made from the id and the format only."""
    meta = recording_or_404(rt, rec_id)
    # Restricted (GDPR art. 18): the privacy officer only, with a reason, logged.
    check_access(rt, meta, log_it=_starts_listening(), purpose="download" if download else "play")
    fmt = str((meta.get("audio") or {}).get("format") or "wav")
    name = f"callrec-{rec_id}{EXTENSION.get(fmt, '.wav')}"
    disposition = f'{"attachment" if download else "inline"}; filename="{name}"'
    try:
        source = rt.ctx.store.open_audio(rec_id)
    except FileNotFoundError:
        raise WebError(404, "no_audio", "audio not available") from None
    if _starts_listening():
        try:
            audit(rt, "recording.download" if download else "recording.play", rec_id,
                  required=True)
        except BaseException:
            source.close()
            raise
    return send_source(source, disposition=disposition)


_RANGE_FROM_START = re.compile(r"\s*bytes\s*=\s*0+-")  # not "bytes=-N", the end


def _starts_listening() -> bool:
    """True for the request that starts a playback or download: a GET without Range, or
    from byte 0. A player then asks for more ranges as it plays and seeks; logging each would
    turn one listening into dozens of entries."""
    if request.method != "GET":
        return False
    wanted = request.get_header("Range")
    return not wanted or bool(_RANGE_FROM_START.match(wanted))


def erase_recording(rt: Runtime, rec_id: str, reason: str = "") -> None:
    """Erase audio, sidecar and index entry, and make sure they are gone."""
    recording_or_404(rt, rec_id)
    store = rt.ctx.store
    if not store.erase(rec_id):
        raise WebError(404, "no_recording", "no such recording")
    if store.has_files(rec_id):
        raise WebError(500, "erase_failed", "recording could not be erased")
    who = principal()
    log.info("recording %s erased by %s", rec_id, who.name if who else "?")
    audit(rt, "recording.erase", rec_id, reason=reason)


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ACTION_FILTER_RE = re.compile(r"[a-z_.]{0,64}")
_NUMBER_LIKE_RE = re.compile(r"\+?[0-9 .()/-]{7,32}")
AUDIT_PAGE_SIZE = 50


def audit_filters() -> dict[str, Any]:
    """The access log filters of this request's query (actor, action, target, since, until),
    validated; 400 if one is malformed. The values as typed, for the form."""
    values: dict[str, Any] = {}
    for name, limit in (("actor", 64), ("action", 64), ("target", 128), ("since", 10),
                        ("until", 10)):
        try:
            raw = request.query.getunicode(name, default="") or ""
        except UnicodeError:
            raw = None
        if raw is None or len(raw) > limit:
            raise WebError(400, "bad_param", f"{name} is not valid")
        values[name] = raw.strip()
    if not _ACTION_FILTER_RE.fullmatch(values["action"]):
        raise WebError(400, "bad_param", "action is not valid")
    for name in ("since", "until"):
        if values[name]:
            try:
                if not _DATE_RE.fullmatch(values[name]):
                    raise ValueError(name)
                date.fromisoformat(values[name])
            except ValueError:
                raise WebError(400, "bad_param", f"{name} must be a date (YYYY-MM-DD)") from None
    return values


def audit_search(rt: Runtime, filters: dict[str, Any], offset: int,
                 limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the access log, newest first, and the number of matches."""
    journal = rt.ctx.audit
    if journal is None:
        return [], 0
    targets = [filters["target"]] if filters["target"] else []
    # A phone number typed as the target: look for its pseudonym, as that is what the log
    # holds (a number is never written there in clear).
    if targets and _NUMBER_LIKE_RE.fullmatch(targets[0]) and journal.pseudonymize:
        with contextlib.suppress(ValueError):
            targets.append(journal.pseudonymize(targets[0]))
    return journal.search(
        actor=filters["actor"],
        action=filters["action"],
        targets=targets,
        since=date.fromisoformat(filters["since"]) if filters["since"] else None,
        until=date.fromisoformat(filters["until"]) if filters["until"] else None,
        offset=offset,
        limit=limit,
    )


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add the HTML routes to `app`."""
    ctx = rt.ctx

    def route(path: str, method: str, perm: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=perm)
            return fn

        return add

    def login_session(
        name: str, target: str | None = None, flash: str | None = None
    ) -> HTTPResponse:
        """Start a fresh session (new id, new CSRF token) and go on."""
        old = request.get_cookie(rt.session_cookie)
        if old:
            rt.sessions.destroy(old)
        session = rt.sessions.create(name)
        if flash:
            session.flash.append(flash)
        resp = see_other(target or safe_next(request.query.get("next")))
        rt.set_cookie(resp, rt.session_cookie, session.id)
        rt.clear_cookie(resp, rt.pre_cookie)
        return resp

    # -- landing, setup, login -----------------------------------------------------------
    @route("/", "GET", PUBLIC)
    def home() -> HTTPResponse:
        if not ctx.users.has_users():
            return see_other("/setup")
        who = principal()
        if who is None:
            return see_other("/login")
        if who.can(p.RECORDINGS_LIST):
            return see_other("/recordings")
        if who.can(p.STATUS_VIEW):
            return see_other("/status")
        return see_other("/account")

    def setup_open() -> None:
        if ctx.users.has_users():
            raise WebError(404, "not_found", "not found")

    @route("/setup", "GET", PUBLIC)
    def setup_form() -> str:
        setup_open()
        ctx.setup_code()  # makes (or renews) the code on the appliance's display
        return render(rt, "setup.tpl", errors=[], username="")

    @route("/setup", "POST", PUBLIC)
    def setup_submit() -> str | HTTPResponse:
        setup_open()
        keys = [f"setup:{client_ip()}"]
        wait = rt.throttle.retry_after(keys)
        username = form("username", 64).strip().lower()
        if wait > 0:
            bottle.response.set_header("Retry-After", str(int(wait) + 1))
            return render(rt, "setup.tpl", 429, errors=["too_many_attempts"], username=username)
        expected = ctx.setup_code()
        given = re.sub(r"[\s-]", "", form("code", 64)).upper()
        wanted = re.sub(r"[\s-]", "", expected or "").upper()
        if not expected or not hmac.compare_digest(given.encode(), wanted.encode()):
            rt.throttle.failure(keys)
            log.warning("first-start setup: wrong code from %s", client_ip())
            return render(rt, "setup.tpl", 403, errors=["setup_code_wrong"], username=username)
        password = form("password", 512)
        if password != form("confirm", 512):
            return render(rt, "setup.tpl", 400, errors=["password_mismatch"], username=username)
        try:
            ctx.users.add_user(username, password, ["admin"], only_if_none=True)
        except UserError as exc:
            if exc.code == "setup_done":
                raise WebError(404, "not_found", "not found") from None
            return render(rt, "setup.tpl", 400, errors=[exc.code], username=username)
        rt.throttle.success(keys)
        ctx.setup_code()  # an account exists now: this retires the code and removes its file
        log.info("first-start setup: administrator %s created", username)
        audit(rt, "user.add", username, actor="setup", details={"roles": ["admin"]})
        return login_session(username)

    @route("/login", "GET", PUBLIC)
    def login_form() -> str | HTTPResponse:
        if not ctx.users.has_users():
            return see_other("/setup")
        if principal() is not None:
            return see_other(safe_next(request.query.get("next")))
        return render(rt, "login.tpl", errors=[], username="", next=_next_param())

    @route("/login", "POST", PUBLIC)
    def login_submit() -> str | HTTPResponse:
        username = form("username", 64).strip().lower()
        password = form("password", 512)
        keys = [f"ip:{client_ip()}"]
        if USERNAME_RE.match(username):
            keys.append(f"user:{username}")
        values = {"username": username, "next": _next_param()}
        wait = rt.throttle.retry_after(keys)
        if wait > 0:
            bottle.response.set_header("Retry-After", str(int(wait) + 1))
            minutes = int(wait // 60) + 1
            return render(
                rt, "login.tpl", 429, errors=["too_many_attempts"], minutes=minutes, **values
            )
        user = ctx.users.verify(username, password)
        if user is None:
            rt.throttle.failure(keys)
            # Log only names of real accounts: a typed password must never reach the log.
            known = ctx.users.get(username) is not None
            shown = username if known else "<unknown>"
            log.warning("login failed for %s from %s", shown, client_ip())
            audit(rt, "auth.login_failed", username if known else "", details={
                "ip": client_ip(), "account": "known" if known else "unknown"})
            return render(rt, "login.tpl", 401, errors=["login_failed"], **values)
        rt.throttle.success(keys[1:])
        log.info("login: %s from %s", user.name, client_ip())
        audit(rt, "auth.login", user.name, actor=user.name, details={"ip": client_ip()})
        return login_session(user.name)

    @route("/logout", "POST", AUTHENTICATED)
    def logout() -> HTTPResponse:
        who = principal()
        if who is not None and who.session is not None:
            rt.sessions.destroy(who.session.id)
            log.info("logout: %s", who.name)
            audit(rt, "auth.logout", who.name)
        resp = see_other("/login")
        rt.clear_cookie(resp, rt.session_cookie)
        return resp

    # -- recordings ------------------------------------------------------------------------
    @route("/recordings", "GET", p.RECORDINGS_LIST)
    def recordings() -> str:
        number = page_number()
        size = max(1, ctx.config.web.page_size)
        rows, total = ctx.store.page((number - 1) * size, size)
        rows = masked(rows)  # restricted recordings: listed, their details hidden
        if number > 1 and not rows:
            raise WebError(404, "no_page", "no such page")
        pages = max(1, -(-total // size))
        return render(rt, "recordings.tpl", rows=rows, total=total, page=number, pages=pages)

    @route("/recordings/<rec_id>", "GET", p.RECORDINGS_LISTEN)
    def recording(rec_id: str) -> str:
        meta = recording_or_404(rt, rec_id)
        if not may_see(meta):
            raise WebError(403, "restricted", RESTRICTED)
        has_audio = ctx.store.has_audio(rec_id)
        return render(rt, "recording.tpl", meta=meta, rec_id=rec_id, has_audio=has_audio,
                      access_reason=access_reason())

    @route("/recordings/<rec_id>/audio", "GET", p.RECORDINGS_LISTEN)
    def audio(rec_id: str) -> HTTPResponse:
        return send_audio(rt, rec_id, download=False)

    @route("/recordings/<rec_id>/download", "GET", p.RECORDINGS_LISTEN)
    def download(rec_id: str) -> HTTPResponse:
        return send_audio(rt, rec_id, download=True)

    @route("/recordings/<rec_id>/erase", "GET", p.RECORDINGS_ERASE)
    def erase_confirm(rec_id: str) -> str:
        meta = recording_or_404(rt, rec_id)
        return render(rt, "erase.tpl", meta=meta, rec_id=rec_id, errors=[])

    @route("/recordings/<rec_id>/erase", "POST", p.RECORDINGS_ERASE)
    def erase(rec_id: str) -> str | HTTPResponse:
        meta = recording_or_404(rt, rec_id)
        if form("confirm") != "yes":
            return render(
                rt, "erase.tpl", 400, meta=meta, rec_id=rec_id, errors=["confirm_missing"]
            )
        erase_recording(rt, rec_id, form("reason", MAX_REASON).strip())
        _flash("recording_erased")
        return see_other("/recordings")

    # -- status ----------------------------------------------------------------------------
    @route("/status", "GET", p.STATUS_VIEW)
    def status() -> str:
        return render(rt, "status.tpl", snap=snapshot(ctx.status))

    # -- access log ------------------------------------------------------------------------
    @route("/audit", "GET", p.AUDIT_VIEW)
    def audit_log() -> str:
        number = page_number()
        filters = audit_filters()
        rows, total = audit_search(rt, filters, (number - 1) * AUDIT_PAGE_SIZE, AUDIT_PAGE_SIZE)
        if number > 1 and not rows:
            raise WebError(404, "no_page", "no such page")
        verification = ctx.audit.verify() if ctx.audit is not None else None
        query = {k: v for k, v in filters.items() if v}
        return render(rt, "audit.tpl", rows=rows, total=total, page=number,
                      pages=max(1, -(-total // AUDIT_PAGE_SIZE)), filters=filters,
                      query=urlencode(query), verification=verification)

    # -- own account -----------------------------------------------------------------------
    @route("/account", "GET", AUTHENTICATED)
    def account() -> str:
        return render(rt, "account.tpl", errors=[], new_token=None, token_label="")

    @route("/account", "POST", AUTHENTICATED)
    def account_submit() -> str | HTTPResponse:
        who = require_session()
        action = form("action")
        if action == "password":
            return change_password(who.name)
        if action == "token_create":
            require(p.TOKENS_OWN)
            label = form("label", 128)
            try:
                token = ctx.users.create_token(who.name, label)
            except UserError as exc:
                return render(
                    rt, "account.tpl", 400, errors=[exc.code], new_token=None, token_label=label
                )
            log.info("API token created for %s", who.name)
            made = ctx.users.get(who.name)
            audit(rt, "token.create", who.name, details={
                "token_id": made.tokens[-1].id if made and made.tokens else "",
                "label": label})
            return render(rt, "account.tpl", new_token=token, token_label=label, errors=[])
        if action == "token_revoke":
            require(p.TOKENS_OWN)
            token_id = form("token_id", 32)
            if not _TOKEN_ID_RE.fullmatch(token_id):
                raise WebError(400, "bad_form", "invalid token id")
            try:
                ctx.users.revoke_token(who.name, token_id)
            except UserError:
                raise WebError(404, "no_token", "no such token") from None
            log.info("API token %s of %s revoked", token_id, who.name)
            audit(rt, "token.revoke", who.name, details={"token_id": token_id})
            _flash("token_revoked")
            return see_other("/account")
        raise WebError(400, "bad_form", "unknown action")

    def change_password(name: str) -> str | HTTPResponse:
        keys = [f"user:{name}"]
        wait = rt.throttle.retry_after(keys)
        if wait > 0:
            bottle.response.set_header("Retry-After", str(int(wait) + 1))
            return render(
                rt,
                "account.tpl",
                429,
                errors=["too_many_attempts"],
                new_token=None,
                token_label="",
                minutes=int(wait // 60) + 1,
            )
        if ctx.users.verify(name, form("current", 512)) is None:
            rt.throttle.failure(keys)
            return render(
                rt,
                "account.tpl",
                400,
                errors=["current_password_wrong"],
                new_token=None,
                token_label="",
            )
        password = form("password", 512)
        if password != form("confirm", 512):
            return render(
                rt, "account.tpl", 400, errors=["password_mismatch"], new_token=None, token_label=""
            )
        try:
            ctx.users.set_password(name, password)
        except UserError as exc:
            return render(rt, "account.tpl", 400, errors=[exc.code], new_token=None, token_label="")
        rt.throttle.success(keys)
        rt.sessions.destroy_user(name)  # every other device must log in again
        log.info("password changed by %s", name)
        audit(rt, "user.password", name)
        return login_session(name, "/account", "password_changed")

    # -- users -----------------------------------------------------------------------------
    @route("/users", "GET", p.USERS_MANAGE)
    def users() -> str:
        return render(rt, "users.tpl", **users_values())

    @route("/users", "POST", p.USERS_MANAGE)
    def users_submit() -> str | HTTPResponse:
        action = form("action")
        if action == "add":
            return add_user()
        if action == "delete":
            return delete_user()
        raise WebError(400, "bad_form", "unknown action")

    def users_refused(status: int, error: str, **values: Any) -> str:
        return render(rt, "users.tpl", status, **users_values(errors=[error], **values))

    def add_user() -> str | HTTPResponse:
        who = require(p.USERS_MANAGE)
        name = form("username", 64).strip().lower()
        roles = form_list("roles")
        password = form("password", 512)
        entered = {"username": name, "chosen": roles}
        if password != form("confirm", 512):
            return users_refused(400, "password_mismatch", **entered)
        if not roles or not set(roles) <= set(ROLES):
            return users_refused(400, "role_missing", **entered)
        if not may_grant(who.user.roles, roles):
            return users_refused(403, "role_not_grantable", **entered)
        try:
            ctx.users.add_user(name, password, roles)
        except UserError as exc:
            return users_refused(400, exc.code, **entered)
        log.info("user %s added by %s", name, who.name)
        audit(rt, "user.add", name, details={"roles": sorted(roles)})
        _flash("user_added")
        return see_other("/users")

    def delete_user() -> str | HTTPResponse:
        who = require(p.USERS_MANAGE)
        target = ctx.users.get(form("username", 64))
        if target is None:
            raise WebError(404, "no_user", "no such user")
        if target.name == who.name:
            return users_refused(400, "cannot_delete_self")
        if not may_grant(who.user.roles, target.roles):
            return users_refused(403, "role_not_grantable")
        ctx.users.delete(target.name)
        rt.sessions.destroy_user(target.name)
        log.info("user %s deleted by %s", target.name, who.name)
        audit(rt, "user.remove", target.name, details={"roles": sorted(target.roles)})
        _flash("user_deleted")
        return see_other("/users")

    def users_values(**values: Any) -> dict[str, Any]:
        who = principal()
        grantable = [r for r in ROLES if who is not None and may_grant(who.user.roles, [r])]
        base: dict[str, Any] = {
            "accounts": ctx.users.list(),
            "roles": ROLES,
            "grantable": grantable,
            "may_grant": lambda roles: who is not None and may_grant(who.user.roles, roles),
            "errors": [],
            "username": "",
            "chosen": [],
        }
        base.update(values)
        return base

    # -- static files ----------------------------------------------------------------------
    @route("/static/<name>", "GET", PUBLIC)
    def static(name: str) -> HTTPResponse:
        m = _STATIC_RE.fullmatch(name)
        if not m:
            raise WebError(404, "not_found", "not found")
        try:
            return send_file(
                STATIC_DIR / name, _STATIC_TYPES[m.group(1)], cache_control="public, max-age=3600"
            )
        except FileNotFoundError:
            raise WebError(404, "not_found", "not found") from None


def _next_param() -> str:
    return safe_next(request.query.get("next"), "")


def _flash(key: str) -> None:
    who = principal()
    if who is not None and who.session is not None:
        who.session.flash.append(key)


def require_session() -> Principal:
    who = principal()
    if who is None or who.session is None:
        raise WebError(401, "login_required", "login required")
    return who
