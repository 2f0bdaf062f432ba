"""Who is asking, and may they: authentication, permission and CSRF checks for every route.

Each route declares `perm=` in its Bottle route config: a permission from permissions.py,
AUTHENTICATED (any logged-in user) or PUBLIC. The Guard plugin enforces it before the
handler runs, so no handler can forget; a route without `perm` refuses to build.
"""

from __future__ import annotations

import hmac
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import bottle
from bottle import HTTPError, HTTPResponse, request

from callrec.audit import AuditError
from callrec_web.context import WebContext
from callrec_web.permissions import PERMISSIONS, allowed
from callrec_web.ratelimit import LoginThrottle
from callrec_web.security import same_origin
from callrec_web.sessions import Session, SessionStore
from callrec_web.users import User
from callrec_web.views import Views

log = logging.getLogger(__name__)

PUBLIC = "public"
AUTHENTICATED = "authenticated"
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_FORM_BYTES = 64 * 1024
MAX_DRAIN_BYTES = 1024 * 1024  # a refused body bigger than this: the connection is closed
# The routes that take a file, with their own limit: an announcement's audio (up to 20 MB,
# callrec.prompt_upload.MAX_UPLOAD_BYTES) and the form around it.
UPLOAD_BODY_BYTES = {"/settings/announcements/upload": 20 * 1024 * 1024 + 64 * 1024}

_PRINCIPAL_KEY = "callrec.principal"


class WebError(HTTPError):
    """An HTTP error with a message key for the HTML page and an English text for the API."""

    def __init__(self, status: int, key: str, text: str, **headers: str) -> None:
        super().__init__(status, text, **headers)
        self.key = key


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request."""

    user: User
    via: str  # "session" or "token"
    session: Session | None = None

    @property
    def name(self) -> str:
        return self.user.name

    def can(self, perm: str) -> bool:
        return allowed(self.user.roles, perm)


@dataclass
class Runtime:
    """Everything the routes share: the daemon's context plus the web layer's own state."""

    ctx: WebContext
    sessions: SessionStore
    throttle: LoginThrottle
    views: Views
    session_cookie: str = field(init=False)
    pre_cookie: str = field(init=False)

    def __post_init__(self) -> None:
        # __Host- cookies are only accepted over TLS, host-only, Path=/: use them when we can.
        prefix = "__Host-" if self.ctx.https else ""
        self.session_cookie = f"{prefix}callrec_session"
        self.pre_cookie = f"{prefix}callrec_form"

    def set_cookie(self, response: bottle.BaseResponse, name: str, value: str) -> None:
        response.set_cookie(
            name, value, httponly=True, samesite="strict", path="/", secure=self.ctx.https
        )

    def clear_cookie(self, response: bottle.BaseResponse, name: str) -> None:
        response.set_cookie(
            name, "", httponly=True, samesite="strict", path="/", secure=self.ctx.https, max_age=0
        )

    def form_token(self) -> str:
        """The anti-CSRF token for forms sent before login (double-submit cookie)."""
        token = request.get_cookie(self.pre_cookie)
        if not token or len(token) > 64:
            token = secrets.token_urlsafe(32)
            self.set_cookie(bottle.response, self.pre_cookie, token)
            request.environ["callrec.form_token"] = token
        return str(token)


# -- request helpers -------------------------------------------------------------------------
def principal() -> Principal | None:
    """The caller of the current request (set by the Guard)."""
    who: Principal | None = request.environ.get(_PRINCIPAL_KEY)
    return who


def require(perm: str) -> Principal:
    """The caller, if they hold `perm`; else 403. For handlers whose actions differ in rights."""
    who = principal()
    if who is None:
        raise WebError(401, "login_required", "authentication required")
    if not who.can(perm):
        raise WebError(403, "forbidden", "forbidden")
    return who


def is_api() -> bool:
    return request.path.startswith("/api/")


def client_ip() -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client and would dodge the throttle.
    return str(request.environ.get("REMOTE_ADDR") or "?")


def audit(
    rt: Runtime,
    action: str,
    target: str = "",
    *,
    reason: str = "",
    details: dict[str, Any] | None = None,
    actor: str | None = None,
    required: bool = False,
) -> None:
    """Write an access log entry for this request (callrec.audit), as the caller.

    `required`: refuse the request if the entry cannot be written. Access to a recording
    must never go unlogged, so playback and download fail closed; a login or a user change
    that already happened is only reported in the system log if its entry fails.
    """
    journal = rt.ctx.audit
    if journal is None:
        return
    who = principal()
    name = actor or (who.name if who else "anonymous")
    info = {"via": "api" if is_api() else "web", **(details or {})}
    if who is not None and who.via == "token":
        info["auth"] = "token"
    try:
        journal.record(name, action, target, reason, info)
    except (AuditError, ValueError) as exc:
        log.error("access log: %s on %s not recorded: %s", action, target or "-", exc)
        if required:
            raise WebError(500, "http_500", "the access log cannot be written") from None


def see_other(location: str) -> HTTPResponse:
    """A 303 redirect to a local path (returned, so cookies can be set on it)."""
    return HTTPResponse(status=303, Location=location)


def form(name: str, max_len: int = 256) -> str:
    """One form field as text; 400 if it is not valid UTF-8 or too long."""
    try:
        raw = request.forms.get(name)
    except Exception:
        raise WebError(400, "bad_form", "malformed form data") from None
    if raw is None:
        return ""
    try:
        value = raw.encode("latin1").decode("utf-8")  # Bottle hands out latin-1 "native" text
    except UnicodeError:
        raise WebError(400, "bad_form", f"field {name} is not UTF-8 text") from None
    if len(value) > max_len:
        raise WebError(400, "bad_form", f"field {name} is too long")
    return value


def form_list(name: str) -> list[str]:
    try:
        return [str(v) for v in request.forms.getall(name)]
    except Exception:
        raise WebError(400, "bad_form", "malformed form data") from None


def check_body_size() -> None:
    """before_request hook: refuse bodies over MAX_FORM_BYTES (an upload route's own limit
    for a POST to it) with 413."""
    stream = request.environ["wsgi.input"]
    length = request.environ.get("CONTENT_LENGTH") or ""
    limit = MAX_FORM_BYTES
    if request.method == "POST":
        limit = UPLOAD_BODY_BYTES.get(request.path, MAX_FORM_BYTES)
    if length:
        try:
            size = int(length)
        except ValueError:
            raise WebError(400, "bad_request", "invalid Content-Length") from None
        if size > limit:
            _drain(stream, size)
            raise WebError(413, "too_large", "request body too large")
    elif "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        # No length announced: read at most one byte more than allowed and look. This happens
        # before the guard, so only the small form limit applies: a browser's upload always
        # announces its length, and nobody can make us hold 20 MB without logging in.
        limit = MAX_FORM_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            _drain(stream, MAX_DRAIN_BYTES)
            raise WebError(413, "too_large", "request body too large")
        request.environ["wsgi.input"] = io.BytesIO(body)
        request.environ["CONTENT_LENGTH"] = str(len(body))
        request.environ.pop("HTTP_TRANSFER_ENCODING", None)


def _drain(stream: Any, size: int) -> None:
    """Read and drop a refused body, so the client gets the 413 instead of a reset."""
    left = min(size, MAX_DRAIN_BYTES)
    while left > 0:
        chunk = stream.read(min(left, 16384))
        if not chunk:
            break
        left -= len(chunk)


# -- the guard -------------------------------------------------------------------------------
class Guard:
    """Bottle plugin: identifies the caller and enforces each route's `perm` and CSRF."""

    name = "callrec_guard"
    api = 2

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @staticmethod
    def check_route(route: bottle.Route) -> None:
        perm = route.config.get("perm")
        if perm not in PERMISSIONS | {PUBLIC, AUTHENTICATED}:
            raise ValueError(f"route {route.method} {route.rule} declares no valid perm=")

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        self.check_route(route)
        perm = route.config.get("perm")
        touch = bool(route.config.get("touch", True))
        api_route = route.rule.startswith("/api/")

        def guarded(*args: Any, **kwargs: Any) -> Any:
            who = self.identify(api_route, touch)
            request.environ[_PRINCIPAL_KEY] = who
            if perm != PUBLIC:
                if who is None:
                    if api_route:
                        challenge = {"WWW-Authenticate": 'Bearer realm="callrec"'}
                        raise WebError(401, "login_required", "login required", **challenge)
                    return self.to_login()
                if perm != AUTHENTICATED and not who.can(perm):
                    log.info("denied %s %s to %s", request.method, route.rule, who.name)
                    raise WebError(403, "forbidden", "forbidden")
            if request.method not in SAFE_METHODS:
                self.check_csrf(who)
            return callback(*args, **kwargs)

        return guarded

    def identify(self, api_route: bool, touch: bool) -> Principal | None:
        users = self.rt.ctx.users
        auth = request.environ.get("HTTP_AUTHORIZATION")
        if api_route and auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer":
                return None
            user = users.user_for_token(token.strip())
            return Principal(user, "token") if user else None
        sid = request.get_cookie(self.rt.session_cookie)
        session = self.rt.sessions.get(sid, touch=touch)
        if session is None:
            return None
        user = users.get(session.user)
        if user is None:  # account deleted meanwhile
            self.rt.sessions.destroy(session.id)
            return None
        return Principal(user, "session", session)

    def to_login(self) -> HTTPResponse:
        if request.method in SAFE_METHODS:
            target = request.fullpath + (f"?{request.query_string}" if request.query_string else "")
            return see_other("/login?next=" + quote(target, safe="/"))
        return see_other("/login")

    def check_csrf(self, who: Principal | None) -> None:
        if not same_origin(request.environ, self.rt.ctx.https):
            log.warning("cross-origin %s %s refused", request.method, request.path)
            raise WebError(403, "cross_origin", "cross-origin request refused")
        if who is not None and who.via == "token":
            return  # a bearer token is never sent by a browser on its own: no CSRF
        expected = [who.session.csrf] if who is not None and who.session else []
        pre = request.get_cookie(self.rt.pre_cookie)
        if pre and (who is None or route_is_public()):
            expected.append(pre)
        given = request.environ.get("HTTP_X_CSRF_TOKEN") or form("csrf_token")
        if not given or not any(hmac.compare_digest(given.encode(), e.encode()) for e in expected):
            raise WebError(403, "csrf", "missing or wrong CSRF token")


def route_is_public() -> bool:
    route = request.environ.get("bottle.route")
    return bool(route is not None and route.config.get("perm") == PUBLIC)
