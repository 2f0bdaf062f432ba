"""The UI in a real browser (Debian's Chromium via Playwright): CSP, live status, audio, erase."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from webtest_support import PASSWORD, Appliance, add_recording, add_stereo_recording

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page(appliance: Appliance) -> Iterator[tuple[Any, list[str]]]:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run ./install.sh --dev --with-tests")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(base_url=f"http://127.0.0.1:{appliance.port}")
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.set_default_timeout(5000)
            yield page, problems
        finally:
            browser.close()


def test_login_status_audio_and_erase_in_a_browser(
    appliance: Appliance, browser_page: tuple[Any, list[str]]
) -> None:
    from playwright.sync_api import expect

    page, problems = browser_page
    page.goto("/recordings")
    assert page.url.endswith("/login?next=/recordings")
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/recordings")
    assert page.get_by_role("heading", level=1).inner_text() == "Recordings"

    # The player loads the WAV's metadata through the audio route.
    page.locator("table.recordings a").first.click()
    page.wait_for_selector("audio")
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    assert page.evaluate("document.querySelector('audio').duration") == pytest.approx(0.5)

    # Erase: confirmation page, then the list says so.
    page.get_by_role("link", name="Erase…").click()
    page.get_by_role("button", name="Erase for good").click()
    page.wait_for_url("**/recordings")
    assert "Recording erased" in page.locator("p.flash").inner_text()
    assert appliance.store.count() == 4

    # Live status: status.js (allowed by the CSP) picks up a change without a reload.
    page.goto("/status")
    assert page.locator('[data-field="state"]').inner_text() == "Idle"
    appliance.status.update(
        state="recording",
        recording=True,
        call={"direction": "out", "answered": True},
        faults=[{"part": "audio", "name": "line audio device", "detail": "device gone"}],
    )
    expect(page.locator('[data-field="state"]')).to_have_text("Recording", timeout=5000)
    assert page.locator('[data-field="call"]').inner_text() == "Outgoing, answered"
    assert page.locator('[data-field="recording"]').inner_text() == "On"
    assert page.locator('[data-field="faults"] li').inner_text() == (
        "line audio device: device gone"
    )
    assert page.locator('[data-field="no-faults"]').is_hidden()
    assert page.locator('[data-field="clock_warning"]').is_hidden()  # nothing said yet
    appliance.status.update(clock={"synchronised": False, "source": "NTP (kernel clock state)"})
    expect(page.locator('[data-field="clock"]')).to_have_text(
        "NOT synchronised (NTP (kernel clock state))", timeout=5000)
    assert page.locator('[data-field="clock_warning"]').is_visible()
    appliance.status.update(clock={"synchronised": True, "source": "NTP (systemd-timesyncd)"})
    expect(page.locator('[data-field="clock_warning"]')).to_be_hidden(timeout=5000)

    # Logging out from the header ends the session; polling then stops and says so.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    assert problems == []


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("audio_format", ["compact", "lossless"])
def test_the_browser_plays_every_stored_format(
    appliance: Appliance, browser_page: tuple[Any, list[str]], audio_format: str,
    channels: int
) -> None:
    """Whatever the transcoder stores (Ogg/Opus, FLAC; one channel, or two for a SIP call:
    Opus as two mono streams) plays in Chromium to its end, with the recording's duration."""
    from callrec.transcoder import Transcoder

    started = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    if channels == 1:
        rec_id = add_recording(appliance.store, started, seconds=1.5)
    else:
        rec_id = add_stereo_recording(appliance.store, started, seconds=1.5)
    tc = Transcoder(appliance.store, audio_format)
    tc.start()
    assert tc.wait_idle(60) and rec_id not in tc.failed
    tc.stop()
    stored = appliance.store.get(rec_id)
    assert stored is not None
    assert stored["audio"]["format"] == {"compact": "opus", "lossless": "flac"}[audio_format]
    page, problems = browser_page
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/recordings")
    page.goto(f"/recordings/{rec_id}")
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    duration = page.evaluate("document.querySelector('audio').duration")
    assert duration == pytest.approx(1.5, abs=0.01)
    played = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const a = document.querySelector('audio');
            a.muted = true;
            a.addEventListener('ended', () => resolve(a.currentTime), {once: true});
            a.addEventListener('error', () => reject(a.error.message), {once: true});
            a.play().catch(reject);
        })""")
    assert played == pytest.approx(1.5, abs=0.05)
    assert problems == []
