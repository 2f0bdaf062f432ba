"""Settings > Backup and restore: who may, CSRF, the download, and a restore that shows what
it would change, changes nothing until confirmed, and then gives back the same file."""

from __future__ import annotations

import io
import re
import secrets
import zipfile
from pathlib import Path

import pytest
from webtest_support import Appliance, Client, Response

from callrec import config_backup as cb
from callrec.audit import open_audit
from callrec.config_store import ConfigStore
from callrec.privacy.donotrecord import DoNotRecord, sealer_for

PAGE = "/settings/backup"
PASS = "une phrase très secrète"  # not ASCII: the form's encoding must hold
ORIGINAL = ('# the office\'s settings\n[line]\nname = "accueil"\ncountry = "fr"\n'
            '[retention]\nmax_age_days = 90\n[controller]\nname = "Cabinet Dupont"\n')


@pytest.fixture
def app(appliance: Appliance, tmp_path: Path) -> Appliance:
    """The appliance with its configuration file, store and access log, as the daemon has."""
    path = tmp_path / "callrec.toml"
    path.write_text(ORIGINAL)
    appliance.ctx.audit = open_audit(appliance.ctx.config, appliance.store.keys)
    appliance.ctx.settings = ConfigStore(path, audit=appliance.ctx.audit)
    return appliance


def the_list(app: Appliance) -> DoNotRecord:
    config = app.ctx.config
    return DoNotRecord.load(config.privacy.do_not_record_path(config.data_dir),
                            sealer_for(app.store.keys))


def multipart(c: Client, path: str, fields: dict[str, str], archive: bytes | None,
              csrf: bool = True) -> Response:
    boundary = secrets.token_hex(12)
    if csrf:
        fields = {"csrf_token": c.csrf_token(PAGE), **fields}
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    if archive is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; '
                     f'filename="backup.cbk"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + archive + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return c.request("POST", path, body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Origin": f"http://127.0.0.1:{c.port}"})


def backup(c: Client, **fields: str) -> Response:
    return c.post(PAGE, {"include_list": "1", "passphrase": PASS, "confirm": PASS, **fields})


def actions(app: Appliance) -> list[str]:
    assert app.ctx.audit is not None
    return [e["action"] for e in app.ctx.audit.entries()]


def test_only_technicians_and_admins_get_in(app: Appliance) -> None:
    for role, allowed in (("tech", True), ("admin", True), ("supervisor", False),
                          ("privacy", False)):
        c = app.client()
        c.login(role)
        page = c.get(PAGE)
        assert page.status == (200 if allowed else 403), role
        if allowed:
            assert "<h1>Backup and restore</h1>" in page.text
            assert 'enctype="multipart/form-data"' in page.text
        else:
            assert backup(c).status == 403
            assert multipart(c, PAGE + "/restore", {}, b"x", csrf=False).status == 403
    anon = app.client()
    assert anon.get(PAGE).status == 303


def test_the_backup_needs_the_csrf_token(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    resp = c.post(PAGE, {"include_list": "1", "passphrase": PASS, "confirm": PASS,
                         "csrf_token": "A" * 43})
    assert resp.status == 403 and resp.header("Content-Disposition") is None
    assert multipart(c, PAGE + "/restore", {"csrf_token": "A" * 43}, b"x", csrf=False
                     ).status == 403


def test_the_download_is_an_encrypted_archive_with_a_neutral_name(app: Appliance) -> None:
    the_list(app).add("06 12 34 56 78", "number", "objection 2026-007")
    c = app.client()
    c.login("tech")
    resp = backup(c)
    assert resp.status == 200, resp.text
    assert resp.header("Content-Type") == "application/octet-stream"
    assert re.fullmatch(r'attachment; filename="callrec-config-\d{8}-\d{6}\.cbk"',
                        resp.header("Content-Disposition") or "")
    assert resp.header("Cache-Control") == "no-store"
    assert b"0612345678" not in resp.body and b"Dupont" not in resp.body
    got = cb.read(resp.body, PASS)
    assert got.config_text == ORIGINAL
    assert [(e.value, e.kind, e.reason) for e in got.do_not_record or ()] == [
        ("0612345678", "number", "objection 2026-007")]
    assert "settings.backup" in actions(app)


def test_without_the_list_the_backup_is_a_plain_zip(app: Appliance) -> None:
    c = app.client()
    c.login("admin")
    resp = c.post(PAGE, {"passphrase": "", "confirm": ""})
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(resp.body)) as zf:
        assert sorted(zf.namelist()) == ["callrec.toml", "manifest.json"]
        assert zf.read("callrec.toml").decode() == ORIGINAL


@pytest.mark.parametrize(("fields", "field", "text"), [
    ({"passphrase": "", "confirm": ""}, "bk-pass", "needs a passphrase"),
    ({"passphrase": "short", "confirm": "short"}, "bk-pass", "at least 12 characters"),
    ({"confirm": PASS + "x"}, "bk-confirm", "The two passphrases differ"),
])
def test_backup_errors_are_tied_to_their_field(app: Appliance, fields: dict[str, str],
                                               field: str, text: str) -> None:
    c = app.client()
    c.login("tech")
    resp = backup(c, **fields)
    assert resp.status == 400 and resp.header("Content-Disposition") is None
    assert text in resp.text
    assert f'id="{field}"' in resp.text and f'aria-describedby="{field}-error"' in resp.text
    assert f'id="{field}-error"' in resp.text


def test_round_trip_backup_change_restore_gives_the_same_file(app: Appliance) -> None:
    settings = app.ctx.settings
    assert settings is not None
    the_list(app).add("0612345678", "number", "objection")
    c = app.client()
    c.login("tech")
    archive = backup(c).body
    # Later: settings changed, the list lost an entry and gained one.
    changed = ORIGINAL.replace('"accueil"', '"standard"').replace("90", "30")
    settings.replace(changed + "[web]\nlanguage = \"fr\"\n", "tech")
    lst = the_list(app)
    lst.remove("0612345678")
    lst.add("0799999999", "number", "objection later")
    # Restore: the preview names keys and counts, and changes nothing yet.
    preview = multipart(c, PAGE + "/restore", {"passphrase": PASS}, archive)
    assert preview.status == 200, preview.text
    for key in ("line.name", "retention.max_age_days", "web.language"):
        assert f"<code>{key}</code>" in preview.text
    assert "3 settings differ" in preview.text
    assert "Entries to add: 1" in preview.text and "kept: 1" in preview.text
    assert "standard" not in preview.text and "accueil" not in preview.text  # no values
    assert settings.current_text().startswith(changed)
    assert not the_list(app).matches("0612345678")
    key = re.search(r'name="restore" value="([^"]+)"', preview.text)
    assert key
    done = c.post(PAGE + "/apply", {"restore": key.group(1)})
    assert done.status == 303 and done.header("Location") == f"{PAGE}?restored=at_restart"
    assert settings.current_text() == ORIGINAL  # byte for byte
    lst = the_list(app)
    assert lst.matches("0612345678") and lst.matches("0799999999")  # added, none removed
    page = c.get(done.header("Location") or "").text
    assert "The backup was restored." in page and "next start" in page
    assert {"settings.backup", "settings.restore"} <= set(actions(app))
    # The confirmation is used once.
    again = c.post(PAGE + "/apply", {"restore": key.group(1)})
    assert again.status == 409 and "expired or was already used" in again.text


def test_restore_refusals_change_nothing(app: Appliance) -> None:
    settings = app.ctx.settings
    assert settings is not None
    the_list(app).add("0612345678", "number", "objection")
    c = app.client()
    c.login("admin")
    archive = backup(c).body
    settings.replace(ORIGINAL.replace("90", "30"), "admin")
    before = settings.current_text()
    tampered = bytearray(archive)
    tampered[-20] ^= 1
    cases = [
        ({"passphrase": "wrong passphrase here"}, archive, 400, "Wrong passphrase"),
        ({}, archive, 400, "This backup is encrypted: type its passphrase"),
        ({"passphrase": PASS}, bytes(tampered), 400, "damaged, incomplete or was changed"),
        ({"passphrase": PASS}, archive[: len(archive) // 2], 400, "damaged"),
        ({}, b"%PDF-1.4 someone else's file", 400, "not a callrec configuration backup"),
        ({}, None, 400, "Choose the backup file"),
    ]
    for fields, blob, status, text in cases:
        resp = multipart(c, PAGE + "/restore", fields, blob)
        assert resp.status == status, (text, resp.status)
        assert text in resp.text and "Nothing was changed on this box." in resp.text
        assert 'name="restore"' not in resp.text
    assert settings.current_text() == before
    assert [e.value for e in the_list(app).entries()] == ["0612345678"]
    assert actions(app).count("settings.restore_refused") == len(cases)


def test_an_invalid_configuration_is_refused_with_its_key(app: Appliance) -> None:
    blob = io.BytesIO()
    bad = b'[line]\ncountry = "xx"\n'
    import hashlib
    import json
    manifest = {"format": cb.FORMAT, "format_version": 1, "config_version": 1,
                "members": {"callrec.toml": {"size": len(bad),
                                             "sha256": hashlib.sha256(bad).hexdigest()}}}
    with zipfile.ZipFile(blob, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("callrec.toml", bad)
    c = app.client()
    c.login("tech")
    resp = multipart(c, PAGE + "/restore", {}, blob.getvalue())
    assert resp.status == 400 and "is not valid" in resp.text and "line.country" in resp.text


def test_a_file_over_the_limit_is_refused_before_it_is_read(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    resp = multipart(c, PAGE + "/restore", {}, b"\0" * (70 * 1024))
    assert resp.status == 413


def test_a_change_between_preview_and_confirmation_is_refused(app: Appliance) -> None:
    settings = app.ctx.settings
    assert settings is not None
    c = app.client()
    c.login("tech")
    archive = c.post(PAGE, {"passphrase": "", "confirm": ""}).body
    settings.replace(ORIGINAL.replace("90", "60"), "tech")
    preview = multipart(c, PAGE + "/restore", {}, archive)
    key = re.search(r'name="restore" value="([^"]+)"', preview.text)
    assert key
    settings.replace(ORIGINAL.replace("90", "45"), "someone else")
    resp = c.post(PAGE + "/apply", {"restore": key.group(1)})
    assert resp.status == 409 and "changed since the preview" in resp.text
    assert "max_age_days = 45" in settings.current_text()


def test_another_session_cannot_confirm_my_preview(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    archive = c.post(PAGE, {"passphrase": "", "confirm": ""}).body
    preview = multipart(c, PAGE + "/restore", {}, archive)
    key = re.search(r'name="restore" value="([^"]+)"', preview.text)
    assert key
    other = app.client()
    other.login("admin")
    assert other.post(PAGE + "/apply", {"restore": key.group(1)}).status == 409


def test_the_page_is_in_french_when_asked(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    page = c.get(PAGE + "?lang=fr")
    assert page.status == 200 and "Sauvegarde et restauration" in page.text
    resp = c.post(PAGE, {"passphrase": "court", "confirm": "court"})
    assert "au moins 12 caractères" in resp.text
