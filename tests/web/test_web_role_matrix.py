"""Role × route matrix (issue 5 item 8): every route of the app, every role and anonymous.

The routes come from the app itself (`app.routes`), so a route added without a row here fails
`test_every_route_has_a_row`. Each row says who may use the route, as designed (written out
here, independently of permissions.py), and how to exercise it for real: valid CSRF tokens,
an existing recording, a form that does something; "allowed" is then checked by its effect
(a recording gone, an account made, audio served), not only by the absence of a 403. Every
response is also checked for the security headers.

The subject requests (/subjects..., restriction, the do-not-record list) are guarded by
subjects.manage (privacy officer and administrator); their handlers' behaviour is tested in
test_web_subjects.py and test_web_donotrecord.py, here only who gets past the guard.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bottle
import pytest
from webtest_support import PASSWORD, Appliance, Client, Response, add_recording

from callrec.config_store import ConfigStore
from callrec_web.app import make_app

PUBLIC = "public"
AUTH = "authenticated"
SUBJECTS = "subjects.manage"
SETTINGS = "settings.manage"

# The designed role table (issue 5 item 1), written out independently of permissions.py.
EVERYTHING = {
    "recordings.list", "recordings.listen", "recordings.erase", "status.view", "users.manage",
    "tokens.own", "audit.view", "processing.record", SUBJECTS, "selftest.run", SETTINGS,
}
DESIGN: dict[str, set[str]] = {
    "admin": EVERYTHING,
    # Never hears a call; runs the self-test (a tone on an idle line, nothing recorded).
    # Settings (line, announcements, retention, backup, diagnostics) never reveal a call.
    "technician": {"status.view", "users.manage", "selftest.run", SETTINGS},
    "supervisor": {"recordings.list", "recordings.listen", "status.view"},
    "privacy_officer": {"recordings.list", "recordings.listen", "recordings.erase",
                        "status.view", "audit.view", "processing.record", SUBJECTS},
}
# Test accounts: the fixture's one per role, and one holding two roles.
ACCOUNTS: dict[str, set[str]] = {
    "admin": {"admin"},
    "tech": {"technician"},
    "supervisor": {"supervisor"},
    "privacy": {"privacy_officer"},
    "duo": {"technician", "supervisor"},
}
ANON = "anonymous"
WHO = [ANON, *ACCOUNTS]

Check = Callable[["Ctx", Response], str | None]  # an error message, or None if as designed


@dataclass
class Ctx:
    """What one exercise of a row knows: the appliance, the role, the filled-in path."""

    app: Appliance
    role: str
    path: str = ""
    rec_id: str = ""
    made: str = ""  # an account name the request creates
    subject: str = ""  # how the subject routes name the person (see subject_handle)


@dataclass(frozen=True)
class Row:
    access: str  # PUBLIC, AUTH or a permission
    path: str = ""  # "" = the rule, its wildcards filled in (<rec_id>: a fresh recording)
    form: dict[str, str] | None = None
    ok: tuple[int, ...] = (200,)  # the statuses when allowed (any status < 500 but 401/403: ())
    anon_ok: tuple[int, ...] | None = None  # for PUBLIC routes, if anonymous differs
    check: Check | None = None
    own_client: bool = False  # the request logs in or out: a fresh account and client for it
    subjects: bool = False  # part of the subject requests work (may not be there yet)
    cached: bool = False  # a static file: cacheable; everything else is no-store


_names = itertools.count()
_minutes = itertools.count()


def fresh_recording(app: Appliance) -> str:
    started = datetime(2023, 3, 1, tzinfo=UTC) + timedelta(minutes=next(_minutes))
    return add_recording(app.store, started)


# -- checks of the effect of an allowed request ------------------------------------------------
def _erased(c: Ctx, resp: Response) -> str | None:
    return None if c.app.store.get(c.rec_id) is None else "recording still there"


def _shows_recording(c: Ctx, resp: Response) -> str | None:
    return None if c.rec_id in resp.text else "recording id not on the page"


def _audio(c: Ctx, resp: Response) -> str | None:
    kind = resp.header("Content-Type") or ""
    return None if kind.startswith("audio/") and len(resp.body) > 44 else f"not audio: {kind}"


def _json_recording(c: Ctx, resp: Response) -> str | None:
    return None if resp.json().get("id") == c.rec_id else "wrong metadata"


def _account_made(c: Ctx, resp: Response) -> str | None:
    return None if c.app.users.get(c.made) is not None else "account not created"


def _logged_in(c: Ctx, resp: Response) -> str | None:
    where = resp.header("Location") or ""
    return None if not where.startswith("/login") else f"sent to {where}"


def _home(c: Ctx, resp: Response) -> str | None:
    """The start page sends visitors to log in, and each account to its first page."""
    where = resp.header("Location") or ""
    wanted = {ANON: "/login", "tech": "/status"}.get(c.role, "/recordings")
    return None if where == wanted else f"sent to {where}, wanted {wanted}"


def _to_login(c: Ctx, resp: Response) -> str | None:
    return None if resp.header("Location") == "/login" else "not sent to /login"


def _selftest_ran(c: Ctx, resp: Response) -> str | None:
    runner = c.app.ctx.selftest
    return None if runner is not None and getattr(runner, "runs", 0) else "self-test not run"


def _json_report(c: Ctx, resp: Response) -> str | None:
    return None if "results" in resp.json() else "no report"


def _zip(c: Ctx, resp: Response) -> str | None:
    kind = resp.header("Content-Type") or ""
    return None if kind == "application/zip" and resp.body[:2] == b"PK" else f"not a zip: {kind}"


def _contains(*words: str) -> Check:
    def check(c: Ctx, resp: Response) -> str | None:
        lost = [w for w in words if w not in resp.text]
        return f"missing {lost}" if lost else None

    return check


# -- the table ---------------------------------------------------------------------------------
ID = "<rec_id>"
ROWS: dict[tuple[str, str], Row] = {
    ("GET", "/"): Row(PUBLIC, ok=(303,), check=_home),
    # Accounts exist, so first-start setup is closed for everyone.
    ("GET", "/setup"): Row(PUBLIC, ok=(404,)),
    ("POST", "/setup"): Row(PUBLIC, form={"code": "x", "username": "x", "password": "x",
                                          "confirm": "x"}, ok=(404,)),
    ("GET", "/login"): Row(PUBLIC, ok=(303,), anon_ok=(200,)),
    ("POST", "/login"): Row(PUBLIC, ok=(303,), check=_logged_in, own_client=True),
    ("POST", "/logout"): Row(AUTH, ok=(303,), check=_to_login, own_client=True),
    ("GET", "/recordings"): Row("recordings.list", path="/recordings?page=2"),
    ("GET", f"/recordings/{ID}"): Row("recordings.listen", check=_shows_recording),
    ("GET", f"/recordings/{ID}/audio"): Row("recordings.listen", check=_audio),
    ("GET", f"/recordings/{ID}/download"): Row("recordings.listen", check=_audio),
    ("GET", f"/recordings/{ID}/erase"): Row("recordings.erase", check=_shows_recording),
    ("POST", f"/recordings/{ID}/erase"): Row(
        "recordings.erase", form={"confirm": "yes", "reason": "matrix"}, ok=(303,),
        check=_erased),
    ("GET", "/status"): Row("status.view", check=_contains("<h1")),
    ("GET", "/audit"): Row("audit.view"),
    ("GET", "/account"): Row(AUTH),
    # A real password change (to the same password) renews the session and ends the other
    # sessions of the account: done with an account of its own.
    ("POST", "/account"): Row(AUTH, form={"action": "password", "current": PASSWORD,
                                          "password": PASSWORD, "confirm": PASSWORD},
                              ok=(303,), check=_logged_in, own_client=True),
    ("GET", "/users"): Row("users.manage"),
    ("POST", "/users"): Row("users.manage", form={"action": "add", "roles": "technician",
                                                  "password": PASSWORD, "confirm": PASSWORD},
                            ok=(303,), check=_account_made),
    ("GET", "/static/<name>"): Row(PUBLIC, path="/static/style.css", cached=True),
    ("GET", "/privacy"): Row(PUBLIC, check=_contains('<html lang="en"'), path="/privacy?lang=en"),
    ("GET", "/privacy/record"): Row("processing.record", path="/privacy/record?lang=en",
                                    check=_contains("Record of processing activities")),
    ("GET", "/api/v1/status"): Row("status.view"),
    ("GET", "/api/v1/recordings"): Row("recordings.list"),
    ("GET", f"/api/v1/recordings/{ID}"): Row("recordings.listen", check=_json_recording),
    ("GET", f"/api/v1/recordings/{ID}/audio"): Row("recordings.listen", check=_audio),
    ("DELETE", f"/api/v1/recordings/{ID}"): Row("recordings.erase", check=_erased),
    ("GET", "/api/v1/audit"): Row("audit.view"),
    ("GET", "/selftest"): Row("selftest.run", check=_contains("<h1>Self-test</h1>")),
    ("POST", "/selftest"): Row("selftest.run", ok=(303,), check=_selftest_ran),
    ("GET", "/api/v1/selftest"): Row("selftest.run", check=_json_report),
    ("POST", "/api/v1/selftest"): Row("selftest.run", check=_json_report),
}

# The subject requests (web/callrec_web/subjects.py): guarded by subjects.manage. Their
# handlers' own behaviour is tested with them; here "allowed" means past the guard (any
# answer below 500 but 401, 403 or the login page: a made-up subject may well be a 404).
_SUBJECT_ROUTES = [
    ("GET", "/subjects"), ("POST", "/subjects"), ("GET", "/subjects/<subject>"),
    ("POST", "/subjects/<subject>/requests"), ("POST", "/subjects/requests/<req_id>/close"),
    ("GET", "/subjects/requests/<req_id>/receipt"),
    ("GET", "/subjects/<subject>/<action:re:export|erase|object>"),
    ("POST", "/subjects/<subject>/export"), ("POST", "/subjects/<subject>/erase"),
    ("POST", "/subjects/<subject>/object"), ("GET", "/subjects/<subject>/restrict"),
    ("POST", "/subjects/<subject>/restrict"), ("GET", f"/subjects/<subject>/rectify/{ID}"),
    ("POST", f"/subjects/<subject>/rectify/{ID}"), ("POST", f"/recordings/{ID}/restrict"),
    ("POST", f"/recordings/{ID}/unrestrict"), ("POST", "/api/v1/subjects"),
    ("GET", "/api/v1/subjects/requests"), ("GET", "/api/v1/subjects/<subject>"),
    ("POST", "/api/v1/subjects/<subject>/requests"),
    ("POST", "/api/v1/subjects/<subject>/export"), ("POST", "/api/v1/subjects/<subject>/erase"),
    ("POST", "/api/v1/subjects/<subject>/restrict"),
    ("POST", "/api/v1/subjects/<subject>/object"),
    ("POST", f"/api/v1/subjects/<subject>/rectify/{ID}"),
    ("POST", f"/api/v1/recordings/{ID}/restrict"),
    ("POST", f"/api/v1/recordings/{ID}/unrestrict"),
]
SUBJECT_ROW = Row(SUBJECTS, ok=(), subjects=True)
ROWS.update({key: SUBJECT_ROW for key in _SUBJECT_ROUTES})
ROWS[("POST", "/subjects")] = Row(SUBJECTS, form={"number": "06 00 00 00 00"}, ok=(),
                                  subjects=True)
# The do-not-record list: a prefix no test number has, added then removed.
_DNR_FORM = {"kind": "prefix", "value": "0899", "reason": "matrix"}
ROWS.update({
    ("GET", "/subjects/donotrecord"): Row(SUBJECTS),
    ("POST", "/subjects/donotrecord"): Row(SUBJECTS, form=_DNR_FORM, ok=(303,)),
    ("POST", "/subjects/donotrecord/remove"): Row(SUBJECTS, form=_DNR_FORM, ok=()),
    ("GET", "/api/v1/donotrecord"): Row(SUBJECTS),
    ("POST", "/api/v1/donotrecord"): Row(SUBJECTS, form=_DNR_FORM),
    ("POST", "/api/v1/donotrecord/remove"): Row(SUBJECTS, form=_DNR_FORM, ok=()),
})

# The settings (settings.py, announcements.py, maintenance.py): technician and administrator.
# Their forms' behaviour is tested in test_web_settings.py, test_web_announcements.py,
# test_web_backup.py and test_web_diagnostics.py; here the pages must open (200) for those
# roles and every form be past the guard (any answer below 500 but 401/403/login).
ROWS.update({
    ("GET", "/settings"): Row(SETTINGS, check=_contains("/settings/line")),
    ("GET", "/settings/announcements"): Row(SETTINGS),
    ("POST", "/settings/announcements/upload"): Row(SETTINGS, form={"direction": "in"}, ok=()),
    ("POST", "/settings/announcements/activate"): Row(SETTINGS, form={"version": "x"}, ok=()),
    ("GET", "/settings/announcements/audio/<version_id>"): Row(
        SETTINGS, path="/settings/announcements/audio/in-fr-1", ok=()),
    ("GET", "/settings/backup"): Row(SETTINGS),
    ("POST", "/settings/backup"): Row(SETTINGS, form={}, ok=()),
    ("POST", "/settings/backup/restore"): Row(SETTINGS, form={}, ok=()),
    ("POST", "/settings/backup/apply"): Row(SETTINGS, form={}, ok=()),
    ("POST", "/settings/backup/cancel"): Row(SETTINGS, form={}, ok=()),
    ("GET", "/settings/diagnostics"): Row(SETTINGS),
    ("POST", "/settings/diagnostics"): Row(SETTINGS, form={}, check=_zip),
    ("GET", "/api/v1/diagnostics"): Row(SETTINGS, check=_zip),
})
for _form in ("line", "sip", "storage", "language", "controller", "privacy",
              "announcement-languages"):
    ROWS[("GET", f"/settings/{_form}")] = Row(SETTINGS, check=_contains('name="csrf_token"'))
    # An empty form: refused field by field (400), nothing written.
    ROWS[("POST", f"/settings/{_form}")] = Row(SETTINGS, form={}, ok=())

# A number no recording has, so that an allowed subject request changes nothing that matters.
_SUBJECT_NUMBER = "0600000000"
_WILDCARD = re.compile(r"<(\w+)(?::([^>]*))?>")


@dataclass
class Route:
    method: str
    rule: str
    row: Row


def app_routes(app: Appliance) -> list[tuple[str, str]]:
    """(method, rule) of every route of the app the daemon serves (same factory, same ctx)."""
    built: bottle.Bottle = make_app(app.ctx)
    return [(r.method, r.rule) for r in built.routes]


def resolve(app: Appliance) -> tuple[list[Route], list[str]]:
    """The app's routes with their rows, and the problems: routes with no row, rows with no
    route."""
    routes, problems = [], []
    present = app_routes(app)
    for method, rule in present:
        row = ROWS.get((method, rule))
        if row is not None:
            routes.append(Route(method, rule, row))
        else:
            problems.append(f"route {method} {rule} has no row in ROWS: say who may use it")
    for method, rule in ROWS:
        if (method, rule) not in present:
            problems.append(f"row {method} {rule} names no route of the app (renamed? removed?)")
    return routes, problems


def fill(c: Ctx, rule: str, row: Row) -> str:
    if row.path:
        return row.path

    def value(m: re.Match[str]) -> str:
        name, flt = m.group(1), m.group(2) or ""
        if name == "rec_id":
            c.rec_id = c.rec_id or fresh_recording(c.app)
            return c.rec_id
        if flt.startswith("re:"):
            return flt[3:].split("|")[0]
        return (c.subject or _SUBJECT_NUMBER) if name == "subject" else "0" * 16

    return _WILDCARD.sub(value, rule)


def subject_handle(app: Appliance) -> str:
    """The name the subject pages give the person of _SUBJECT_NUMBER (they put a pseudonym,
    not the number, in URLs), so that an allowed request reaches a real person's page; the
    number itself if the pages answer otherwise."""
    admin = app.client()
    admin.login("admin")
    resp = admin.post("/subjects", {"number": _SUBJECT_NUMBER})
    where = resp.header("Location") or ""
    if resp.status == 303 and where.startswith("/subjects/"):
        return where.removeprefix("/subjects/")
    return _SUBJECT_NUMBER


def client_for(app: Appliance, role: str, clients: dict[str, Client], own: bool) -> Client:
    """The role's client; for `own` rows a new one (with a new account of the same roles)."""
    if not own and role in clients:
        return clients[role]
    c = app.client()
    if role == ANON:
        c.get("/login")  # its form token, so that a refusal is about rights, not CSRF
    else:
        name = role
        if own:
            name = f"m{next(_names)}-{role}"
            app.users.add_user(name, PASSWORD, ACCOUNTS[role])
        c.login(name)
    if not own:
        clients[role] = c
    return c


def send(c: Ctx, who: Client, method: str, row: Row) -> Response:
    form = dict(row.form or {})
    if method == "POST" and c.path == "/users":
        c.made = f"made{next(_names)}"
        form["username"] = c.made
    if method == "POST" and c.path == "/login":
        form = {"username": "supervisor", "password": PASSWORD}
    if method == "POST":
        return who.post(c.path, form)
    headers = {}
    if method not in ("GET", "HEAD"):
        headers["Origin"] = f"http://127.0.0.1:{c.app.port}"
        if "callrec_session" in who.cookies:
            headers["X-CSRF-Token"] = who.csrf_token()
    return who.request(method, c.path, headers=headers)


def allowed(role: str, access: str) -> bool:
    if access == PUBLIC:
        return True
    if role == ANON:
        return False
    if access == AUTH:
        return True
    return any(access in DESIGN[r] for r in ACCOUNTS[role])


def headers_problem(route: Route, resp: Response) -> str | None:
    csp = resp.header("Content-Security-Policy") or ""
    wanted = {
        "CSP frame-ancestors 'none'": "frame-ancestors 'none'" in csp,
        "CSP default-src 'self'": "default-src 'self'" in csp,
        "nosniff": resp.header("X-Content-Type-Options") == "nosniff",
        "X-Frame-Options DENY": resp.header("X-Frame-Options") == "DENY",
        "Referrer-Policy same-origin": resp.header("Referrer-Policy") == "same-origin",
    }
    cache = resp.header("Cache-Control") or ""
    if route.row.cached and resp.status == 200:
        wanted["cacheable static file"] = cache.startswith("public")
    else:
        wanted["Cache-Control no-store"] = "no-store" in cache
    lost = [name for name, ok in wanted.items() if not ok]
    return f"headers: {lost}" if lost else None


def outcome_problem(route: Route, role: str, c: Ctx, resp: Response) -> str | None:
    row = route.row
    api = route.rule.startswith("/api/")
    if allowed(role, row.access):
        ok = row.anon_ok if role == ANON and row.anon_ok is not None else row.ok
        if ok:
            if resp.status not in ok:
                return f"allowed: wanted {ok}, got {resp.status}"
        elif resp.status in (401, 403) or resp.status >= 500 or (
                resp.status in (302, 303)
                and (resp.header("Location") or "").startswith("/login")):
            return f"allowed: refused or failed with {resp.status}"
        return row.check(c, resp) if row.check else None
    if role == ANON:
        if api:
            if resp.status != 401 or resp.header("WWW-Authenticate") != 'Bearer realm="callrec"':
                return f"anonymous API: wanted 401 with a challenge, got {resp.status}"
            return None
        if resp.status != 303 or not (resp.header("Location") or "").startswith("/login"):
            return f"anonymous page: wanted 303 to /login, got {resp.status}"
        return None
    if resp.status != 403:
        return f"refused: wanted 403, got {resp.status}"
    if api and resp.json() != {"error": "forbidden"}:
        return "refused: wrong API error body"
    if c.rec_id and row.check is _erased and c.app.store.get(c.rec_id) is None:
        return "refused, yet the recording was erased"
    if c.made and c.app.users.get(c.made) is not None:
        return "refused, yet the account was created"
    return None


# -- the tests ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _settings_file(appliance: Appliance, tmp_path: Path) -> None:
    """The configuration file the settings pages edit, as the daemon gives them."""
    path = tmp_path / "etc" / "callrec.toml"
    path.parent.mkdir()
    path.write_text('[line]\nname = "line1"\n', encoding="utf-8")
    appliance.ctx.settings = ConfigStore(path)


def test_every_route_has_a_row(appliance: Appliance) -> None:
    routes, problems = resolve(appliance)
    assert not problems, "\n".join(problems)
    rules = {(r.method, r.rule) for r in routes}
    # The introspection really sees the app: the routes everyone knows are there.
    assert {("GET", "/privacy"), ("POST", f"/recordings/{ID}/erase"),
            ("DELETE", f"/api/v1/recordings/{ID}")} <= rules


@pytest.mark.parametrize("role", WHO)
def test_role_route_matrix(appliance: Appliance, role: str) -> None:
    for name in ("duo",):
        if appliance.users.get(name) is None:
            appliance.users.add_user(name, PASSWORD, ACCOUNTS[name])
    routes, _ = resolve(appliance)
    subject = subject_handle(appliance) if any(r.row.subjects for r in routes) else ""
    clients: dict[str, Client] = {}
    failures = []
    for route in routes:
        c = Ctx(appliance, role, subject=subject)
        c.path = fill(c, route.rule, route.row)
        who = client_for(appliance, role, clients, route.row.own_client)
        resp = send(c, who, route.method, route.row)
        for problem in (outcome_problem(route, role, c, resp), headers_problem(route, resp)):
            if problem:
                failures.append(f"{role:10} {route.method:6} {c.path}: {problem}")
    assert not failures, "\n".join(failures)


@dataclass
class _Forgery:
    name: str
    token: Callable[[Client, Client], str | None]
    origin: str | None = None


def test_every_state_changing_route_needs_the_csrf_token(appliance: Appliance) -> None:
    """Every route that is not GET/HEAD refuses a request without the session's own token,
    or from another origin, before its handler runs: nothing changes."""
    routes, _ = resolve(appliance)
    changing = [r for r in routes if r.method not in ("GET", "HEAD")]
    assert {("POST", "/login"), ("POST", "/logout"), ("DELETE", f"/api/v1/recordings/{ID}")} <= {
        (r.method, r.rule) for r in changing}
    forgeries = [
        _Forgery("no token", lambda me, other: None),
        _Forgery("forged token", lambda me, other: "A" * 43),
        _Forgery("another session's token", lambda me, other: other.csrf_token()),
        _Forgery("valid token, other origin", lambda me, other: me.csrf_token(),
                 origin="http://evil.example"),
    ]
    other = appliance.client()
    other.login("privacy")
    accounts, failures = len(appliance.users.list()), []
    for route in changing:
        # The admin holds every permission, so a refusal is the CSRF check's; a public route
        # is also tried by a visitor holding a pre-login form token.
        for role in (("admin", ANON) if route.row.access == PUBLIC else ("admin",)):
            me = appliance.client()
            if role == ANON:
                me.get("/login")
            else:
                me.login(role)
            for forgery in forgeries:
                c = Ctx(appliance, role)
                c.path = fill(c, route.rule, route.row)
                token = forgery.token(me, other)
                origin = forgery.origin or f"http://127.0.0.1:{appliance.port}"
                form = dict(route.row.form or {})
                if route.method == "POST" and c.path == "/login":
                    form = {"username": "supervisor", "password": PASSWORD}
                if route.method == "POST":
                    data = [*form.items(), *([("csrf_token", token)] if token else [])]
                    resp = me.post(c.path, data, csrf=False, headers={"Origin": origin})
                else:
                    headers = {"Origin": origin, **({"X-CSRF-Token": token} if token else {})}
                    resp = me.request(route.method, c.path, headers=headers)
                label = f"{role} {route.method} {c.path} with {forgery.name}"
                if resp.status != 403:
                    failures.append(f"{label}: {resp.status}")
                if c.rec_id and appliance.store.get(c.rec_id) is None:
                    failures.append(f"{label}: the recording was erased")
                if "callrec_session" in me.cookies and role == ANON:
                    failures.append(f"{label}: a session was opened")
    assert len(appliance.users.list()) == accounts
    assert not failures, "\n".join(failures)


def test_csrf_token_is_bound_to_one_session(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    pre_login = c.csrf_token("/login")
    c.login("admin")
    rec_id = fresh_recording(appliance)
    path = f"/recordings/{rec_id}/erase"
    # The form token of the login page does not work once logged in (it is for public forms).
    assert c.post(path, {"confirm": "yes", "csrf_token": pre_login}).status == 403
    first = c.csrf_token()
    c.login("admin")  # a new login: a new session and a new token
    second = c.csrf_token()
    assert second != first
    assert c.post(path, {"confirm": "yes", "csrf_token": first}).status == 403
    c.post("/logout", {"csrf_token": second})
    c.login("admin")
    assert c.post(path, {"confirm": "yes", "csrf_token": second}).status == 403
    assert appliance.store.get(rec_id) is not None
    assert c.post(path, {"confirm": "yes"}).status == 303
    assert appliance.store.get(rec_id) is None


def test_idle_session_refuses_state_changes_too(appliance: Appliance) -> None:
    """A timed-out session cannot post either, even with the token it was given."""
    c = appliance.client()
    c.login("admin")
    token = c.csrf_token()
    rec_id = fresh_recording(appliance)
    appliance.clock.advance(31 * 60)
    resp = c.post(f"/recordings/{rec_id}/erase", {"confirm": "yes", "csrf_token": token})
    assert resp.status == 303 and resp.header("Location") == "/login"
    assert appliance.store.get(rec_id) is not None
    resp = c.request("DELETE", f"/api/v1/recordings/{rec_id}", headers={"X-CSRF-Token": token})
    assert resp.status == 401 and appliance.store.get(rec_id) is not None
