"""Pure pieces of the web layer, tested without HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import bottle
import pytest
from webtest_support import FakeClock

from callrec_web.access import Guard
from callrec_web.linestatus import sanitize, snapshot
from callrec_web.permissions import ROLE_PERMISSIONS, allowed, may_grant
from callrec_web.ratelimit import LoginThrottle
from callrec_web.security import safe_next, same_origin, with_security_headers
from callrec_web.sessions import SessionStore
from callrec_web.setup_code import FirstStartCode
from callrec_web.users import UserError, UserStore, UserStoreCorrupt
from callrec_web.views import Views, duration, local_time

GOOD = "a long enough pass"


# -- users -----------------------------------------------------------------------------------
def test_password_is_stored_as_scrypt_with_parameters(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add_user("alice", GOOD, ["supervisor"])
    raw = (tmp_path / "users.json").read_text()
    assert GOOD not in raw
    record = json.loads(raw)["users"]["alice"]["password"]
    assert record["alg"] == "scrypt"
    # OWASP's 8 MiB setting: N=2^13, r=8, p=10.
    assert (record["n"], record["r"], record["p"]) == (2**13, 8, 10)
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0
    assert users.verify("alice", GOOD) is not None
    assert users.verify("alice", GOOD + "x") is None
    assert users.verify("bob", GOOD) is None


def _scrypt_record(password: str, n: int, r: int, p: int) -> dict[str, object]:
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return {"alg": "scrypt", "n": n, "r": r, "p": p,
            "salt": base64.b64encode(salt).decode(), "hash": base64.b64encode(key).decode()}


def _set_record(path: Path, name: str, record: dict[str, object]) -> None:
    doc = json.loads(path.read_text())
    doc["users"][name]["password"] = record
    path.write_text(json.dumps(doc))


def test_older_hash_parameters_are_raised_at_the_next_login(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add_user("alice", GOOD, ["supervisor"])
    _set_record(tmp_path / "users.json", "alice", _scrypt_record(GOOD, 2**14, 8, 1))
    assert users.verify("alice", GOOD + "x") is None  # a wrong password changes nothing
    assert json.loads((tmp_path / "users.json").read_text())["users"]["alice"]["password"]["p"] == 1
    assert users.verify("alice", GOOD) is not None
    record = json.loads((tmp_path / "users.json").read_text())["users"]["alice"]["password"]
    assert (record["n"], record["r"], record["p"]) == (2**13, 8, 10)
    assert users.verify("alice", GOOD) is not None


def test_tampered_hash_parameters_are_refused_not_computed(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add_user("alice", GOOD, ["supervisor"])
    greedy = _scrypt_record(GOOD, 2**10, 8, 1) | {"n": 2**20, "r": 32, "p": 16}
    _set_record(tmp_path / "users.json", "alice", greedy)
    assert users.verify("alice", GOOD) is None


def test_password_is_compared_in_unicode_normal_form(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    decomposed = "cafe\u0301 au lait noir"  # e + combining acute: how some keyboards type it
    users.add_user("alice", decomposed, ["supervisor"])
    assert users.verify("alice", "caf\u00e9 au lait noir") is not None
    assert users.verify("alice", decomposed) is not None


@pytest.mark.parametrize(
    ("name", "password", "roles", "code"),
    [
        ("alice", "short", ["admin"], "password_length"),
        ("alice", "x" * 129, ["admin"], "password_length"),
        ("alice", "alice" * 1, ["admin"], "password_length"),
        ("alicealice", "AliceAlice", ["admin"], "password_is_username"),
        ("Alice", GOOD, ["admin"], "username_invalid"),
        ("a", GOOD, ["admin"], "username_invalid"),
        ("9lives", GOOD, ["admin"], "username_invalid"),
        ("alice/../x", GOOD, ["admin"], "username_invalid"),
        ("alice", GOOD, ["root"], "role_invalid"),
        ("alice", GOOD, [], "role_missing"),
    ],
)
def test_policy_refusals(tmp_path: Path, name: str, password: str, roles: list[str], code: str):
    users = UserStore(tmp_path / "users.json")
    with pytest.raises(UserError) as err:
        users.add_user(name, password, roles)
    assert err.value.code == code
    assert not users.has_users()


def test_user_lifecycle_and_tokens(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add_user("alice", GOOD, ["supervisor", "privacy_officer"])
    with pytest.raises(UserError, match="exists"):
        users.add_user("alice", GOOD, ["admin"])
    assert users.get("alice").roles == {"supervisor", "privacy_officer"}  # type: ignore[union-attr]
    token = users.create_token("alice", "backup script")
    assert token not in (tmp_path / "users.json").read_text()
    owner = users.user_for_token(token)
    assert owner is not None and owner.name == "alice"
    assert users.user_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    token_id = users.get("alice").tokens[0].id  # type: ignore[union-attr]
    users.revoke_token("alice", token_id)
    assert users.user_for_token(token) is None
    users.set_password("alice", "another good one")
    assert users.verify("alice", GOOD) is None
    assert users.verify("alice", "another good one") is not None
    users.delete("alice")
    assert not users.has_users()
    with pytest.raises(UserError):
        users.delete("alice")


def test_first_user_only_once(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json")
    users.add_user("alice", GOOD, ["admin"], only_if_none=True)
    with pytest.raises(UserError) as err:
        users.add_user("bob", GOOD, ["admin"], only_if_none=True)
    assert err.value.code == "setup_done"


def test_two_writers_lose_nothing(tmp_path: Path) -> None:
    """The web process and the CLI each have their own UserStore on the same file."""
    path = tmp_path / "users.json"
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        store = UserStore(path)
        try:
            for i in range(4):
                store.add_user(f"{prefix}{i}", GOOD, ["technician"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("web", "cli")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(UserStore(path).list()) == 8


def test_corrupt_file_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(UserStoreCorrupt):
        UserStore(path).has_users()  # must not say "no users" and reopen setup


# -- permissions -----------------------------------------------------------------------------
def test_role_table() -> None:
    assert allowed(["admin"], "users.manage") and allowed(["admin"], "recordings.erase")
    assert allowed(["supervisor"], "recordings.listen")
    assert not allowed(["supervisor"], "recordings.erase")
    assert allowed(["privacy_officer"], "recordings.erase")
    assert not allowed(["technician"], "recordings.list")
    assert not allowed(["technician"], "recordings.listen")
    assert allowed(["technician", "supervisor"], "recordings.listen")
    assert not allowed(["nobody"], "status.view")
    with pytest.raises(ValueError):
        allowed(["admin"], "recordings.typo")
    assert set(ROLE_PERMISSIONS) == {"admin", "technician", "supervisor", "privacy_officer"}


def test_users_manage_cannot_escalate() -> None:
    assert may_grant(["technician"], ["technician"])
    assert not may_grant(["technician"], ["admin"])
    assert not may_grant(["technician"], ["supervisor"])
    assert may_grant(["admin"], ["privacy_officer", "technician"])


# -- sessions and throttle -------------------------------------------------------------------
def test_session_idle_and_absolute_timeout() -> None:
    clock = FakeClock()
    sessions = SessionStore(idle_s=60, max_s=300, clock=clock)
    s = sessions.create("alice")
    assert len(s.id) >= 43 and s.csrf != s.id
    clock.advance(59)
    assert sessions.get(s.id) is s
    clock.advance(59)
    assert sessions.get(s.id, touch=False) is s
    clock.advance(2)  # 61 s since the last touch
    assert sessions.get(s.id) is None
    s = sessions.create("alice")
    for _ in range(5):
        clock.advance(50)
        assert sessions.get(s.id) is s
    clock.advance(50)  # 300 s since creation
    assert sessions.get(s.id) is None


def test_destroy_user_keeps_one() -> None:
    sessions = SessionStore(60, 300, clock=FakeClock())
    a, b = sessions.create("alice"), sessions.create("alice")
    sessions.destroy_user("alice", keep=b.id)
    assert sessions.get(a.id) is None and sessions.get(b.id) is b


def test_throttle_backs_off_exponentially_up_to_a_ceiling() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    keys = ["ip:1.2.3.4", "user:alice"]
    for _ in range(4):
        throttle.failure(keys)
        assert throttle.retry_after(keys) == 0
    throttle.failure(keys)
    assert throttle.retry_after(keys) == 30
    assert throttle.retry_after(["user:bob"]) == 0
    delays = []
    for _ in range(8):
        clock.advance(throttle.retry_after(keys))
        throttle.failure(keys)
        delays.append(throttle.retry_after(keys))
    assert delays[:4] == [60, 120, 240, 480]
    assert max(delays) == 900
    throttle.success(keys)
    assert throttle.retry_after(keys) == 0


# -- security helpers ------------------------------------------------------------------------
def test_same_origin() -> None:
    env = {"HTTP_HOST": "callrec.local:8080", "wsgi.url_scheme": "http"}
    assert same_origin(env, https=False)
    assert same_origin({**env, "HTTP_ORIGIN": "http://callrec.local:8080"}, https=False)
    assert not same_origin({**env, "HTTP_ORIGIN": "http://evil.example"}, https=False)
    assert not same_origin({**env, "HTTP_ORIGIN": "null"}, https=False)
    assert not same_origin({**env, "HTTP_ORIGIN": "https://callrec.local:8080"}, https=False)
    assert not same_origin({**env, "HTTP_REFERER": "http://evil.example/x"}, https=False)
    assert same_origin({**env, "HTTP_REFERER": "http://callrec.local:8080/r"}, https=False)
    tls = {"HTTP_HOST": "callrec.local", "HTTP_ORIGIN": "https://callrec.local:443"}
    assert same_origin(tls, https=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/recordings/x", "/recordings/x"),
        ("/recordings?page=2", "/recordings?page=2"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/recordings/../users", "/"),
        (None, "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_security_headers_added_once() -> None:
    headers = with_security_headers([("Cache-Control", "public, max-age=60")])
    names = [n.lower() for n, _ in headers]
    assert names.count("cache-control") == 1
    assert "content-security-policy" in names and "x-frame-options" in names


# -- status ----------------------------------------------------------------------------------
def test_status_whitelist() -> None:
    now = datetime(2024, 5, 1, 10, 1, 15, tzinfo=UTC)
    snap = sanitize(
        {
            "state": "recording",
            "since": "2024-05-01T10:00:00+00:00",
            "recording": True,
            "call": {"direction": "in", "number": "+33123", "name": "X", "ring_count": 2},
            "faults": [{"part": "audio", "name": "line audio device", "detail": "gone"}],
            "caller_number": "+33123",
            "last_recording": "20240501T090000Z-0123abcd",
        },
        now,
    )
    assert "+33" not in json.dumps(snap) and "last_recording" not in snap
    assert snap["state_for_s"] == 75.0
    assert snap["call"]["ring_count"] == 2.0 and snap["call"]["duration_s"] is None
    assert snap["faults"][0]["detail"] == "gone"
    call = {"direction": "out", "started_at": "2024-05-01T10:00:05+00:00"}
    assert sanitize({"call": call}, now)["call"]["duration_s"] == 70.0


def test_status_sip_line_counts_only() -> None:
    """Of the SIP line only counts pass: no peer address, no number, no call id."""
    raw = {
        "line": "sip", "calls": 2, "recording": 1, "outcomes": {"recorded": 3, "busy": 1},
        "transport": {"received": 40, "sent": 38, "last_source": "192.0.2.7",
                      "dropped": {"stranger": 12, "rate": 0, "evil": "x"}},
        "relay": {"forwarded": 900, "prompt_packets": 50, "ignored": {"stranger": 4},
                  "remote": ["192.0.2.8", 4000]},
        "current": [{"call": "c7", "caller": "+33612345678"}],
    }
    sip = sanitize({"sip": raw})["sip"]
    assert sip == {
        "line": "sip", "calls": 2.0, "recording": 1.0,
        "outcomes": {"recorded": 3, "busy": 1},
        "messages": {"received": 40.0, "sent": 38.0, "dropped": {"stranger": 12, "rate": 0}},
        "media": {"forwarded": 900.0, "prompt_packets": 50.0, "ignored": {"stranger": 4}},
    }
    assert sanitize({})["sip"] is None and sanitize({"sip": "junk"})["sip"] is None


def test_status_when_daemon_fails() -> None:
    def broken() -> dict[str, object]:
        raise ConnectionRefusedError

    snap = snapshot(broken)
    assert snap["state"] == "unknown"
    assert snap["faults"][0]["code"] == "daemon_unreachable"


# -- first-start code ------------------------------------------------------------------------
def test_first_start_code(tmp_path: Path) -> None:
    clock = FakeClock()
    users = UserStore(tmp_path / "users.json")
    code_file = tmp_path / "run" / "setup-code"
    codes = FirstStartCode(users, code_file, ttl_s=60, clock=clock)
    first = codes()
    assert first and code_file.read_text().strip() == first
    assert codes() == first
    clock.advance(61)
    second = codes()
    assert second != first and code_file.read_text().strip() == second
    users.add_user("alice", GOOD, ["admin"])
    assert codes() is None and not code_file.exists()


# -- views -----------------------------------------------------------------------------------
def test_display_helpers_and_catalog() -> None:
    assert duration(42.4) == "0:42" and duration(3725) == "1:02:05" and duration("x") == ""
    assert local_time("not a date") == "" and local_time("2024-05-01T10:00:00Z")
    views = Views()
    assert views.text("recording_erased").startswith("Recording erased")
    assert views.text("too_many_attempts", minutes=3).count("3") == 1
    assert views.text("no-such-key") == "no-such-key"


def test_every_route_must_declare_a_permission() -> None:
    app = bottle.Bottle()
    app.route("/open", "GET", lambda: "x")
    app.route("/typo", "GET", lambda: "x", perm="recordings.lsit")
    app.route("/fine", "GET", lambda: "x", perm="recordings.list")
    with pytest.raises(ValueError, match="/open"):
        Guard.check_route(app.routes[0])
    with pytest.raises(ValueError, match="/typo"):
        Guard.check_route(app.routes[1])
    Guard.check_route(app.routes[2])
