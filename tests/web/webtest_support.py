"""Helpers for the web tests: a fake clock, a cookie-keeping HTTP client, WAV recordings."""

from __future__ import annotations

import http.client
import io
import re
import ssl
import wave
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import numpy as np

from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec_web.context import WebContext
from callrec_web.server import WebServer
from callrec_web.users import UserStore

SETUP_CODE = "ABCD-EFGH-JKMN"
PASSWORD = "correct horse battery"
ROLE_USERS = {
    "admin": ["admin"],
    "supervisor": ["supervisor"],
    "privacy": ["privacy_officer"],
    "tech": ["technician"],
}


class FakeClock:
    """Monotonic seconds that tests move forward by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSelfTest:
    """The daemon's self-test as the web layer sees it: run() gives a report, or raises
    LineBusy while `busy` (a call is in progress)."""

    def __init__(self) -> None:
        self.runs = 0
        self.busy = False
        self.statuses = {"board": "ok", "audio": "ok", "storage": "ok"}
        self._last: dict[str, Any] | None = self.report()

    def report(self) -> dict[str, Any]:
        from callrec.selftest import CheckResult, Report

        results = tuple(CheckResult(item, status, f"{item} detail {self.runs}",
                                    "" if status == "ok" else f"fix the {item}")
                        for item, status in self.statuses.items())
        return Report("2024-05-01T10:00:00+00:00", "2024-05-01T10:00:03+00:00", "daemon", "sim",
                      results).as_dict()

    def run(self) -> dict[str, Any]:
        from callrec.selftest import LineBusy

        if self.busy:
            raise LineBusy()
        self.runs += 1
        self._last = self.report()
        return self._last

    def last(self) -> dict[str, Any] | None:
        return self._last


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Client:
    """One browser: keeps cookies, follows no redirects, sends same-origin headers by default."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    origin: str | None = None  # None: same origin as the server
    tls: ssl.SSLContext | None = None  # HTTPS with this context (test_web_tls.py)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        cookies: bool = True,
        encode_chunked: bool = False,
    ) -> Response:
        conn = (http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.tls)
                if self.tls else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10))
        try:
            sent = dict(headers or {})
            if cookies and self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body=body, headers=sent, encode_chunked=encode_chunked)
            resp = conn.getresponse()
            data = resp.read()
            for raw in resp.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(raw)
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Response(resp.status, resp.headers, data)
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(
        self,
        path: str,
        data: dict[str, Any] | list[tuple[str, str]],
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Response:
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf and not any(k == "csrf_token" for k, _ in fields):
            fields.append(("csrf_token", self.csrf_token()))
        sent = {"Content-Type": "application/x-www-form-urlencoded"}
        sent["Origin"] = self.origin or f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        sent.update(headers or {})
        return self.request("POST", path, body=urlencode(fields).encode(), headers=sent)

    def csrf_token(self, page: str = "/account") -> str:
        """The CSRF token from a form on `page` (or where it redirects: login, setup)."""
        resp = self.get(page)
        for _ in range(3):
            if resp.status != 303:
                break
            resp = self.get(resp.header("Location") or "/")
        m = re.search(r'name="csrf_token" value="([^"]+)"', resp.text)
        assert m, f"no CSRF token on {page}"
        return m.group(1)

    def login(self, name: str, password: str = PASSWORD) -> Response:
        self.get("/login")
        resp = self.post("/login", {"username": name, "password": password})
        assert resp.status == 303, resp.text
        return resp


@dataclass
class Appliance:
    """A running web server over a temporary data dir."""

    server: WebServer
    store: RecordingStore
    users: UserStore
    clock: FakeClock
    ctx: WebContext
    status: dict[str, Any]
    setup_code: list[str | None]

    @property
    def port(self) -> int:
        return self.server.port

    def client(self) -> Client:
        return Client(self.port)


def ramp_pcm(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """8 kHz mono 16-bit audio with a ramp, so byte ranges are distinguishable."""
    return b"".join((i % 32768).to_bytes(2, "little") for i in range(int(seconds * rate)))


def expected_wav(pcm: bytes, rate: int = 8000) -> bytes:
    """The WAV file the UI serves for `pcm`: a plain 44-byte header, then the samples."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def add_recording(
    store: RecordingStore, started: datetime, direction: str = "in", seconds: float = 0.5,
    **extra: Any
) -> str:
    rec_id = new_recording_id(started)
    meta: dict[str, Any] = {
        "id": rec_id,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": (started + timedelta(seconds=42)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": 42.0,
        "direction": direction,
        "line": "line1",
        "caller_number": "+33123456789" if direction == "in" else None,
        "caller_name": "DUPONT J" if direction == "in" else None,
        "called_number": None if direction == "in" else "0102030405",
        "ring_count": 2,
        "end_reason": "hangup",
        "announcement": {
            "prompt": "fr",
            "sha256": "ab" * 32,
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "completed": True,
        },
        "status": "recording",
    }
    # Through the store's own writer: encrypted as the appliance writes it.
    writer = store.open_writer(meta, 8000)
    writer.write(ramp_pcm(seconds))
    writer.close()
    meta.update(audio=store.audio_info(writer, 8000), status="complete")
    meta.update(extra)
    store.add(meta)
    return rec_id


def add_stereo_recording(store: RecordingStore, started: datetime, seconds: float = 0.5,
                         **extra: Any) -> str:
    """A two-channel recording (a SIP call) as the recorder writes it: a ramp on channel 0
    (the office side), its negative on channel 1 (the remote party)."""
    left = (np.arange(int(seconds * 8000)) % 20000).astype(np.int16)
    frames = np.stack([left, -left], axis=1)
    rec_id = new_recording_id(started)
    meta: dict[str, Any] = {
        "id": rec_id, "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": (started + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "direction": "in", "line": "sip", "status": "recording",
        "audio": {"sample_rate": 8000, "channels": 2}, **extra,
    }
    writer = store.open_writer(meta, 8000, channels=2)
    writer.write(frames.astype("<i2").tobytes())
    writer.close()
    meta.update(audio=store.audio_info(writer, 8000, 2), status="complete",
                duration_s=frames.shape[0] / 8000)
    store.add(meta)
    return rec_id
