"""The access log from the web: what each action writes, and the viewer's rights and filters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from webtest_support import Appliance, Client

from callrec.audit import AuditError, AuditLog
from callrec.privacy.pseudonym import Pseudonymizer


@pytest.fixture
def logged(appliance: Appliance, tmp_path: Path) -> Appliance:
    """The appliance with an access log (the daemon gives it one; the fixture does not)."""
    appliance.ctx.audit = AuditLog(tmp_path / "audit", b"k" * 32, clock_trusted=lambda: True,
                                   pseudonymize=Pseudonymizer(b"p" * 32))
    return appliance


def entries(app: Appliance) -> list[dict[str, Any]]:
    assert app.ctx.audit is not None
    return list(app.ctx.audit.entries())


def newest_id(app: Appliance) -> str:
    return str(app.store.page(0, 1)[0][0]["id"])


def only(app: Appliance, action: str) -> dict[str, Any]:
    found = [e for e in entries(app) if e["action"] == action]
    assert len(found) == 1, found
    return found[0]


def test_a_login_and_a_failed_login_each_write_one_entry(logged: Appliance) -> None:
    c = logged.client()
    c.login("supervisor")
    entry = only(logged, "auth.login")
    assert (entry["actor"], entry["target"]) == ("supervisor", "supervisor")
    assert entry["details"]["ip"] == "127.0.0.1"

    other = logged.client()
    other.get("/login")
    assert other.post("/login", {"username": "admin", "password": "wrong one"}).status == 401
    # A name that is no account may be a password typed in the wrong field: not written.
    assert other.post("/login", {"username": "hunter2secret", "password": "x"}).status == 401
    failed = [e for e in entries(logged) if e["action"] == "auth.login_failed"]
    assert [(e["actor"], e["target"], e["details"]["account"]) for e in failed] == [
        ("anonymous", "admin", "known"), ("anonymous", "", "unknown")]
    assert "hunter2secret" not in (logged.ctx.audit.directory / logged.ctx.audit.files()[0]
                                   ).read_text()  # type: ignore[union-attr]

    c.post("/logout", {})
    assert only(logged, "auth.logout")["actor"] == "supervisor"


def test_playback_writes_one_entry_whatever_the_ranges(logged: Appliance) -> None:
    c = logged.client()
    c.login("supervisor")
    rec_id = newest_id(logged)
    path = f"/recordings/{rec_id}/audio"
    assert c.get(path, headers={"Range": "bytes=0-"}).status == 206  # the player starts
    for wanted in ("bytes=100-199", "bytes=2000-", "bytes=-10"):  # then seeks
        assert c.get(path, headers={"Range": wanted}).status == 206
    assert c.request("HEAD", path).status == 200
    entry = only(logged, "recording.play")
    assert (entry["actor"], entry["target"], entry["details"]["via"]) == (
        "supervisor", rec_id, "web")


def test_download_writes_one_entry(logged: Appliance) -> None:
    c = logged.client()
    c.login("privacy")
    rec_id = newest_id(logged)
    assert c.get(f"/recordings/{rec_id}/download").status == 200
    assert c.get(f"/recordings/{rec_id}/download", headers={"Range": "bytes=500-"}).status == 206
    entry = only(logged, "recording.download")
    assert (entry["actor"], entry["target"]) == ("privacy", rec_id)
    assert not [e for e in entries(logged) if e["action"] == "recording.play"]


def test_erase_writes_one_entry_with_its_reason(logged: Appliance) -> None:
    c = logged.client()
    c.login("privacy")
    rec_id = newest_id(logged)
    resp = c.post(f"/recordings/{rec_id}/erase",
                  {"confirm": "yes", "reason": "caller 06 12 34 56 78 asked for erasure"})
    assert resp.status == 303
    entry = only(logged, "recording.erase")
    assert (entry["actor"], entry["target"]) == ("privacy", rec_id)
    pseudo = Pseudonymizer(b"p" * 32)("0612345678")
    assert entry["reason"] == f"caller {pseudo} asked for erasure"  # no number in clear


def test_api_playback_and_delete_are_logged_as_the_token_owner(logged: Appliance) -> None:
    token = logged.users.create_token("privacy", "archiver")
    api = Client(logged.port)
    auth = {"Authorization": f"Bearer {token}"}
    rec_id = newest_id(logged)
    assert api.get(f"/api/v1/recordings/{rec_id}/audio", headers=auth).status == 200
    assert api.request("DELETE", f"/api/v1/recordings/{rec_id}", headers=auth).status == 200
    play, erase = only(logged, "recording.play"), only(logged, "recording.erase")
    for entry in (play, erase):
        assert entry["actor"] == "privacy" and entry["target"] == rec_id
        assert entry["details"] == {"via": "api", "auth": "token"}


def test_user_and_token_changes_are_logged(logged: Appliance) -> None:
    c = logged.client()
    c.login("admin")
    password = "another long password"
    resp = c.post("/users", [("action", "add"), ("username", "carol"), ("roles", "supervisor"),
                             ("password", password), ("confirm", password)])
    assert resp.status == 303
    assert c.post("/users", {"action": "delete", "username": "carol"}).status == 303
    assert c.post("/account", {"action": "token_create", "label": "nightly"}).status == 200
    token_id = logged.users.get("admin").tokens[0].id  # type: ignore[union-attr]
    assert c.post("/account", {"action": "token_revoke", "token_id": token_id}).status == 303
    added, removed = only(logged, "user.add"), only(logged, "user.remove")
    assert (added["actor"], added["target"], added["details"]["roles"]) == (
        "admin", "carol", ["supervisor"])
    assert (removed["actor"], removed["target"]) == ("admin", "carol")
    assert only(logged, "token.create")["details"]["token_id"] == token_id
    assert only(logged, "token.revoke")["details"]["token_id"] == token_id
    assert password not in str(entries(logged))


def test_the_viewer_is_for_the_privacy_officer_and_the_admin(logged: Appliance) -> None:
    for name, status in (("supervisor", 403), ("tech", 403), ("privacy", 200), ("admin", 200)):
        c = logged.client()
        c.login(name)
        assert c.get("/audit").status == status, name
        assert c.get("/api/v1/audit").status == status, name
        assert ('href="/audit"' in c.get("/account").text) is (status == 200)
    assert logged.client().get("/api/v1/audit").status == 401
    assert logged.client().get("/audit").status == 303  # to the login page


def test_the_viewer_filters_pages_and_shows_the_verification(logged: Appliance) -> None:
    sup = logged.client()
    sup.login("supervisor")
    rec_id = newest_id(logged)
    sup.get(f"/recordings/{rec_id}/audio")
    c = logged.client()
    c.login("privacy")
    page = c.get("/audit").text
    assert 'id="audit-verification"' in page and "Chain verified" in page
    assert "recording.play" in page and rec_id in page

    def seqs(query: str) -> list[int]:
        data = c.get(f"/api/v1/audit?{query}").json()
        return [e["seq"] for e in data["items"]]

    assert len(seqs("action=recording.play")) == 1
    assert len(seqs("action=auth.")) == 2  # the two logins
    assert len(seqs("actor=supervisor")) == 2
    assert seqs(f"target={rec_id}") == seqs("action=recording.play")
    assert seqs("since=2000-01-01&until=2000-12-31") == []
    everything = seqs("")
    assert everything == sorted(everything, reverse=True)
    assert seqs("limit=1&offset=1") == everything[1:2]
    assert c.get("/api/v1/audit?since=yesterday").status == 400
    filtered = c.get("/audit?actor=supervisor&action=recording.play").text
    assert len(re.findall(r"<tr>\s*<td>\d+</td>", filtered)) == 1
    data = c.get("/api/v1/audit?verify=1").json()
    assert data["verification"]["ok"] is True


def test_a_broken_chain_is_shown_at_the_top(logged: Appliance) -> None:
    c = logged.client()
    c.login("privacy")
    journal = logged.ctx.audit
    assert journal is not None
    path = journal.directory / journal.files()[0]
    path.write_text(path.read_text().replace('"actor":"privacy"', '"actor":"nobody"', 1))
    page = c.get("/audit").text
    assert 'role="alert"' in page and "tampered with or damaged at entry 1" in page


def test_the_number_of_a_subject_finds_its_pseudonymised_entries(logged: Appliance) -> None:
    journal = logged.ctx.audit
    assert journal is not None
    pseudo = Pseudonymizer(b"p" * 32)("+33 6 12 34 56 78")
    journal.record("system", "call.refused", pseudo, details={"line": "line1"})
    c = logged.client()
    c.login("privacy")
    data = c.get("/api/v1/audit?target=06%2012%2034%2056%2078").json()
    assert [e["target"] for e in data["items"]] == [pseudo]


def test_playback_is_refused_when_it_cannot_be_logged(
    logged: Appliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = logged.client()
    c.login("supervisor")

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise AuditError("the access log cannot be written: [Errno 28] No space left")

    monkeypatch.setattr(logged.ctx.audit, "record", disk_full)
    rec_id = newest_id(logged)
    assert c.get(f"/recordings/{rec_id}/audio").status == 500
    assert c.get(f"/recordings/{rec_id}/download").status == 500
    assert c.get(f"/recordings/{rec_id}").status == 200  # the rest of the UI still works
