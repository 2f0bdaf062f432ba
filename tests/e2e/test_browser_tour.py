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
import re
import struct
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from audiocheck import best_match, read_wav
from browsing import chromium_page, first_start
from callrec.sim.harness import Appliance
from recfiles import wait_stored_as

pytestmark = pytest.mark.browser

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


def restarted(appliance: Appliance, timeout_s: float = 30.0) -> None:
    """Wait for the daemon to have re-executed itself (its log says the web UI is up a second
    time), then for the board to be ready again."""
    deadline = time.monotonic() + timeout_s
    while appliance.logs["daemon"].read_text().count("callrec.daemon: web UI on ") < 2:
        assert time.monotonic() < deadline, "the daemon did not restart"
        time.sleep(0.1)
    appliance.wait_ready()


def test_selftest_export_settings_and_language(appliance_factory: Any, media: dict[str, Path],
                                               tmp_path: Path) -> None:
    appliance: Appliance = appliance_factory(audio_format="compact")
    appliance.start()
    appliance.call(direction="in", number=NUMBER, audio=str(media["speech"]), rings=2,
                   ring_on_s=0.4, ring_off_s=1.0, talk_s=4.0)
    rec_id = appliance.wait_idle()["last_recording"]
    wait_stored_as(appliance, rec_id, "opus")
    code = (Path(appliance.config.runtime_dir) / "setup-code").read_text().strip()
    camera = Camera(Path(os.environ.get("CALLREC_SCREENSHOTS") or tmp_path / "screenshots"))

    with chromium_page(appliance.base_url, timeout_ms=15000, viewport=LAPTOP,
                      accept_downloads=True) as (page, problems):
        page.goto("/")
        page.wait_for_url("**/setup")
        camera.shoot(page, "setup")
        first_start(page, code, "owner", PASSWORD)
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

        # Settings: the technician's pages. A retention change is saved to the file
        # (comments kept), then the recorder restarts on the idle line to apply it.
        page.goto("/settings")
        camera.shoot(page, "settings")
        page.goto("/settings/announcements")
        # The active prompt's preview loads in the browser: its length is the prompt's.
        page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
        prompt_s = page.evaluate("document.querySelector('audio').duration")
        assert prompt_s == pytest.approx(read_wav(media["prompt"])[0].size / 8000, abs=0.3)
        camera.shoot(page, "announcements")
        page.goto("/settings/storage")
        age = page.get_by_label("Maximum age (days)")
        assert age.input_value() == "180"
        age.fill("90")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url("**/settings/storage?saved=now")
        assert "Saved. The recorder restarts now" in page.get_by_role("status").inner_text()
        saved = tomllib.loads(appliance.config_path.read_text(encoding="utf-8"))
        assert saved["retention"]["max_age_days"] == 90
        assert saved["config_version"] == 2
        restarted(appliance)
        # Still logged in: the sessions were handed to the new process.
        page.goto("/settings/storage")
        assert page.url.endswith("/settings/storage")
        assert page.get_by_label("Maximum age (days)").input_value() == "90"

        # The language switch, on the phone's width: French from now on (a cookie).
        page.set_viewport_size(PHONE)
        page.goto("/recordings")
        page.get_by_role("link", name="Français").click()
        page.wait_for_function("() => document.documentElement.lang === 'fr'")
        assert page.get_by_role("link", name="Enregistrements").count() >= 1
        page.goto("/status")
        assert page.evaluate("document.documentElement.lang") == "fr"
        camera.shoot(page, "status-fr-phone")
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
        wanted = PHONE["width"] if "phone" in shot.name else LAPTOP["width"]
        assert width == wanted and height >= 300, (shot.name, width, height)


def test_the_readme_shows_screenshots_this_tour_takes() -> None:
    """Every picture the README shows is kept in docs/screenshots and is one this test takes
    (so refreshing them, see docs/screenshots/README.md, refreshes them all)."""
    root = Path(__file__).resolve().parents[2]
    shown = re.findall(r"\]\(docs/screenshots/([a-z0-9-]+)\.png\)",
                       (root / "README.md").read_text(encoding="utf-8"))
    taken = set(re.findall(r'camera\.shoot\(page, "([a-z0-9-]+)"\)',
                           Path(__file__).read_text(encoding="utf-8")))
    assert len(shown) >= 6
    for name in shown:
        assert name in taken, f"README shows {name}.png, which the tour does not take"
        width, height = png_size(root / "docs" / "screenshots" / f"{name}.png")
        assert width in (PHONE["width"], LAPTOP["width"]) and height >= 300
