"""People: the whole request workflow for a number with recordings on two volumes, through the
web UI and the JSON API, and who may do it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import wave
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from webtest_support import PASSWORD, ROLE_USERS, Appliance, Client, FakeClock

from callrec.audit import open_audit
from callrec.config import Config, ControllerConfig, StorageConfig, WebConfig
from callrec.privacy.donotrecord import DoNotRecord, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key
from callrec.privacy.requests import RequestBook
from callrec.storage.open_store import open_keys
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.storage.retention import RecordingFacts
from callrec_web.app import make_app
from callrec_web.context import WebContext
from callrec_web.server import WebServer
from callrec_web.users import UserStore

NUMBER = "06 12 34 56 78"
FORMS = ["0612345678", "+33612345678", "33612345678", "0033612345678", "06 12 34 56 78",
         "+33 6 12 34 56 78", "612345678"]
OTHER = "0145678912"


def _pcm(seed: int, seconds: float = 0.5) -> bytes:
    """Audio that appears nowhere else (a byte search for it means something)."""
    return bytes((i * 7 + seed * 131 + (i >> 5)) % 251 for i in range(int(16000 * seconds)))


def _record(store: RecordingStore, volume: str, pcm: bytes, *, status: str = "complete",
            **fields: Any) -> str:
    rec_id = new_recording_id(datetime.now(UTC))
    meta = {"id": rec_id, "direction": "in", "line": "line1", "status": "recording",
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"), **fields}
    writer = store.open_writer(meta, 8000, volume=volume)
    writer.write(pcm)
    if status == "recording":  # a power cut mid-call: recovered as "interrupted"
        writer.sync()
        writer.abort()  # type: ignore[attr-defined]
        return rec_id
    writer.close()
    store.add({**meta, "volume": volume, "status": status, "duration_s": 0.5,
               "audio": store.audio_info(writer, 8000)})
    return rec_id


class World:
    def __init__(self, app: Appliance, config: Config, pcm: dict[str, bytes],
                 ids: dict[str, str]) -> None:
        self.app, self.config, self.pcm, self.ids = app, config, pcm, ids

    def client(self, role: str) -> Client:
        c = self.app.client()
        c.login(role)
        return c

    def entries(self) -> list[dict[str, Any]]:
        assert self.app.ctx.audit is not None
        return list(self.app.ctx.audit.entries())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    data = tmp_path / "data"
    config = Config(storage=StorageConfig(data_dir=str(data),
                                          usb_mount_point=str(tmp_path / "usb")),
                    web=WebConfig(page_size=25),
                    controller=ControllerConfig(name="Cabinet Exemple", contact="dpo@example.fr"))
    store = RecordingStore(data, open_keys(config), usb_mount_point=tmp_path / "usb",
                           usb_available=lambda: True)
    pcm = {k: _pcm(i) for i, k in enumerate(["sd", "usb", "out", "interrupted", "other"])}
    ids = {
        "sd": _record(store, "sd", pcm["sd"], caller_number="0612345678", caller_name="DUPONT"),
        "usb": _record(store, "usb", pcm["usb"], caller_number="+33 6 12 34 56 78"),
        "out": _record(store, "sd", pcm["out"], direction="out", called_number="0033612345678"),
        "interrupted": _record(store, "usb", pcm["interrupted"], status="recording",
                               caller_number="0612345678"),
        "other": _record(store, "sd", pcm["other"], caller_number=OTHER),
    }
    store.close()  # as after the power cut: the next start recovers the interrupted call
    store = RecordingStore(data, open_keys(config), usb_mount_point=tmp_path / "usb",
                           usb_available=lambda: True)
    assert store.recover() == [ids["interrupted"]]
    users = UserStore(data / "users.json")
    for name, roles in ROLE_USERS.items():
        users.add_user(name, PASSWORD, roles)
    audit = open_audit(config, store.keys, clock_trusted=lambda: True)
    ctx = WebContext(config=config, store=store, users=users, status=lambda: {},
                     setup_code=lambda: None, audit=audit)
    clock = FakeClock()
    server = WebServer(make_app(ctx, clock=clock), "127.0.0.1", 0, threads=4,
                       poll_interval_s=0.02)
    server.start()
    try:
        yield World(Appliance(server, store, users, clock, ctx, {}, [None]), config, pcm, ids)
    finally:
        server.stop()
        store.close()


def _lookup(c: Client, number: str = NUMBER) -> str:
    resp = c.post("/subjects", {"number": number})
    assert resp.status == 303, resp.text
    return str(resp.header("Location")).rsplit("/", 1)[1]


def _wav_pcm(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.readframes(w.getnframes())


def test_the_whole_workflow_for_a_number_on_two_volumes(world: World) -> None:
    ids, pcm, store = world.ids, world.pcm, world.app.store
    mine = {ids[k] for k in ("sd", "usb", "out", "interrupted")}
    sup = world.client("supervisor")
    assert sup.get(f"/recordings/{ids['usb']}/audio").status == 200  # an access to report

    officer = world.client("privacy")
    subject = _lookup(officer, "+33 6 12 34 56 78")
    assert subject.startswith("p-") and _lookup(officer, "0033612345678") == subject
    page = officer.get(f"/subjects/{subject}")
    assert page.status == 200
    assert all(rec_id in page.text for rec_id in mine) and ids["other"] not in page.text
    assert "USB stick" in page.text and "Interrupted" in page.text
    # Each right within reach of the person's page: export, restrict, object, erase links.
    for action in ("export", "restrict", "object", "erase"):
        assert f'href="/subjects/{subject}/{action}"' in page.text
        assert officer.get(f"/subjects/{subject}/{action}").status == 200

    # -- access: a ZIP whose length is known in advance --------------------------------------
    resp = officer.post(f"/subjects/{subject}/export", {"reason": "request by letter"})
    assert resp.status == 200 and resp.header("Content-Type") == "application/zip"
    assert int(str(resp.header("Content-Length"))) == len(resp.body)
    archive = zipfile.ZipFile(io.BytesIO(resp.body))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert {f"recordings/{i}.wav" for i in mine} | {f"recordings/{i}.json" for i in mine} | {
        "information.html"} == names
    assert _wav_pcm(archive.read(f"recordings/{ids['usb']}.wav")) == pcm["usb"]
    assert _wav_pcm(archive.read(f"recordings/{ids['sd']}.wav")) == pcm["sd"]
    meta = json.loads(archive.read(f"recordings/{ids['sd']}.json"))
    assert meta["caller_number"] == "0612345678" and meta["caller_name"] == "DUPONT"
    assert "file" not in meta["audio"] and "encryption" not in meta["audio"]
    sheet = archive.read("information.html").decode()
    assert "Cabinet Exemple" in sheet and "dpo@example.fr" in sheet and "CNIL" in sheet
    assert "supervisor" in sheet and "recording.play" in sheet and ids["usb"] in sheet
    assert "180" in sheet and "Vos droits" in sheet and "Your rights" in sheet
    export = [e for e in world.entries() if e["action"] == "subject.export"]
    assert export and export[-1]["target"] == subject and export[-1]["actor"] == "privacy"

    # -- restriction: blocks the supervisor; the officer needs a reason; lifting is logged ---
    resp = officer.post(f"/subjects/{subject}/restrict",
                        [("reason", "contested"), ("recording", ids["sd"])])
    assert resp.status == 303
    doc = store.get(ids["sd"])
    assert doc is not None and doc["restricted"] is True
    assert doc["restriction"]["reason"] == "contested" and doc["restriction"]["by"] == "privacy"
    assert store.load_sidecar(ids["sd"])["restricted"] is True  # type: ignore[index]
    assert RecordingFacts.from_index_doc(doc).exempt  # retention keeps it
    for path in (f"/recordings/{ids['sd']}/audio", f"/recordings/{ids['sd']}/download",
                 f"/recordings/{ids['sd']}", f"/api/v1/recordings/{ids['sd']}",
                 f"/api/v1/recordings/{ids['sd']}/audio"):
        refused = sup.get(path)
        assert refused.status == 403, path
        assert "restricted" in refused.text.lower()
    listed = sup.get("/api/v1/recordings").json()["items"]
    row = next(r for r in listed if r["id"] == ids["sd"])
    assert row["restricted"] is True and "caller_number" not in row
    html_row = re.search(rf"<tr>((?:(?!</tr>).)*{ids['sd']}(?:(?!</tr>).)*)</tr>",
                         sup.get("/recordings").text, re.S)
    assert html_row and "Restricted" in html_row.group(1)
    assert "0612345678" not in html_row.group(1)
    assert sup.post(f"/subjects/{subject}/export", {"reason": "x"}).status == 403
    assert officer.get(f"/recordings/{ids['sd']}/audio").status == 403  # no reason
    assert officer.post(f"/subjects/{subject}/export", {}).status == 403  # no reason
    ok = officer.get(f"/recordings/{ids['sd']}/audio?reason=court%20order")
    assert ok.status == 200 and _wav_pcm(ok.body) == pcm["sd"]
    detail = officer.get(f"/recordings/{ids['sd']}")
    assert detail.status == 200 and 'name="reason"' in detail.text
    assert "/audio" not in detail.text  # no player until a reason is given
    detail = officer.get(f"/recordings/{ids['sd']}?reason=court%20order")
    assert "audio?reason=court%20order" in detail.text
    restricted_access = [e for e in world.entries()
                         if e["action"] == "recording.restricted_access"]
    assert restricted_access[-1]["target"] == ids["sd"]
    assert restricted_access[-1]["reason"] == "court order"
    assert officer.post(f"/recordings/{ids['sd']}/unrestrict", {"reason": "settled"}
                        ).status == 303
    assert not (store.get(ids["sd"]) or {}).get("restricted")
    lifted = [e for e in world.entries() if e["action"] == "recording.unrestrict"]
    assert lifted[-1]["target"] == ids["sd"] and lifted[-1]["reason"] == "settled"
    assert sup.get(f"/recordings/{ids['sd']}/audio").status == 200
    # ...and from the recording's own page.
    assert officer.post(f"/recordings/{ids['out']}/restrict", {"reason": "asked"}
                        ).status == 303
    assert (store.get(ids["out"]) or {}).get("restricted") is True
    assert officer.post(f"/recordings/{ids['out']}/unrestrict", {"reason": "done"}
                        ).status == 303

    # -- rectification: the change is logged with pseudonyms only ----------------------------
    form = officer.get(f"/subjects/{subject}/rectify/{ids['sd']}")
    assert form.status == 200 and 'value="DUPONT"' in form.text
    resp = officer.post(f"/subjects/{subject}/rectify/{ids['sd']}", {
        "caller_number": "0612345678", "caller_name": "DUPOND", "called_number": "",
        "notes": "name corrected at the person's request", "reason": "letter"})
    assert resp.status == 303
    assert (store.get(ids["sd"]) or {})["caller_name"] == "DUPOND"
    rectified = [e for e in world.entries() if e["action"] == "recording.rectify"][-1]
    assert rectified["details"]["fields"] == ["caller_name", "notes"]
    assert "DUPOND" not in json.dumps(rectified)

    # -- objection: the number lands on the do-not-record list -------------------------------
    assert officer.post(f"/subjects/{subject}/object", {"reason": "phone call"}).status == 303
    dnr = DoNotRecord.load(world.config.privacy.do_not_record_path(world.config.data_dir),
                           sealer_for(store.keys))
    assert dnr.matches("+33612345678") and not dnr.matches(OTHER)
    assert [e for e in world.entries() if e["action"] == "subject.object"][-1]["target"] == \
        subject

    # -- erasure: every volume, interrupted included; a receipt ------------------------------
    resp = officer.post(f"/subjects/{subject}/erase", {"confirm": "yes"})
    assert resp.status == 200, resp.text
    assert all(rec_id in resp.text for rec_id in mine)
    m = re.search(r"/subjects/requests/(R[0-9]{8}-[0-9a-f]{6})/receipt\?format=json", resp.text)
    assert m
    receipt = officer.get(f"/subjects/requests/{m.group(1)}/receipt?format=json").json()
    assert {r["id"] for r in receipt["erased"]} == mine and receipt["subject"] == subject
    assert {r["volume"] for r in receipt["erased"]} == {"sd", "usb"}
    # The HTML receipt keeps its look under the CSP: its one inline style, by hash.
    html = officer.get(f"/subjects/requests/{m.group(1)}/receipt")
    style = re.search(r"<style>(.*?)</style>", html.text, re.S)
    assert html.status == 200 and style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    csp = html.header("Content-Security-Policy") or ""
    assert f"style-src 'sha256-{digest}'" in csp and "frame-ancestors 'none'" in csp
    printable = officer.get(f"/subjects/requests/{m.group(1)}/receipt")
    assert printable.status == 200 and ids["usb"] in printable.text
    assert store.search_number("0612345678") == [] and store.get(ids["other"]) is not None
    assert all(not store.has_files(i) for i in mine)

    # The request register: every action recorded, closed, and the number gone from it.
    book = RequestBook.for_data_dir(world.config.data_dir, store.keys)
    kinds = {r.type for r in book.for_subject(subject)}
    assert kinds == {"access", "restriction", "rectification", "objection", "erasure"}
    assert all(r.number is None and not r.is_open for r in book.all())
    # The person's page now says there is nothing (the number must be typed again).
    assert officer.get(f"/subjects/{subject}").status == 404

    # -- afterwards, nothing on the box reveals the number or the audio ----------------------
    blobs = [p.read_bytes() for root in (world.config.data_dir, Path(
        world.config.storage.usb_mount_point)) for p in root.rglob("*") if p.is_file()]
    for form in FORMS:
        needle = form.encode()
        assert not any(needle in blob for blob in blobs), form
    for key in ("sd", "usb", "out", "interrupted"):
        for needle in (pcm[key][1000:1064], pcm[key][-64:]):
            assert not any(needle in blob for blob in blobs), key
    assert subject in "".join(json.dumps(e) for e in world.entries())


def test_requests_register_due_dates_and_overdue_flag(world: World) -> None:
    officer = world.client("privacy")
    subject = _lookup(officer)
    resp = officer.post(f"/subjects/{subject}/requests", {"type": "access",
                                                         "received": "2020-01-31"})
    assert resp.status == 303
    listing = officer.get("/subjects")
    assert "2020-02-29" in listing.text and "OVERDUE" in listing.text
    items = officer.get("/api/v1/subjects/requests").json()["items"]
    assert items[0]["overdue"] is True and items[0]["due"] == "2020-02-29"
    assert "number" not in items[0]
    # An open request keeps the number (sealed), so the page works without typing it again.
    book = RequestBook.for_data_dir(world.config.data_dir, world.app.store.keys)
    assert book.number_of(subject) == NUMBER
    raw = (world.config.data_dir / "privacy" / "requests.json").read_bytes()
    assert b"0612345678" not in raw and b"06 12 34 56 78" not in raw
    # The export answers (closes) it; the number is then dropped.
    assert officer.post(f"/subjects/{subject}/export", {}).status == 200
    (req,) = book.for_subject(subject)
    assert req.status == "done" and req.number is None and req.handled_by == "privacy"


def test_the_json_api(world: World) -> None:
    c = world.client("privacy")
    token = c.csrf_token("/subjects")
    headers = {"X-CSRF-Token": token, "Origin": f"http://127.0.0.1:{world.app.port}"}
    shown = c.post("/api/v1/subjects", {"number": "+33612345678"}, headers=headers).json()
    subject = shown["subject"]
    assert len(shown["recordings"]) == 4 and shown["on_do_not_record_list"] is False
    assert c.get(f"/api/v1/subjects/{subject}").json()["subject"] == subject
    resp = c.post(f"/api/v1/subjects/{subject}/restrict", {"reason": "api"}, headers=headers)
    assert len(resp.json()["restricted"]) == 4
    resp = c.post(f"/api/v1/subjects/{subject}/export", {"reason": "api export"},
                  headers=headers)
    assert resp.status == 200 and zipfile.ZipFile(io.BytesIO(resp.body)).testzip() is None
    rec = world.ids["usb"]
    resp = c.post(f"/api/v1/subjects/{subject}/rectify/{rec}", {"caller_name": "X Y"},
                  headers=headers)
    assert resp.json() == {"changed": ["caller_name"]}
    assert c.post(f"/api/v1/subjects/{subject}/erase", {}, headers=headers).status == 400
    receipt = c.post(f"/api/v1/subjects/{subject}/erase", {"confirm": "yes"},
                     headers=headers).json()
    assert len(receipt["erased"]) == 4


@pytest.mark.parametrize("role", ["supervisor", "tech"])
def test_only_the_privacy_officer_and_the_admin_reach_people(world: World, role: str) -> None:
    officer = world.client("privacy")
    subject = _lookup(officer)
    rec = world.ids["sd"]
    c = world.client(role)
    gets = ["/subjects", f"/subjects/{subject}", f"/subjects/{subject}/export",
            f"/subjects/{subject}/erase", f"/subjects/{subject}/object",
            f"/subjects/{subject}/restrict", f"/subjects/{subject}/rectify/{rec}",
            "/subjects/requests/R20240101-abcdef/receipt", "/api/v1/subjects/requests",
            f"/api/v1/subjects/{subject}"]
    for path in gets:
        assert c.get(path).status == 403, path
    posts = ["/subjects", f"/subjects/{subject}/requests", f"/subjects/{subject}/export",
             f"/subjects/{subject}/erase", f"/subjects/{subject}/object",
             f"/subjects/{subject}/restrict", f"/subjects/{subject}/rectify/{rec}",
             "/subjects/requests/R20240101-abcdef/close", f"/recordings/{rec}/restrict",
             f"/recordings/{rec}/unrestrict", "/api/v1/subjects",
             f"/api/v1/subjects/{subject}/requests", f"/api/v1/subjects/{subject}/export",
             f"/api/v1/subjects/{subject}/erase", f"/api/v1/subjects/{subject}/restrict",
             f"/api/v1/subjects/{subject}/object", f"/api/v1/subjects/{subject}/rectify/{rec}",
             f"/api/v1/recordings/{rec}/restrict", f"/api/v1/recordings/{rec}/unrestrict"]
    token = c.csrf_token("/account")
    for path in posts:
        resp = c.post(path, {"number": NUMBER, "confirm": "yes", "reason": "x",
                             "csrf_token": token},
                      headers={"X-CSRF-Token": token})
        assert resp.status == 403, path
    assert store_intact(world)
    admin = world.client("admin")
    assert admin.get("/subjects").status == 200
    assert "/subjects" not in c.get("/account").text
    assert 'href="/subjects"' in officer.get("/account").text


def store_intact(world: World) -> bool:
    docs = [world.app.store.get(i) for i in world.ids.values()]
    return all(doc is not None and not doc.get("restricted") for doc in docs)


def test_no_number_in_urls_or_the_access_log(world: World) -> None:
    officer = world.client("privacy")
    subject = _lookup(officer, "+33 6 12 34 56 78")
    page = officer.get(f"/subjects/{subject}")
    assert "+33 6 12 34 56 78" in page.text  # shown to the officer, in the page only
    key = pseudonym_key(world.app.store.keys, world.config.data_dir)
    assert Pseudonymizer(key)("0612345678") == subject
    log_text = "".join((world.app.ctx.audit.directory / n).read_text()  # type: ignore[union-attr]
                       for n in world.app.ctx.audit.files())  # type: ignore[union-attr]
    assert "612345678" not in log_text.replace(subject, "")
