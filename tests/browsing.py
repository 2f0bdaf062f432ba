"""Debian's Chromium driven by Playwright, for the browser tests (tests/e2e, tests/web).

Launched headless with the flags this machine needs (no sandbox as root, no GPU, no background
networking: the closed network refuses Google's hosts); every page error and console error is
collected, and a test asserts that there were none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium_page(base_url: str, *, timeout_ms: int = 10000,
                  **context_options: Any) -> Iterator[tuple[Any, list[str]]]:
    """(page, problems): a page on `base_url`; `problems` collects the page's errors."""
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run ./install.sh --dev --with-tests")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(base_url=base_url, **context_options)
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console",
                    lambda m: problems.append(m.text) if m.type == "error" else None)
            yield page, problems
        finally:
            browser.close()


def first_start(page: Any, code: str, username: str, password: str) -> None:
    """The first-start page, as a technician fills it in: ends on the recordings list."""
    page.goto("/")
    page.wait_for_url("**/setup")
    page.get_by_label("Setup code").fill(code)
    page.get_by_label("Administrator username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password again").fill(password)
    page.get_by_role("button", name="Create the administrator").click()
    page.wait_for_url("**/recordings")
