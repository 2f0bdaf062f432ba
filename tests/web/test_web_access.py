"""Access control on every route, CSRF and origin checks, headers, bad input."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from webtest_support import PASSWORD, Appliance, Client, add_recording

ANON = "anonymous"
AUTH = "any logged-in user"

# The designed role table, written out independently of permissions.py.
EXPECTED = {
    "admin": {
        "recordings.list",
        "recordings.listen",
        "recordings.erase",
        "status.view",
        "users.manage",
        "tokens.own",
    },
    "supervisor": {"recordings.list", "recordings.listen", "status.view"},
    "privacy": {"recordings.list", "recordings.listen", "recordings.erase", "status.view"},
    "tech": {"status.view", "users.manage"},
}

# (method, path, permission, form or None): every route but /logout, /login, /setup, /static.
ROUTES: list[tuple[str, str, str, dict[str, str] | None]] = [
    ("GET", "/recordings", "recordings.list", None),
    ("GET", "/recordings?page=2", "recordings.list", None),
    ("GET", "/recordings/{id}", "recordings.listen", None),
    ("GET", "/recordings/{id}/audio", "recordings.listen", None),
    ("GET", "/recordings/{id}/download", "recordings.listen", None),
    ("GET", "/recordings/{id}/erase", "recordings.erase", None),
    ("POST", "/recordings/{id}/erase", "recordings.erase", {"confirm": "yes"}),
    ("GET", "/status", "status.view", None),
    ("GET", "/account", AUTH, None),
    ("POST", "/account", AUTH, {"action": "unknown"}),
    ("POST", "/account", "tokens.own", {"action": "token_create", "label": "x"}),
    ("GET", "/users", "users.manage", None),
    ("POST", "/users", "users.manage", {"action": "unknown"}),
    ("GET", "/api/v1/status", "status.view", None),
    ("GET", "/api/v1/recordings", "recordings.list", None),
    ("GET", "/api/v1/recordings/{id}", "recordings.listen", None),
    ("GET", "/api/v1/recordings/{id}/audio", "recordings.listen", None),
    ("DELETE", "/api/v1/recordings/{id}", "recordings.erase", None),
]


_minutes = itertools.count()


def fresh_recording(app: Appliance) -> str:
    """A recording of its own for one check, since some checks erase it."""
    started = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=next(_minutes))
    return add_recording(app.store, started)


def call(app: Appliance, who: Client, method: str, path: str, form: dict[str, str] | None):
    if "{id}" in path:
        path = path.replace("{id}", fresh_recording(app))
    if method == "POST":
        return who.post(path, form or {})
    headers = {}
    if method == "DELETE":
        headers["Origin"] = f"http://127.0.0.1:{app.port}"
        if "callrec_session" in who.cookies:
            headers["X-CSRF-Token"] = who.csrf_token()
    return who.request(method, path, headers=headers)


@pytest.mark.parametrize("role", [ANON, *EXPECTED])
def test_role_route_matrix_with_session(appliance: Appliance, role: str) -> None:
    who = appliance.client()
    if role == ANON:
        who.get("/login")  # a form token, so POSTs fail on rights, not on CSRF
    else:
        who.login(role)
    for method, path, perm, form in ROUTES:
        resp = call(appliance, who, method, path, form)
        label = f"{role} {method} {path}"
        if role == ANON:
            if path.startswith("/api/"):
                assert resp.status == 401, label
                assert resp.json() == {"error": "login required"}, label
            else:
                assert resp.status == 303, label
                assert (resp.header("Location") or "").startswith("/login"), label
        elif perm == AUTH or perm in EXPECTED[role]:
            assert resp.status in (200, 206, 303, 400), label
            if resp.status == 303:
                assert not (resp.header("Location") or "").startswith("/login"), label
        else:
            assert resp.status == 403, label
            if path.startswith("/api/"):
                assert resp.json() == {"error": "forbidden"}, label


@pytest.mark.parametrize("role", list(EXPECTED))
def test_role_api_matrix_with_bearer_token(appliance: Appliance, role: str) -> None:
    token = appliance.users.create_token(role, "matrix")  # usernames are the role keys
    client = Client(appliance.port)
    for method, path, perm, _ in ROUTES:
        if not path.startswith("/api/"):
            continue
        if "{id}" in path:
            path = path.replace("{id}", fresh_recording(appliance))
        resp = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        label = f"{role} {method} {path}"
        assert resp.status == (200 if perm in EXPECTED[role] else 403), label


def test_pages_do_not_accept_bearer_tokens(appliance: Appliance) -> None:
    token = appliance.users.create_token("admin", "api only")
    resp = Client(appliance.port).get("/recordings", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 303


def test_bad_bearer_token(appliance: Appliance) -> None:
    c = Client(appliance.port)
    for value in ("Bearer nope", "Bearer " + "A" * 43, "Basic YWRtaW46YWRtaW4=", "Bearer"):
        resp = c.get("/api/v1/recordings", headers={"Authorization": value})
        assert resp.status == 401
        assert resp.header("WWW-Authenticate") == 'Bearer realm="callrec"'
    # A wrong token is not rescued by a valid session cookie.
    c.login("admin")
    resp = c.get("/api/v1/recordings", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401


def test_navigation_follows_permissions(appliance: Appliance) -> None:
    tech = appliance.client()
    tech.login("tech")
    assert tech.get("/").header("Location") == "/status"
    page = tech.get("/status").text
    assert 'href="/users"' in page and 'href="/recordings"' not in page
    sup = appliance.client()
    sup.login("supervisor")
    page = sup.get("/recordings").text
    assert 'href="/users"' not in page and 'href="/status"' in page
    rec_id = appliance.store.page(0, 1)[0][0]["id"]
    assert f'href="/recordings/{rec_id}"' in page
    detail = sup.get(f"/recordings/{rec_id}")
    assert detail.status == 200 and "/erase" not in detail.text  # no erase button without the right


def test_technician_cannot_escalate(appliance: Appliance) -> None:
    tech = appliance.client()
    tech.login("tech")
    form = {"action": "add", "password": PASSWORD, "confirm": PASSWORD}
    for roles in (["admin"], ["supervisor"], ["privacy_officer"], ["technician", "admin"]):
        fields = [*form.items(), ("username", "mole"), *(("roles", r) for r in roles)]
        assert tech.post("/users", fields).status == 403
    assert appliance.users.get("mole") is None
    fields = [*form.items(), ("username", "helper"), ("roles", "technician")]
    assert tech.post("/users", fields).status == 303
    assert appliance.users.get("helper").roles == {"technician"}  # type: ignore[union-attr]
    assert tech.post("/users", {"action": "delete", "username": "admin"}).status == 403
    assert tech.post("/users", {"action": "delete", "username": "tech"}).status == 400
    assert tech.post("/users", {"action": "delete", "username": "helper"}).status == 303
    assert appliance.users.get("admin") is not None and appliance.users.get("helper") is None


def test_deleted_user_loses_session(appliance: Appliance) -> None:
    victim, admin = appliance.client(), appliance.client()
    victim.login("supervisor")
    admin.login("admin")
    assert admin.post("/users", {"action": "delete", "username": "supervisor"}).status == 303
    assert "Account deleted" in admin.get("/users").text
    assert victim.get("/recordings").status == 303


# -- CSRF and origin -------------------------------------------------------------------------
def test_csrf_token_required_for_state_changes(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    rec_id = fresh_recording(appliance)
    path = f"/recordings/{rec_id}/erase"
    assert c.post(path, {"confirm": "yes"}, csrf=False).status == 403
    assert c.post(path, {"confirm": "yes", "csrf_token": "forged"}).status == 403
    # Another user's token does not fit this session.
    other = appliance.client()
    other.login("privacy")
    assert c.post(path, {"confirm": "yes", "csrf_token": other.csrf_token()}).status == 403
    assert appliance.store.get(rec_id) is not None
    resp = c.request("DELETE", f"/api/v1/recordings/{rec_id}")
    assert resp.status == 403 and resp.json() == {"error": "missing or wrong CSRF token"}
    headers = {"X-CSRF-Token": "forged"}
    assert c.request("DELETE", f"/api/v1/recordings/{rec_id}", headers=headers).status == 403
    assert appliance.store.get(rec_id) is not None
    headers = {"X-CSRF-Token": c.csrf_token()}
    resp = c.request("DELETE", f"/api/v1/recordings/{rec_id}", headers=headers)
    assert resp.status == 200 and appliance.store.get(rec_id) is None


def test_cross_origin_requests_refused(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    rec_id = fresh_recording(appliance)
    path = f"/recordings/{rec_id}/erase"
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://localhost:{appliance.port}"},
    ):
        assert c.post(path, {"confirm": "yes"}, headers=headers).status == 403
    resp = c.request(
        "POST",
        path,
        body=f"confirm=yes&csrf_token={c.csrf_token()}".encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": "http://evil.example/page",
        },
    )
    assert resp.status == 403
    assert appliance.store.get(rec_id) is not None
    # Without Origin or Referer (some clients), the token alone is enough.
    resp = c.request(
        "POST",
        path,
        body=f"confirm=yes&csrf_token={c.csrf_token()}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 303 and appliance.store.get(rec_id) is None


def test_get_changes_nothing(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    rec_id = fresh_recording(appliance)
    resp = c.get(f"/recordings/{rec_id}/erase?confirm=yes")
    assert resp.status == 200 and 'name="confirm" value="yes"' in resp.text
    assert appliance.store.get(rec_id) is not None
    assert c.get("/users?action=delete&username=supervisor").status == 200
    assert appliance.users.get("supervisor") is not None


# -- headers and errors ----------------------------------------------------------------------
def _assert_hardened(resp: Any, label: str) -> None:
    assert resp.header("Content-Security-Policy") == (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ), label
    assert resp.header("X-Content-Type-Options") == "nosniff", label
    assert resp.header("Referrer-Policy") == "same-origin", label
    assert resp.header("X-Frame-Options") == "DENY", label


def test_security_headers_everywhere(appliance: Appliance) -> None:
    c = appliance.client()
    anonymous = [c.get("/login"), c.get("/"), c.get("/nowhere"), c.get("/static/style.css")]
    anonymous.append(c.get("/api/v1/status"))
    c.login("admin")
    rec_id = appliance.store.page(0, 1)[0][0]["id"]
    personal = [
        c.get("/recordings"),
        c.get(f"/recordings/{rec_id}"),
        c.get(f"/recordings/{rec_id}/audio"),
        c.get(f"/recordings/{rec_id}/download"),
        c.get(f"/api/v1/recordings/{rec_id}"),
        c.get("/api/v1/recordings"),
        c.get("/status"),
        c.get("/account"),
        c.get("/recordings/nope"),
    ]
    for i, resp in enumerate(anonymous + personal):
        _assert_hardened(resp, str(i))
    for i, resp in enumerate(personal):
        assert "no-store" in (resp.header("Cache-Control") or ""), i
    assert "max-age" in (anonymous[3].header("Cache-Control") or "")
    assert anonymous[3].header("Content-Type") == "text/css; charset=utf-8"
    assert c.get("/static/status.js").status == 200


def test_error_pages_use_layout_without_traces(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")

    def broken(offset: int = 0, limit: int = 25) -> Any:
        raise RuntimeError("secret internals /var/lib/callrec")

    appliance.store.page = broken  # type: ignore[method-assign]
    resp = c.get("/recordings")
    assert resp.status == 500
    assert "Skip to main content" in resp.text and "Error 500" in resp.text
    assert "Traceback" not in resp.text and "secret internals" not in resp.text
    _assert_hardened(resp, "500")
    resp = c.get("/api/v1/recordings")
    assert resp.status == 500 and resp.json() == {"error": "internal error"}
    resp = c.get("/no/such/page")
    assert resp.status == 404 and 'id="main"' in resp.text
    resp = appliance.client().get("/no/such/page")
    assert resp.status == 404 and "Log out" not in resp.text


@pytest.mark.parametrize(
    "path",
    [
        "/recordings/../audio",
        "/recordings/%2e%2e/audio",
        "/recordings/%2e%2e",
        "/recordings/%2E%2E%2F%2E%2E%2Fusers.json/download",
        "/recordings/..%2f..%2fusers.json/download",
        "/recordings/20240501T090000Z-zzzzzzzz",
        "/recordings/20240501T090000Z-00000000/audio",
        "/recordings/20240501T090000Z-00000000.wav/download",
        "/recordings/%00/audio",
        "/api/v1/recordings/..%2f..%2fusers.json",
        "/api/v1/recordings/%2e%2e/audio",
        "/api/v1/recordings/20240501T090000Z-00000000",
        "/static/../users.json",
        "/static/%2e%2e%2fusers.json",
        "/static/..%2f..%2fapp.py",
        "/static/app.py",
    ],
)
def test_malformed_ids_and_paths_are_404(appliance: Appliance, path: str) -> None:
    c = appliance.client()
    c.login("admin")
    resp = c.get(path)
    assert resp.status == 404, resp.body[:200]
    if path.startswith("/api/"):
        assert "error" in resp.json()


def test_oversized_and_chunked_bodies(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    big = b"username=admin&password=" + b"x" * (70 * 1024)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = c.request("POST", "/login", body=big, headers=headers)
    assert resp.status == 413
    _assert_hardened(resp, "413")
    c.login("admin")
    resp = c.request(
        "DELETE", "/api/v1/recordings/20240501T090000Z-00000000", body=b"x" * (65 * 1024 + 1)
    )
    assert resp.status == 413 and resp.json() == {"error": "request body too large"}

    def chunks() -> Any:
        for _ in range(80):
            yield b"y" * 1024

    resp = c.request(
        "POST",
        "/users",
        body=chunks(),  # type: ignore[arg-type]
        headers={**headers, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert resp.status == 413


def test_api_method_and_path_errors_are_json(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    resp = c.request("POST", "/api/v1/status", headers={"X-CSRF-Token": c.csrf_token()})
    assert resp.status == 405 and resp.json() == {"error": "method not allowed"}
    assert resp.header("Content-Type").startswith("application/json")
    resp = c.get("/api/v1/nothing")
    assert resp.status == 404 and resp.json() == {"error": "not found"}
    for query in ("limit=201", "limit=0", "offset=-1", "offset=x", "limit=1e3"):
        resp = c.get(f"/api/v1/recordings?{query}")
        assert resp.status == 400 and "error" in resp.json(), query
    assert c.get("/recordings?page=0").status == 400
    assert c.get("/recordings?page=abc").status == 400


def test_unreadable_form_input_is_400(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    token = c.cookies["callrec_form"]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://127.0.0.1:{appliance.port}",
    }
    body = b"username=%ff%fe&password=x&csrf_token=" + token.encode()
    assert c.request("POST", "/login", body=body, headers=headers).status == 400
    headers["Content-Type"] = "multipart/form-data; boundary=XX"
    body = b'--XX\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode()
    resp = c.request("POST", "/login", body=body + b"\r\n--XX\r\nbroken", headers=headers)
    assert resp.status == 400
