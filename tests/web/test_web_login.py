"""First-start setup, login, logout, session lifetime and login throttling, over real HTTP."""

from __future__ import annotations

import pytest
from webtest_support import PASSWORD, SETUP_CODE, Appliance, Client

DEFAULT_CREDENTIALS = [
    ("admin", "admin"),
    ("admin", "password"),
    ("admin", "callrec"),
    ("root", "root"),
    ("pi", "raspberry"),
    ("user", "user"),
]


def setup_form(code: str = SETUP_CODE, password: str = PASSWORD, confirm: str | None = None):
    return {
        "code": code,
        "username": "boss",
        "password": password,
        "confirm": password if confirm is None else confirm,
    }


# -- first start -----------------------------------------------------------------------------
def test_fresh_appliance_sends_everyone_to_setup(fresh: Appliance) -> None:
    c = fresh.client()
    for path in ("/", "/login"):
        resp = c.get(path)
        assert (resp.status, resp.header("Location")) == (303, "/setup")
    resp = c.get("/setup")
    assert resp.status == 200
    assert 'name="code"' in resp.text and 'autocomplete="new-password"' in resp.text
    assert c.get("/recordings").status == 303
    assert c.get("/api/v1/recordings").status == 401


def test_no_default_account_works(fresh: Appliance) -> None:
    c = fresh.client()
    c.get("/setup")
    for name, password in DEFAULT_CREDENTIALS[:4]:
        resp = c.post("/login", {"username": name, "password": password})
        assert resp.status == 401
    assert not fresh.users.has_users()


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (setup_form(code="WRONG-CODE-0000"), 403),
        (setup_form(code=""), 403),
        (setup_form(password="short"), 400),
        (setup_form(password="x" * 129), 400),
        (setup_form(confirm="something else entirely"), 400),
        ({**setup_form(), "username": "Bad Name"}, 400),
    ],
)
def test_setup_refuses_bad_input(fresh: Appliance, form: dict[str, str], status: int) -> None:
    c = fresh.client()
    c.get("/setup")
    resp = c.post("/setup", form)
    assert resp.status == status
    assert 'role="alert"' in resp.text
    assert not fresh.users.has_users()
    assert "callrec_session" not in c.cookies


def test_setup_creates_first_admin_then_closes(fresh: Appliance) -> None:
    c = fresh.client()
    c.get("/setup")
    # The code is accepted however it is typed: lower case, without dashes.
    resp = c.post("/setup", setup_form(code=SETUP_CODE.lower().replace("-", " ")))
    assert resp.status == 303
    assert "callrec_session" in c.cookies
    user = fresh.users.get("boss")
    assert user is not None and user.roles == {"admin"}
    assert c.get("/recordings").status == 200  # logged in as the new admin
    fresh.setup_code[0] = None  # what FirstStartCode returns once users exist
    anonymous = fresh.client()
    assert anonymous.get("/setup").status == 404
    assert anonymous.get("/").header("Location") == "/login"
    resp = anonymous.post("/setup", {**setup_form(), "username": "intruder"})
    assert resp.status == 404
    assert fresh.users.get("intruder") is None
    # Even with the old code still handed out, setup stays closed.
    fresh.setup_code[0] = SETUP_CODE
    assert anonymous.post("/setup", {**setup_form(), "username": "intruder"}).status == 404
    for name, password in DEFAULT_CREDENTIALS:
        resp = anonymous.post("/login", {"username": name, "password": password})
        assert resp.status in (401, 429)  # refused, then throttled: never logged in
        assert "callrec_session" not in anonymous.cookies


def test_setup_code_guessing_is_throttled(fresh: Appliance) -> None:
    c = fresh.client()
    c.get("/setup")
    for _ in range(5):
        assert c.post("/setup", setup_form(code="GUESS")).status == 403
    resp = c.post("/setup", setup_form())  # right code, but too late
    assert resp.status == 429 and resp.header("Retry-After")
    fresh.clock.advance(31)
    assert c.post("/setup", setup_form()).status == 303


# -- login and logout ------------------------------------------------------------------------
def test_login_page_and_wrong_password(appliance: Appliance) -> None:
    c = appliance.client()
    resp = c.get("/login")
    assert resp.status == 200 and 'autocomplete="current-password"' in resp.text
    resp = c.post("/login", {"username": "admin", "password": "wrong password!"})
    assert resp.status == 401
    assert "Wrong username or password" in resp.text
    assert "callrec_session" not in c.cookies


def test_login_post_needs_csrf_token(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    resp = c.post("/login", {"username": "admin", "password": PASSWORD}, csrf=False)
    assert resp.status == 403
    resp = c.post("/login", {"username": "admin", "password": PASSWORD, "csrf_token": "x" * 43})
    assert resp.status == 403
    assert "callrec_session" not in c.cookies


def test_login_renews_session_id(appliance: Appliance) -> None:
    c = appliance.client()
    c.cookies["callrec_session"] = "attacker-chosen-session-id"  # fixation attempt
    c.login("supervisor")
    first = c.cookies["callrec_session"]
    assert first != "attacker-chosen-session-id" and len(first) >= 43
    c.login("admin")
    second = c.cookies["callrec_session"]
    assert second != first
    old = Client(appliance.port, cookies={"callrec_session": first})
    assert old.get("/recordings").status == 303  # the old session is gone
    assert c.get("/users").status == 200


def test_login_redirects_to_next_but_only_locally(appliance: Appliance) -> None:
    c = appliance.client()
    resp = c.get("/status")
    assert resp.status == 303 and resp.header("Location") == "/login?next=/status"
    c.get("/login?next=/status")
    resp = c.post("/login?next=/status", {"username": "admin", "password": PASSWORD})
    assert resp.header("Location") == "/status"
    c = appliance.client()
    c.get("/login")
    resp = c.post("/login?next=//evil.example/", {"username": "admin", "password": PASSWORD})
    assert resp.header("Location") == "/"


def test_logout_destroys_session(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    sid = c.cookies["callrec_session"]
    assert c.request("GET", "/logout").status == 405  # no state change on GET
    assert c.get("/recordings").status == 200
    resp = c.post("/logout", {})
    assert (resp.status, resp.header("Location")) == (303, "/login")
    assert "callrec_session" not in c.cookies
    stolen = Client(appliance.port, cookies={"callrec_session": sid})
    assert stolen.get("/recordings").status == 303
    assert stolen.get("/api/v1/recordings").status == 401


def test_session_cookie_flags(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    resp = c.post("/login", {"username": "admin", "password": PASSWORD})
    cookie = next(v for v in resp.headers.get_all("Set-Cookie") if "callrec_session=" in v)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # ctx.https is False here


def test_idle_timeout(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    for _ in range(3):
        appliance.clock.advance(29 * 60)
        assert c.get("/recordings").status == 200  # activity keeps the session
    # Polling the status API is not activity: an unattended status page still times out.
    for _ in range(3):
        appliance.clock.advance(10 * 60)
        resp = c.get("/api/v1/status")
        if resp.status != 200:
            break
    assert resp.status == 401
    assert c.get("/recordings").status == 303


def test_absolute_timeout(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    for _ in range(11 * 3):
        appliance.clock.advance(20 * 60)
        assert c.get("/account").status == 200
    appliance.clock.advance(20 * 60)  # 11 h 20 min
    assert c.get("/account").status == 200
    appliance.clock.advance(40 * 60)  # 12 h since login, although active
    resp = c.get("/account")
    assert (resp.status, resp.header("Location")) == (303, "/login?next=/account")


# -- throttling ------------------------------------------------------------------------------
def test_login_throttled_per_username(appliance: Appliance) -> None:
    attacker = appliance.client()
    attacker.get("/login")
    for _ in range(5):
        resp = attacker.post("/login", {"username": "admin", "password": "guess guess guess"})
        assert resp.status == 401
    resp = attacker.post("/login", {"username": "admin", "password": PASSWORD})
    assert resp.status == 429
    assert int(resp.header("Retry-After") or 0) > 0
    assert "Too many attempts" in resp.text
    appliance.clock.advance(31)
    assert attacker.post("/login", {"username": "admin", "password": "x" * 10}).status == 401
    # The next failure doubles the wait.
    assert attacker.post("/login", {"username": "admin", "password": PASSWORD}).status == 429
    appliance.clock.advance(31)
    assert attacker.post("/login", {"username": "admin", "password": PASSWORD}).status == 429
    appliance.clock.advance(30)
    assert attacker.post("/login", {"username": "admin", "password": PASSWORD}).status == 303


def test_login_throttled_per_client_address(appliance: Appliance) -> None:
    c = appliance.client()
    c.get("/login")
    for i in range(5):
        resp = c.post("/login", {"username": f"nobody{i}", "password": "guess guess guess"})
        assert resp.status == 401
    assert c.post("/login", {"username": "supervisor", "password": PASSWORD}).status == 429
    appliance.clock.advance(31)
    assert c.post("/login", {"username": "supervisor", "password": PASSWORD}).status == 303


def test_password_change(appliance: Appliance) -> None:
    c, other_device = appliance.client(), appliance.client()
    c.login("supervisor")
    other_device.login("supervisor")
    old_sid = c.cookies["callrec_session"]
    new = "a brand new passphrase"
    form = {"action": "password", "current": "wrong one!!", "password": new, "confirm": new}
    assert c.post("/account", form).status == 400
    assert c.post("/account", {**form, "current": PASSWORD, "confirm": "nope"}).status == 400
    assert c.post("/account", {**form, "current": PASSWORD, "password": "short"}).status == 400
    resp = c.post("/account", {**form, "current": PASSWORD, "confirm": new})
    assert (resp.status, resp.header("Location")) == (303, "/account")
    assert c.cookies["callrec_session"] != old_sid
    assert "Password changed" in c.get("/account").text
    assert other_device.get("/account").status == 303  # logged out everywhere else
    assert appliance.users.verify("supervisor", new) is not None


def test_logs_hold_no_personal_data(appliance: Appliance, caplog: pytest.LogCaptureFixture):
    caplog.set_level("DEBUG")
    c = appliance.client()
    c.get("/login")
    c.post("/login", {"username": PASSWORD.replace(" ", ""), "password": PASSWORD})
    c.login("admin")
    rows = c.get("/api/v1/recordings").json()["items"]
    incoming = next(r["id"] for r in rows if r["direction"] == "in")
    c.get(f"/recordings/{incoming}")
    c.post(f"/recordings/{incoming}/erase", {"confirm": "yes"})
    text = caplog.text
    assert incoming in text  # ids are logged...
    for secret in (PASSWORD, PASSWORD.replace(" ", ""), "+33123456789", "DUPONT"):
        assert secret not in text  # ...numbers, names and passwords are not
