"""Settings > Diagnostics: who may download the bundle, CSRF, what is in it and what is not."""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile

from webtest_support import Appliance, Client

from callrec import logring
from callrec.config import Config, ControllerConfig, SipConfig

PAGE = "/settings/diagnostics"


def members(body: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def test_only_technicians_and_admins_get_in(appliance: Appliance) -> None:
    for role, allowed in (("tech", True), ("admin", True), ("supervisor", False),
                          ("privacy", False)):
        c = appliance.client()
        c.login(role)
        assert c.get(PAGE).status == (200 if allowed else 403), role
        resp = c.post(PAGE, {})
        assert resp.status == (200 if allowed else 403), role
    token = appliance.users.create_token("supervisor", "t")
    assert appliance.client().request("GET", "/api/v1/diagnostics", headers={
        "Authorization": f"Bearer {token}"}).status == 403


def test_the_download_needs_the_csrf_token(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("tech")
    resp = c.post(PAGE, {"csrf_token": "A" * 43})
    assert resp.status == 403 and resp.header("Content-Disposition") is None


def test_the_bundle_holds_what_support_needs_and_no_one(appliance: Appliance) -> None:
    appliance.ctx.config = Config(
        storage=appliance.ctx.config.storage,
        sip=SipConfig(trunk_username="office-account-42"),
        controller=ControllerConfig(name="Cabinet du Dr Martin", contact="06 11 22 33 44"))
    appliance.status["storage"] = {"text": "SD card: 12.0 GB free", "volumes": []}
    appliance.status["faults"] = [{"part": "sip", "name": "SIP line",
                                   "detail": "provider refused 0611223344"}]
    ring = logring.install()
    logging.getLogger("callrec.test").warning("caller 0611223344 was here")
    c = appliance.client()
    c.login("tech")
    page = c.get(PAGE)
    assert "<h1>Diagnostics</h1>" in page.text and "run 2024-05-01" in page.text
    resp = c.post(PAGE, {})
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/zip"
    assert re.fullmatch(r'attachment; filename="callrec-diagnostics-\d{8}-\d{6}\.zip"',
                        resp.header("Content-Disposition") or "")
    got = members(resp.body)
    assert set(got) >= {"README.txt", "versions.json", "status.json", "storage.json",
                        "selftest.json", "config.toml", "logs/daemon.log", "logs/install.log"}
    versions = json.loads(got["versions.json"])
    assert versions["board"]["mcu_firmware"] == "hat-1.2" and versions["libraries"]["cheroot"]
    assert json.loads(got["storage.json"])["text"] == "SD card: 12.0 GB free"
    assert json.loads(got["selftest.json"])["started_at"] == "2024-05-01T10:00:00+00:00"
    assert "caller [number removed] was here" in got["logs/daemon.log"]
    assert ring.lines()  # the ring is this process's
    everything = "".join(got.values())
    for secret in ("0611223344", "06 11 22 33 44", "office-account-42", "Martin",
                   "+33999999999", c.cookies.get("callrec_session", "no-session")):
        assert secret not in everything, secret
    csrf = c.csrf_token(PAGE)
    assert csrf not in everything


def test_the_api_gives_the_bundle_to_a_token(appliance: Appliance) -> None:
    token = appliance.users.create_token("tech", "diag")
    resp = appliance.client().request("GET", "/api/v1/diagnostics",
                                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200 and "config.toml" in members(resp.body)
    assert token not in "".join(members(resp.body).values())


def test_the_page_is_in_french_when_asked(appliance: Appliance) -> None:
    c: Client = appliance.client()
    c.login("admin")
    page = c.get(PAGE + "?lang=fr")
    assert "Télécharger le fichier de diagnostic" in page.text
