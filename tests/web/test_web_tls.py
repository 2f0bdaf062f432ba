"""HTTPS on the LAN (issue 7, item 3): the real WebServer serving the app over TLS with the
configured certificate, the plain port redirecting to it, Secure cookies, the origin check
over https, and no web UI at all (a page saying how to fix it) when the certificate is missing.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tls_support import (
    TlsAppliance,
    make_certificate,
    pinned_context,
    served_fingerprint,
    start_tls_appliance,
)
from webtest_support import Client

from callrec.config import Config, WebConfig
from callrec.tls import fingerprint, local_api
from callrec_web.transport import redirect_app, request_host


@pytest.fixture
def box(tmp_path: Path) -> Iterator[TlsAppliance]:
    yield from start_tls_appliance(tmp_path)


def _plain(port: int, method: str, target: str,
           headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, target, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


# --- the redirect, as a WSGI app -------------------------------------------------------------


def _call(app: Any, **environ: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", **environ}
    body = b"".join(app(env, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize(("host", "path", "query", "location"), [
    ("callrec.local:8080", "/recordings", "page=2&sort=old",
     "https://callrec.local:8443/recordings?page=2&sort=old"),
    ("192.168.1.20:8080", "/", "", "https://192.168.1.20:8443/"),
    ("CallRec.Local", "/login", "next=/status", "https://callrec.local:8443/login?next=/status"),
    ("[fe80::1]:8080", "/status", "", "https://[fe80::1]:8443/status"),
    # WSGI gives the path decoded as latin-1: it goes back percent-encoded, never raw.
    ("callrec", "/a b/\u00e9\r\n", "q=a b", "https://callrec:8443/a%20b/%E9%0D%0A?q=a%20b"),
])
def test_redirect_keeps_host_path_and_query(host: str, path: str, query: str,
                                            location: str) -> None:
    status, headers, body = _call(redirect_app(8443), HTTP_HOST=host, PATH_INFO=path,
                                  QUERY_STRING=query)
    assert status == "301 Moved Permanently"
    assert headers["Location"] == location
    assert location.replace("&", "&amp;").encode() in body  # the link for clients that stay
    assert headers["Cache-Control"] == "no-store"  # not cached: TLS can be turned off later
    assert "Strict-Transport-Security" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_redirect_other_methods_with_308_and_head_without_body() -> None:
    status, headers, _ = _call(redirect_app(8443), HTTP_HOST="box", REQUEST_METHOD="POST",
                               PATH_INFO="/login")
    assert status == "308 Permanent Redirect"
    assert headers["Location"] == "https://box:8443/login"
    status, headers, body = _call(redirect_app(443), HTTP_HOST="box:80", REQUEST_METHOD="HEAD")
    assert status == "301 Moved Permanently" and body == b""
    assert headers["Location"] == "https://box/"  # the default port is not written


@pytest.mark.parametrize("host", ["", "evil.example/x", "a b", "box:80:80", "<script>", "[zz]"])
def test_a_malformed_host_falls_back_to_the_bind_address_or_is_refused(host: str) -> None:
    assert request_host({"HTTP_HOST": host}) is None
    status, headers, _ = _call(redirect_app(8443, "10.0.0.5"), HTTP_HOST=host)
    assert headers["Location"] == "https://10.0.0.5:8443/"
    status, headers, _ = _call(redirect_app(8443, "0.0.0.0"), HTTP_HOST=host)
    assert status == "400 Bad Request" and "Location" not in headers


# --- the real servers ------------------------------------------------------------------------


def test_https_serves_login_with_the_configured_certificate(box: TlsAppliance) -> None:
    expected = fingerprint(box.cert_file)
    assert box.transport.fingerprint == expected
    seen, version = served_fingerprint(box.tls_port)
    assert seen == expected
    assert version in ("TLSv1.2", "TLSv1.3")
    resp = box.client().get("/login")  # verified against the certificate, name 127.0.0.1
    assert resp.status == 200 and 'name="csrf_token"' in resp.text
    assert resp.header("Strict-Transport-Security") is None  # self-signed: no HSTS


def test_tls_below_1_2_is_refused(box: TlsAppliance) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", box.tls_port), timeout=10) as raw, \
            pytest.raises((ssl.SSLError, ConnectionError)):
        old.wrap_socket(raw, server_hostname="127.0.0.1").close()
    # No compression, whatever the client asks.
    with socket.create_connection(("127.0.0.1", box.tls_port), timeout=10) as raw, \
            pinned_context(box.cert_file).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.compression() is None


def test_plain_http_only_redirects_to_https(box: TlsAppliance) -> None:
    resp = _plain(box.port, "GET", "/recordings/20240501T090000Z-0123abcd?page=2&lang=fr",
                  {"Host": f"127.0.0.1:{box.port}"})
    assert resp.status == 301
    assert resp.getheader("Location") == (
        f"https://127.0.0.1:{box.tls_port}/recordings/20240501T090000Z-0123abcd?page=2&lang=fr")
    assert resp.getheader("Set-Cookie") is None  # nothing of the app over plain HTTP
    resp = _plain(box.port, "GET", "/login", {"Host": f"callrec.local:{box.port}"})
    assert resp.getheader("Location") == f"https://callrec.local:{box.tls_port}/login"
    for path in ("/api/v1/status", "/static/style.css", "/privacy"):
        assert _plain(box.port, "GET", path).status == 301
    post = _plain(box.port, "POST", "/login", {"Content-Length": "0"})
    assert post.status == 308
    # The Location is where the app answers, with the same certificate.
    resp = box.client().get("/recordings/20240501T090000Z-0123abcd?page=2&lang=fr")
    assert resp.status == 303 and "/login?next=" in (resp.header("Location") or "")


def test_cookies_are_secure_and_the_origin_check_passes_over_https(box: TlsAppliance) -> None:
    client = box.client()
    client.get("/login")
    resp = client.post("/login", {"username": "admin", "password": "correct horse battery"})
    assert resp.status == 303, resp.text
    cookies = resp.headers.get_all("Set-Cookie") or []
    assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("__Host-") for c in cookies)  # Secure, Path=/, no Domain
    assert client.get("/recordings").status == 200
    # A state change from the https origin passes the CSRF/origin check...
    token = client.csrf_token("/users")
    ok = client.post("/logout", {"csrf_token": token})
    assert ok.status == 303
    # ...one claiming the plain-HTTP origin (another origin) is refused.
    client = box.client()
    client.login("admin")
    refused = client.post("/logout", {}, headers={"Origin": f"http://127.0.0.1:{box.port}"})
    assert refused.status == 403


def test_status_shows_the_fingerprint_to_compare(box: TlsAppliance) -> None:
    client = box.client()
    client.login("tech")
    page = client.get("/status").text
    assert box.transport.fingerprint and box.transport.fingerprint in page
    assert "Compare the fingerprint" in page
    assert f"https://127.0.0.1:{box.tls_port}/" in page
    api = client.get("/api/v1/status").json()
    assert api["web"] == {"url": f"https://127.0.0.1:{box.tls_port}/", "tls": True,
                          "fingerprint": box.transport.fingerprint, "warning": None}
    assert "web UI on https://127.0.0.1:" in box.transport.describe()
    assert box.transport.describe().endswith(f"certificate SHA-256 {box.transport.fingerprint}")


def test_without_a_certificate_no_web_ui_only_how_to_fix_it(tmp_path: Path) -> None:
    for box in start_tls_appliance(tmp_path, cert=False):
        assert box.transport.problem is not None
        assert "no certificate" in box.transport.problem
        assert "callrec tls generate" in box.transport.problem
        assert box.transport.https is False and box.transport.tls_port is None
        for method, path in (("GET", "/login"), ("GET", "/api/v1/status"), ("POST", "/login")):
            conn = http.client.HTTPConnection("127.0.0.1", box.port, timeout=10)
            conn.request(method, path, headers={"Content-Length": "0"})
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            assert resp.status == 503
            assert resp.getheader("Set-Cookie") is None
            assert "sudo /opt/callrec/bin/callrec tls generate" in body and "csrf_token" not in body
        assert "web UI OFF" in box.transport.describe()


def test_tls_off_on_a_lan_address_serves_http_with_a_warning(tmp_path: Path) -> None:
    from callrec_web.transport import WebTransport

    transport = WebTransport(WebConfig(host="192.0.2.1", tls="off"))
    assert not transport.tls and not transport.https and transport.problem is None
    assert transport.warning() and "unencrypted" in transport.warning()  # type: ignore[operator]
    assert WebTransport(WebConfig(host="127.0.0.1")).warning() is None


def test_the_cli_reaches_the_daemon_over_https_with_the_certificate_pinned(
    box: TlsAppliance,
) -> None:
    web = box.transport.web
    config = Config(web=WebConfig(host="0.0.0.0", port=box.port, tls_port=box.tls_port,
                                  tls_cert_file=web.tls_cert_file,
                                  tls_key_file=web.tls_key_file))
    base, context = local_api(config)
    assert base == f"https://127.0.0.1:{box.tls_port}" and context is not None
    import urllib.request

    with urllib.request.urlopen(base + "/login", timeout=10, context=context) as resp:
        assert resp.status == 200
    # Another certificate is not trusted.
    other, _ = make_certificate(box.cert_file.parent.parent / "other")
    stranger = ssl.create_default_context(cafile=str(other))
    stranger.check_hostname = False
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "/login", timeout=10, context=stranger)
    plain = Config(web=WebConfig(host="127.0.0.1", port=8080))
    assert local_api(plain) == ("http://127.0.0.1:8080", None)


def test_client_helper_defaults_to_http(box: TlsAppliance) -> None:
    assert Client(box.port).tls is None
