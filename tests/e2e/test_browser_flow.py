"""The appliance in a real browser: first start, login, listen (seek), erase.

Debian's Chromium driven by Playwright against the daemon on the simulated board, after a real
simulated call: the same path a technician and a member of staff take. The appliance keeps
its default storage format, so the browser plays the encrypted Ogg/Opus file the transcoder
made after hang-up, decrypted range by range as it seeks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from browsing import chromium_page, first_start
from callrec.sim.harness import Appliance
from recfiles import wait_stored_as

pytestmark = pytest.mark.browser

PASSWORD = "a long and memorable sentence"


def test_setup_login_play_seek_erase(appliance_factory: Any, media: dict[str, Path],
                                     tmp_path: Path) -> None:
    appliance: Appliance = appliance_factory(audio_format="compact")
    appliance.start()

    appliance.call(direction="in", number="0698765432", audio=str(media["speech"]), rings=2,
                   ring_on_s=0.4, ring_off_s=1.0, talk_s=4.0)
    rec_id = appliance.wait_idle()["last_recording"]
    meta = wait_stored_as(appliance, rec_id, "opus")
    code = (Path(appliance.config.runtime_dir) / "setup-code").read_text().strip()

    with chromium_page(appliance.base_url) as (page, problems):
        # First start: no account exists, so / leads to the setup page.
        first_start(page, code, "owner", PASSWORD)
        assert not (Path(appliance.config.runtime_dir) / "setup-code").exists()

        # Log out and in again with the new account.
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/login")
        page.get_by_label("Username").fill("owner")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/recordings")
        page.screenshot(path=str(tmp_path / "recordings.png"), full_page=True)

        # Listen: the player loads the recording, and seeking works (HTTP Range).
        page.locator(f'a[href="/recordings/{rec_id}"]').first.click()
        page.wait_for_url(f"**/recordings/{rec_id}")
        assert page.get_by_role("link", name="Download (Opus)").count() == 1
        page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
        duration = page.evaluate("document.querySelector('audio').duration")
        assert duration == pytest.approx(meta["duration_s"], abs=0.05)
        target = round(duration * 0.6, 2)
        seeked = page.evaluate(
            """(t) => new Promise((resolve, reject) => {
                const a = document.querySelector('audio');
                a.addEventListener('seeked', () => resolve(a.currentTime), {once: true});
                a.addEventListener('error', () => reject(a.error.message), {once: true});
                a.currentTime = t;
            })""", target)
        assert seeked == pytest.approx(target, abs=0.05)
        played = page.evaluate(
            """() => new Promise((resolve, reject) => {
                const a = document.querySelector('audio');
                a.muted = true;
                const start = a.currentTime;
                a.play().catch(reject);
                setTimeout(() => { a.pause(); resolve(a.currentTime - start); }, 800);
            })""")
        assert played > 0.2, f"playback advanced only {played:.3f} s"

        # Erase, with confirmation.
        page.get_by_role("link", name="Erase…").first.click()
        page.get_by_role("button", name="Erase for good").click()
        page.wait_for_url("**/recordings*")
        assert "Recording erased" in page.locator("p.flash").inner_text()
        assert page.locator(f'a[href="/recordings/{rec_id}"]').count() == 0
    assert problems == []

    # Its key (crypto-erasure), audio and sidecar are gone; the list no longer shows it (above).
    assert not list((appliance.config.data_dir / "recordings").glob(f"*/*/{rec_id}.*"))
    assert not list((appliance.config.data_dir / "keys").glob(f"*/{rec_id}.*"))
