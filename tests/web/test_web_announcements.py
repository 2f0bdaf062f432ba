"""Settings > Announcements: upload in each format, refusals with their message, preview,
activation, permissions, CSRF, the access log. A real server, real conversion (child process)."""

from __future__ import annotations

import hashlib
import html
import io
import re
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from webtest_support import PASSWORD, ROLE_USERS, Appliance, Client, FakeClock, FakeSelfTest

from callrec.audit import AuditLog
from callrec.config import AnnouncementConfig, Config, StorageConfig
from callrec.prompt_library import PromptLibrary
from callrec.storage.open_store import open_store
from callrec_web.app import make_app
from callrec_web.context import WebContext
from callrec_web.server import WebServer
from callrec_web.users import UserStore

PAGE = "/settings/announcements"


def voice(seconds: float, rate: int, f0: float = 150.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 + 30 * np.sin(2 * np.pi * 0.7 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(5 * np.pi * t))
    return 0.25 * x / np.max(np.abs(x))


def encoded(fmt: str, subtype: str, seconds: float = 3.0, rate: int = 44100) -> bytes:
    buf = io.BytesIO()
    x = voice(seconds, rate)
    sf.write(buf, np.stack([x, x], axis=1), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def write_wav(path: Path, x: np.ndarray, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Appliance]:
    """The web UI over a data dir whose installer wrote prompts/fr.wav (as install.sh does)."""
    config = Config(
        announcement=AnnouncementConfig(directory=str(tmp_path / "prompts")),
        storage=StorageConfig(data_dir=str(tmp_path)),
    )
    write_wav(tmp_path / "prompts" / "fr.wav", voice(3.0, 8000, f0=200))
    store = open_store(config)
    users = UserStore(tmp_path / "users.json")
    for name, roles in ROLE_USERS.items():
        users.add_user(name, PASSWORD, roles)
    audit = AuditLog(tmp_path / "audit", None)
    ctx = WebContext(config=config, store=store, users=users, status=lambda: {},
                     setup_code=lambda: None, selftest=FakeSelfTest(), audit=audit)
    clock = FakeClock()
    server = WebServer(make_app(ctx, clock=clock), "127.0.0.1", 0, threads=4,
                       poll_interval_s=0.02)
    server.start()
    try:
        yield Appliance(server, store, users, clock, ctx, {}, [None])
    finally:
        server.stop()
        store.close()


def library(app: Appliance) -> PromptLibrary:
    return PromptLibrary(app.ctx.config.announcement)


def upload(c: Client, data: bytes, filename: str = "accueil.wav", direction: str = "in",
           language: str = "fr", csrf: str | None = None) -> tuple[int, str, str | None]:
    token = csrf if csrf is not None else c.csrf_token(PAGE)
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (("csrf_token", token), ("direction", direction),
                        ("language", language)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    resp = c.request("POST", PAGE + "/upload", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Origin": f"http://127.0.0.1:{c.port}"})
    return resp.status, resp.text, resp.header("Location")


def field_error(page: str, name: str) -> str:
    m = re.search(rf'<p class="errors field-error" id="{name}-error"[^>]*>([^<]*)</p>', page)
    assert m, page[-3000:]
    return html.unescape(m.group(1))


def test_the_installer_prompt_is_version_1_and_its_preview_is_the_file(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    page = c.get(PAGE)
    assert page.status == 200
    text = page.text
    assert 'id="in-fr"' in text and 'id="out-en"' in text
    assert "Version 1 — active" in text and "by the installer" in text
    assert 'src="/settings/announcements/audio/in-fr-1"' in text
    legacy = (Path(app.ctx.config.announcement.directory) / "fr.wav").read_bytes()
    assert hashlib.sha256(legacy).hexdigest() in text
    audio = c.get(PAGE + "/audio/in-fr-1")
    assert audio.status == 200 and audio.header("Content-Type") == "audio/wav"
    assert audio.body == legacy
    part = c.get(PAGE + "/audio/in-fr-1", headers={"Range": "bytes=44-143"})
    assert part.status == 206 and part.body == legacy[44:144]
    assert part.header("Content-Range") == f"bytes 44-143/{len(legacy)}"
    for bad in ("in-fr-9", "..%2Fprompts%2Ffr", "in-fr-1.wav"):
        assert c.get(PAGE + "/audio/" + bad).status == 404


@pytest.mark.parametrize(("fmt", "subtype", "name"), [
    ("WAV", "PCM_16", "accueil.wav"), ("FLAC", "PCM_16", "accueil.flac"),
    ("OGG", "VORBIS", "accueil.ogg"), ("OGG", "OPUS", "accueil.opus"),
    ("MP3", "MPEG_LAYER_III", "accueil.mp3")])
def test_upload_each_format_then_preview_and_activate(app: Appliance, fmt: str, subtype: str,
                                                      name: str) -> None:
    c = app.client()
    c.login("tech")
    rate = 48000 if subtype == "OPUS" else 44100
    data = encoded(fmt, subtype, rate=rate)
    status, text, location = upload(c, data, filename=f"../{name}", direction="out",
                                    language="en")
    assert status == 303, text
    assert location is not None and location.endswith(PAGE + "#out-en")
    lib = library(app)
    version = lib.version("out-en-1")
    assert version["uploaded_by"] == "tech" and version["label"] == "accueil"
    assert version["seconds"] == pytest.approx(3.0, abs=0.15)
    assert "out/en" not in lib.state()["active"]  # stored, not active
    assert "accueil" not in " ".join(p.name for p in lib.root.iterdir())  # no upload name
    page = c.get(PAGE).text
    assert "Version out-en-1 stored" in page
    # The preview serves the stored WAV; it decodes to the converted audio.
    preview = c.get(PAGE + "/audio/out-en-1")
    assert preview.status == 200
    assert hashlib.sha256(preview.body).hexdigest() == version["sha256"]
    with wave.open(io.BytesIO(preview.body), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        heard = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
    ref = voice(3.0, 8000)
    best = max(np.corrcoef(ref[: len(heard) - lag], heard[lag:])[0, 1] for lag in range(800))
    assert best > 0.9
    assert 20 * np.log10(np.sqrt(np.mean(heard**2))) == pytest.approx(-20, abs=1.5)
    # Make it active (confirmed).
    resp = c.post(PAGE + "/activate", {"version": "out-en-1", "confirm": "yes"})
    assert resp.status == 303
    active = lib.state()["active"]["out/en"]
    assert active["version"] == "out-en-1" and active["by"] == "tech"
    page = c.get(PAGE).text
    assert "Version out-en-1 is now active" in page
    assert re.search(r'id="v-out-en-1">Version 1 — active', page)


def test_refusals_say_why_next_to_the_field_and_keep_the_choices(app: Appliance) -> None:
    c = app.client()
    c.login("admin")
    cases = [
        (b"%PDF-1.4 not a sound" * 50, "is not audio that can be read"),
        (encoded("AIFF", "PCM_16"), "This audio format (AIFF) is not accepted"),
        (encoded("WAV", "PCM_16", seconds=1.0), "it must last at least 2 s"),
        # FLAC: under the server's 1 MiB backstop (web/callrec_web/server.py)
        (encoded("FLAC", "PCM_16", seconds=62.0, rate=8000), "it must last at most 60 s"),
    ]
    silent = io.BytesIO()
    sf.write(silent, np.zeros(8000 * 4), 8000, format="WAV")
    cases.append((silent.getvalue(), "The file is silent"))
    loud = io.BytesIO()
    sf.write(loud, np.clip(voice(4.0, 8000) * 12, -1, 1), 8000, format="WAV", subtype="PCM_16")
    cases.append((loud.getvalue(), "clipped at full scale"))
    for data, message in cases:
        status, text, _ = upload(c, data, direction="out", language="en")
        assert status == 400, message
        error = field_error(text, "audio")
        assert message in error, (message, error)
        assert 'aria-describedby="audio-help audio-error"' in text
        assert 'id="direction-out" name="direction" value="out" required checked' in text
    status, text, _ = upload(c, encoded("WAV", "PCM_16"), direction="sideways", language="de")
    assert status == 400
    assert "Choose the calls" in field_error(text, "direction")
    assert "Choose the language" in field_error(text, "language")
    assert library(app).state()["versions"].keys() == {"in-fr-1", "out-fr-1"}  # nothing added


def test_activation_needs_confirmation_and_an_existing_version(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    assert upload(c, encoded("WAV", "PCM_16"))[0] == 303
    resp = c.post(PAGE + "/activate", {"version": "in-fr-2"})
    assert resp.status == 400 and "Confirm that this version" in resp.text
    assert library(app).state()["active"]["in/fr"]["version"] == "in-fr-1"
    resp = c.post(PAGE + "/activate", {"version": "in-fr-7", "confirm": "yes"})
    assert resp.status == 404 and "This version does not exist" in resp.text


def test_only_technicians_and_administrators(app: Appliance) -> None:
    for name in ("supervisor", "privacy"):
        c = app.client()
        c.login(name)
        assert c.get(PAGE).status == 403
        assert c.get(PAGE + "/audio/in-fr-1").status == 403
        token = c.csrf_token("/account")
        assert upload(c, encoded("WAV", "PCM_16"), csrf=token)[0] == 403
        assert c.post(PAGE + "/activate", {"version": "in-fr-1", "confirm": "yes"},
                      csrf=False).status == 403
    anonymous = app.client()
    resp = anonymous.get(PAGE)
    assert resp.status == 303 and (resp.header("Location") or "").startswith("/login")
    assert library(app).state()["versions"] == {}  # nobody allowed has even looked


def test_csrf_is_required_for_upload_and_activation(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    status, _, _ = upload(c, encoded("WAV", "PCM_16"), csrf="A" * 43)
    assert status == 403
    assert upload(c, encoded("WAV", "PCM_16"))[0] == 303
    resp = c.post(PAGE + "/activate", {"version": "in-fr-2", "confirm": "yes",
                                       "csrf_token": "A" * 43})
    assert resp.status == 403
    assert library(app).state()["active"]["in/fr"]["version"] == "in-fr-1"


def test_body_limit_is_raised_for_the_upload_only(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    body = b"x" * (200 * 1024)  # over the forms' 64 KiB, under the server's backstop
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Origin": f"http://127.0.0.1:{c.port}"}
    assert c.request("POST", PAGE + "/activate", body=body, headers=headers).status == 413
    # A file of that size passes the size check of the upload (and then the CSRF check).
    wav = encoded("WAV", "PCM_16", seconds=1.2, rate=44100)
    assert len(wav) > 200 * 1024
    assert upload(c, wav, csrf="A" * 43)[0] == 403


def test_changes_are_in_the_access_log_without_the_file_name(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    assert upload(c, encoded("WAV", "PCM_16"), filename="Marie Dupont.wav")[0] == 303
    assert c.post(PAGE + "/activate", {"version": "in-fr-2", "confirm": "yes"}).status == 303
    audit = app.ctx.audit
    assert audit is not None
    entries = [e for e in audit.entries() if e["action"] == "config.change"]
    changes = [(e["actor"], e["details"]["change"], e["details"]["version"]) for e in entries]
    assert changes == [("tech", "announcement.upload", "in-fr-2"),
                       ("tech", "announcement.activate", "in-fr-2")]
    sha = library(app).version("in-fr-2")["sha256"]
    assert entries[1]["details"]["sha256"] == sha
    assert "Dupont" not in str(entries)


def test_french_page(app: Appliance) -> None:
    c = app.client()
    c.login("tech")
    page = c.get(PAGE + "?lang=fr").text
    assert "Appels entrants" in page and "Ajouter une version" in page
    assert "Rendre active" not in page  # only version 1, active: nothing to make active
    status, text, _ = upload(c, encoded("WAV", "PCM_16", seconds=1.0))
    assert status == 400 and "elle doit durer au moins 2 s" in field_error(text, "audio")
