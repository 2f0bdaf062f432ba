"""A new consent prompt from the web UI to the caller's ear, on the simulated appliance.

A technician uploads a spoken prompt (Ogg Vorbis, 22 kHz, as an office would send it) on
Settings > Announcements, makes it active, and the next call plays it: the far end hears the
converted prompt (correlation with the file the page previews) and the recording's proof
carries that version and its SHA-256.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import io
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from callrec_web.users import UserStore
from recfiles import sidecar
from support import need_tool

PAGE = "/settings/announcements"
PASSWORD = "correct horse battery staple"
FAST_RINGS = {"ring_on_s": 0.4, "ring_off_s": 1.0}


class Browser:
    """Just enough of a browser: cookies, the page's CSRF token, no redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def send(self, path: str, body: bytes | None = None,
             content_type: str = "") -> tuple[int, bytes, str]:
        headers = {"Origin": self.base}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read(), resp.headers.get("Location", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Location", "")

    def csrf(self, path: str) -> str:
        m = re.search(rb'name="csrf_token" value="([^"]+)"', self.send(path)[1])
        assert m, f"no form on {path}"
        return m.group(1).decode()

    def post(self, path: str, fields: dict[str, str], csrf_from: str) -> tuple[int, bytes, str]:
        from urllib.parse import urlencode

        data = {**fields, "csrf_token": self.csrf(csrf_from)}
        return self.send(path, urlencode(data).encode(), "application/x-www-form-urlencoded")

    def upload(self, path: str, fields: dict[str, str], filename: str,
               data: bytes) -> tuple[int, bytes, str]:
        boundary = uuid.uuid4().hex
        fields = {**fields, "csrf_token": self.csrf(PAGE)}
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items())
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; '
                 f'filename="{filename}"\r\nContent-Type: audio/ogg\r\n\r\n').encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        return self.send(path, body, f"multipart/form-data; boundary={boundary}")


def spoken_ogg(tmp_path: Path) -> bytes:
    """A French prompt spoken by espeak-ng (22.05 kHz), as Ogg Vorbis."""
    need_tool("espeak-ng")
    raw = tmp_path / "spoken.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-s", "150", "-w", str(raw),
                    "Bonjour. Cet appel est enregistré pour la qualité du service."],
                   check=True, capture_output=True)
    samples, rate = sf.read(raw)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def test_uploaded_prompt_is_played_and_proved(appliance: Appliance, media: dict[str, Path],
                                              tmp_path: Path) -> None:
    UserStore(appliance.config.data_dir / "users.json").add_user("tech", PASSWORD,
                                                                 ["technician"])
    web = Browser(appliance.base_url)
    status, _, _ = web.post("/login", {"username": "tech", "password": PASSWORD}, "/login")
    assert status == 303

    # The installer's prompt is version 1, active.
    status, page, _ = web.send(PAGE)
    assert status == 200 and b"Version 1 \xe2\x80\x94 active" in page

    status, body, where = web.upload(PAGE + "/upload", {"direction": "in", "language": "fr"},
                                     "Annonce accueil.ogg", spoken_ogg(tmp_path))
    assert status == 303, body.decode(errors="replace")[-2000:]
    assert where.endswith(PAGE + "#in-fr")
    status, stored, _ = web.send(PAGE + "/audio/in-fr-2")
    assert status == 200
    stored_sha = hashlib.sha256(stored).hexdigest()
    status, _, _ = web.post(PAGE + "/activate", {"version": "in-fr-2", "confirm": "yes"}, PAGE)
    assert status == 303

    # The daemon takes it on the idle line within a tick or two, and says so.
    deadline = time.monotonic() + 10
    while "incoming calls: in-fr-2" not in appliance.log_tail("daemon", 200):
        assert time.monotonic() < deadline, appliance.log_tail("daemon")
        time.sleep(0.1)

    heard = tmp_path / "heard.wav"
    reply = appliance.call(direction="in", number="0612345678", audio=str(media["speech"]),
                           rings=1, heard_path=str(heard), **FAST_RINGS)
    assert reply["answered"]
    status_now = appliance.wait_idle()
    assert status_now["last_call"]["outcome"] == "recorded"

    # The far end heard the new prompt, not the old one.
    (tmp_path / "stored.wav").write_bytes(stored)
    new_prompt, rate = read_wav(tmp_path / "stored.wav")
    heard_audio, _ = read_wav(heard)
    assert rate == 8000
    r_new, _ = best_match(new_prompt, heard_audio)
    r_old, _ = best_match(read_wav(media["prompt"])[0], heard_audio)
    print(f"new prompt r={r_new:.5f}, old prompt r={r_old:.3f}")
    assert r_new >= 0.99, r_new
    assert r_old < 0.5, r_old
    # Converted to the line's level: RMS near -20 dBFS, peaks under -3 dBFS.
    x = new_prompt / 32768
    assert -23 < 20 * np.log10(np.sqrt(np.mean(x**2))) < -17
    assert 20 * np.log10(np.max(np.abs(x))) <= -2.99

    # The recording's proof names the version and its SHA-256.
    ann = sidecar(appliance, status_now["last_recording"])["announcement"]
    assert ann["completed"] is True and ann["prompt"] == "in-fr-2"
    assert ann["sha256"] == stored_sha
    assert ann["versions"] == [{"version": "in-fr-2", "language": "fr", "sha256": stored_sha}]
    # Nothing of the upload's name on disk.
    assert not [p for p in appliance.config.data_dir.rglob("*") if "ccueil" in p.name]
