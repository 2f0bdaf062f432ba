"""docs/technician-guide.md, sections 4 and 6, walked in a real browser on the simulated box.

The guide takes a technician from a flashed SD card to a recorded test call. What needs a Pi
(flashing, wiring, the boot lines) cannot run here; the installer is run in a Debian root file
system by tests/install/test_install_rootfs.py. This test does the rest as the guide says it,
clicking the very names the guide prints in bold (each is checked to be in the guide first, so
the guide and the software cannot drift apart): first start, the other accounts, who is
responsible, a backup of the configuration, the self-test, the status, a test call found,
listened to and erased, and the erasure in the access log.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from browsing import chromium_page
from callrec.sim.harness import Appliance
from recfiles import wait_stored_as

pytestmark = pytest.mark.browser

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "technician-guide.md").read_text(
    encoding="utf-8")
BOLD = set(re.findall(r"\*\*([^*\n]+)\*\*", GUIDE))
PASSWORD = "a long and memorable sentence"


def said(name: str) -> str:
    """`name`, which the guide prints in bold for the reader to find on the page."""
    assert name in BOLD, f"the guide does not tell the reader about **{name}**"
    return name


def section(title: str) -> str:
    """The text of one '## ' section of the guide."""
    start = GUIDE.index(f"## {title}")
    end = GUIDE.find("\n## ", start + 3)
    return GUIDE[start:end]


def test_sections_4_and_6_of_the_guide(appliance_factory: Any, media: dict[str, Path]) -> None:
    appliance: Appliance = appliance_factory(audio_format="compact")
    appliance.start()
    code = (Path(appliance.config.runtime_dir) / "setup-code").read_text().strip()
    first_setup = section("4. First setup in the browser")
    check_it = section("6. Check it")

    with chromium_page(appliance.base_url, timeout_ms=15000) as (page, problems):
        # 4. Create the administrator.
        page.goto("/")
        assert page.get_by_role("heading", name=said(
            "First start: create the administrator")).count() == 1
        page.get_by_label(said("Setup code")).fill(code)
        page.get_by_label(said("Administrator username")).fill("owner")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name=said("Create the administrator")).click()
        page.wait_for_url("**/recordings")

        # 4. Create the other accounts: Users, then Add an account, once per person.
        page.get_by_role("link", name=said("Users"), exact=True).click()
        assert page.get_by_role("heading", name=said("Add an account")).count() == 1
        for name, role in (("tech", "Technician"), ("dpo", "Privacy officer")):
            assert role.lower() in first_setup.lower()
            page.get_by_label("Username").fill(name)
            page.get_by_label(role, exact=True).check()
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Password again").fill(PASSWORD)
            page.get_by_role("button", name="Add account").click()
            page.wait_for_url("**/users*")
            assert page.get_by_text(name, exact=True).count() >= 1

        # 4. Who is responsible: Settings, Who is responsible, the three fields, Save.
        page.get_by_role("link", name=said("Settings"), exact=True).click()
        page.get_by_role("link", name=said("Who is responsible")).click()
        page.get_by_label(said("Name of the office")).fill("Cabinet Martin")
        page.get_by_label(said("Postal address")).fill("12 rue de la Gare, 69000 Lyon")
        page.get_by_label(said("Contact for privacy requests")).fill("privacy@martin.example")
        page.get_by_role("button", name=said("Save")).click()
        page.wait_for_url("**/settings/controller?saved=now")
        deadline = time.monotonic() + 30  # the restart that applies it, as the guide says
        while appliance.logs["daemon"].read_text().count("callrec.daemon: web UI on ") < 2:
            assert time.monotonic() < deadline, "the saved setting was never applied"
            time.sleep(0.1)
        appliance.wait_ready()
        page.goto("/privacy?lang=en")
        assert "Cabinet Martin" in page.content() and "privacy@martin.example" in page.content()

        # 4. Keep a copy of the configuration: a backup, encrypted as it holds the list.
        page.goto("/settings")
        page.get_by_role("link", name=said("Back up or restore the configuration")).click()
        page.get_by_label("Passphrase (at least 12 characters)").fill("correct horse battery")
        page.get_by_label("The passphrase again").fill("correct horse battery")
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download the backup").click()
        backup = download_info.value
        assert backup.suggested_filename.endswith(".cbk")
        saved = Path(backup.path()).read_bytes()
        assert b"Cabinet Martin" not in saved  # encrypted with the passphrase

        # 6. Self-test: Self-test, Run the self-test; each item ok.
        page.goto("/recordings")
        page.get_by_role("link", name=said("Self-test"), exact=True).click()
        assert "Run the self-test" in check_it
        page.get_by_role("button", name="Run the self-test").click()
        page.wait_for_url("**/selftest*")
        assert page.get_by_role("status").filter(has_text="All checks passed").count() == 1
        for item in ("Board and HAT microcontroller", "Pins", "Audio path", "Storage",
                     "Recordings index", "Clock", "Encryption key"):
            assert page.locator("#result tbody th", has_text=said(item)).count() == 1

        # 6. Status: the Faults list says "No faults." when all is well.
        page.get_by_role("link", name=said("Status"), exact=True).click()
        assert page.get_by_role("heading", name=said("Faults")).count() == 1
        assert page.get_by_text("No faults.").is_visible() and '"No faults."' in check_it

        # 6. A test call: a caller rings, the office answers, talks, hangs up.
        appliance.call(direction="in", number="0612345678", audio=str(media["speech"]),
                       rings=2, ring_on_s=0.4, ring_off_s=1.0, talk_s=4.0)
        rec_id = appliance.wait_idle()["last_recording"]
        wait_stored_as(appliance, rec_id, "opus")
        page.get_by_role("link", name=said("Recordings"), exact=True).click()
        first_row = page.locator("tbody tr").first
        assert first_row.locator(f'a[href="/recordings/{rec_id}"]').count() == 1  # on top
        first_row.locator("a").first.click()
        assert page.get_by_role("heading", name=said("Listen")).count() == 1
        page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
        assert page.evaluate("document.querySelector('audio').duration") > 4.0
        assert page.get_by_role("heading", name=said("Details")).count() == 1
        assert page.get_by_role("heading", name=said("Announcement")).count() == 1
        assert page.locator("dt:has-text('Played in full') + dd").inner_text() == "Yes"
        page.get_by_role("link", name=said("Erase…")).click()
        page.get_by_role("button", name=said("Erase for good")).click()
        page.wait_for_url("**/recordings*")
        assert page.locator(f'a[href="/recordings/{rec_id}"]').count() == 0
        # ... and the erasure is written in the Access log.
        page.get_by_role("link", name=said("Access log"), exact=True).click()
        assert page.locator("table").get_by_text(rec_id).count() >= 1
    assert problems == []
