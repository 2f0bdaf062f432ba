"""Logging in over HTTPS in a real browser (Debian's Chromium via Playwright).

The browser is told to accept the self-signed certificate only after the test has checked
that the certificate the server presents is the configured one (its SHA-256 fingerprint), as
a person is asked to do with the fingerprint on the console or the status page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_support import TlsAppliance, served_fingerprint, start_tls_appliance
from webtest_support import PASSWORD

from callrec.tls import fingerprint

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[TlsAppliance]:
    yield from start_tls_appliance(tmp_path)


def test_login_over_https_after_checking_the_fingerprint(box: TlsAppliance) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run ./install.sh --dev --with-tests")
    from playwright.sync_api import sync_playwright

    presented, _ = served_fingerprint(box.tls_port)
    assert presented == fingerprint(box.cert_file) == box.transport.fingerprint
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(ignore_https_errors=True)  # fingerprint checked above
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text)
                    if msg.type in ("error", "warning") else None)
            page.set_default_timeout(10000)
            # The address people type (plain HTTP) leads to HTTPS, path and query kept.
            response = page.goto(f"http://127.0.0.1:{box.port}/recordings?page=1")
            assert page.url == f"https://127.0.0.1:{box.tls_port}/login?next=/recordings%3Fpage%3D1"
            assert response is not None
            details = response.security_details()
            assert details is not None and details.get("protocol") in ("TLS 1.3", "TLS 1.2")
            assert details.get("subjectName") == "callrec-test"
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()  # CSRF and origin checks pass
            page.wait_for_url(f"https://127.0.0.1:{box.tls_port}/recordings?page=1")
            assert page.get_by_role("heading", level=1).inner_text() == "Recordings"
            cookies = context.cookies()
            assert cookies and all(c["secure"] and c["httpOnly"] for c in cookies)
            page.goto(f"https://127.0.0.1:{box.tls_port}/status")
            assert page.locator('[data-field="fingerprint"]').inner_text() == presented
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url("**/login")
        finally:
            browser.close()
    assert problems == []
