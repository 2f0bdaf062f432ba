"""The privacy notice (/privacy) and the record of processing (/privacy/record)."""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from webtest_support import PASSWORD, Appliance, Client

from callrec.audit import AuditLog
from callrec.config import ControllerConfig, PrivacyConfig, RetentionConfig, WebConfig
from callrec_web.i18n import TEXTS, accepted, negotiate

OFFICE = ControllerConfig(
    name="Cabinet Martin",
    address="12 rue des Lilas, 69003 Lyon",
    contact="rgpd@cabinet-martin.example",
    dpo_contact="dpo@cabinet-martin.example",
)


def configure(app: Appliance, **sections: object) -> None:
    """Change the configuration the running app reads (pages read it at each request)."""
    app.ctx.config = replace(app.ctx.config, **sections)


def text(resp_text: str) -> str:
    """The page's visible text, tags removed and entities decoded, for phrase checks."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp_text)))


# -- language ---------------------------------------------------------------------------------
def test_every_text_exists_in_both_languages() -> None:
    assert set(TEXTS["fr"]) == set(TEXTS["en"])
    for lang, texts in TEXTS.items():
        for key, value in texts.items():
            assert value.strip(), (lang, key)
            names = set(re.findall(r"{(\w+)}", value))
            assert names == set(re.findall(r"{(\w+)}", TEXTS["en"][key])), (lang, key)


@pytest.mark.parametrize(("query", "header", "lang"), [
    (None, None, "fr"),
    (None, "en-GB,en;q=0.9", "en"),
    (None, "de-DE, en;q=0.5, fr;q=0.8", "fr"),
    (None, "de, *;q=0.1", "fr"),
    (None, "fr;q=0, en;q=0.1", "en"),
    (None, "en;q=nan, fr;q=2", "fr"),
    ("en", "fr-FR", "en"),
    ("de", "en", "en"),
    ("<script>", None, "fr"),
])
def test_language_negotiation(query: str | None, header: str | None, lang: str) -> None:
    assert negotiate(query, header) == lang


def test_accept_language_parsing_is_bounded() -> None:
    assert accepted("x" * 5000) == []
    assert accepted("en-US;q=0.3, fr-CA") == ["fr", "en"]
    assert accepted(";;;,,,q=1") == []


def test_notice_follows_the_browser_and_the_switch(appliance: Appliance) -> None:
    c = appliance.client()
    fr = c.get("/privacy", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"})
    assert fr.status == 200
    assert '<html lang="fr">' in fr.text and fr.header("Content-Language") == "fr"
    assert "Vos droits" in fr.text and "Aller au contenu principal" in fr.text
    assert 'href="/privacy?lang=en" hreflang="en" lang="en"' in fr.text
    en = c.get("/privacy?lang=en", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in en.text and "Your rights" in en.text
    assert 'href="/privacy?lang=fr"' in en.text and 'aria-current="true">English' in en.text
    assert "Accept-Language" in (en.header("Vary") or "")


# -- the notice -------------------------------------------------------------------------------
def test_notice_is_public_and_sets_no_cookie(appliance: Appliance) -> None:
    resp = Client(appliance.port).get("/privacy?lang=en")
    assert resp.status == 200
    assert resp.headers.get_all("Set-Cookie") is None
    assert "no-store" in (resp.header("Cache-Control") or "")
    page = text(resp.text)
    for phrase in ("What is recorded", "audio", "number", "name", "duration",
                   "announcement was played", "erased automatically 180 days after the call",
                   "Press the 9 key", "do-not-record list", "Access:", "Copy:",
                   "Rectification:", "Erasure:", "Restriction:", "Objection:", "within one month",
                   "CNIL, 3 place de Fontenoy", "Legitimate interest"):
        assert phrase in page, phrase
    assert 'href="/privacy/record' not in resp.text  # the record is not for the public


def test_notice_says_plainly_what_the_office_left_empty(appliance: Appliance) -> None:
    c = appliance.client()
    page = text(c.get("/privacy?lang=en").text)
    # The defaults leave name, address and contact empty: said, not invented.
    assert page.count("The office has not filled this in.") >= 3
    assert "This office records telephone calls" in page
    assert "No data protection officer is named" in page
    assert "[controller]" not in page  # the configuration warning is for the office only
    fr = text(c.get("/privacy?lang=fr").text)
    assert "Le bureau ne l’a pas encore renseigné." in fr
    assert "Intérêt légitime du responsable du traitement" in fr  # the default, translated


def test_admins_and_the_privacy_officer_are_warned_of_empty_fields(appliance: Appliance) -> None:
    for name, warned in (("admin", True), ("privacy", True), ("supervisor", False),
                         ("tech", False)):
        c = appliance.client()
        c.login(name)
        resp = c.get("/privacy?lang=en")
        assert resp.status == 200
        assert ('id="controller-missing"' in resp.text) is warned, name
        if warned:
            page = text(resp.text)
            assert "leaves these empty: Controller, Address, Contact for privacy requests." in page
            assert "Data protection officer" not in page.split("leaves these empty")[1][:80]
    configure(appliance, controller=OFFICE)
    c = appliance.client()
    c.login("admin")
    assert 'id="controller-missing"' not in c.get("/privacy").text


def test_notice_shows_the_configuration(appliance: Appliance) -> None:
    configure(
        appliance,
        controller=replace(OFFICE, purposes="Preuve des commandes passées par téléphone.",
                           recipients=""),
        retention=RetentionConfig(max_age_days=90),
        privacy=PrivacyConfig(refusal_key="#"),
    )
    page = text(appliance.client().get("/privacy?lang=fr").text)
    for phrase in ("Cabinet Martin enregistre", "12 rue des Lilas, 69003 Lyon",
                   "rgpd@cabinet-martin.example", "dpo@cabinet-martin.example",
                   "Preuve des commandes passées par téléphone.",
                   "effacés automatiquement 90 jours après l’appel", "touche # de votre"):
        assert phrase in page, phrase
    assert "Le bureau ne l’a pas encore renseigné." in page  # recipients emptied
    configure(appliance, retention=RetentionConfig(max_age_days=0, keep_forever=True),
              privacy=PrivacyConfig(refusal_key=""))
    page = text(appliance.client().get("/privacy?lang=en").text)
    assert "keep recordings without a time limit" in page
    assert "does not offer a key to refuse" in page and "Press the" not in page


def test_office_text_is_escaped(appliance: Appliance) -> None:
    configure(appliance, controller=replace(OFFICE, name='<script>alert("x")</script>'))
    resp = appliance.client().get("/privacy")
    assert "<script>alert" not in resp.text and "&lt;script&gt;" in resp.text


def test_every_page_links_the_notice(appliance: Appliance) -> None:
    c = appliance.client()
    assert 'href="/privacy"' in c.get("/login").text
    assert 'href="/privacy"' in c.get("/nowhere").text
    c.login("tech")
    assert 'href="/privacy">Privacy notice' in c.get("/status").text


# -- the record -------------------------------------------------------------------------------
def test_record_is_for_the_privacy_officer_and_the_admin(appliance: Appliance) -> None:
    anon = appliance.client()
    resp = anon.get("/privacy/record")
    assert resp.status == 303 and resp.header("Location") == "/login?next=/privacy/record"
    for name, status in (("admin", 200), ("privacy", 200), ("supervisor", 403), ("tech", 403)):
        c = appliance.client()
        c.login(name)
        assert c.get("/privacy/record").status == status, name
    c = appliance.client()
    c.login("privacy")
    assert 'href="/privacy/record?lang=' in c.get("/privacy").text


def test_record_describes_this_recorder(appliance: Appliance, tmp_path: Path) -> None:
    c = appliance.client()
    c.login("admin")
    resp = c.get("/privacy/record?lang=en")
    assert resp.status == 200 and "no-store" in (resp.header("Cache-Control") or "")
    page = text(resp.text)
    for phrase in ("Record of processing activities", "Categories of data subjects",
                   "Callers", "Called parties", "Staff of the controller",
                   "Audio of the calls", "Telephone numbers", "Names sent by the network",
                   "Proof of the announcement", "Transfers to third countries None.",
                   "erased automatically 180 days after the call", "every 60 minutes",
                   "500 MB kept free", "Access log: 365 days",
                   "Encryption at rest: audio, details and index sealed with AES-256-GCM",
                   "NOT bound to the hardware (storage.key_binding = auto)",
                   "listens on 127.0.0.1 only", "not available to the web interface",
                   "refuse during the announcement with the 9 key",
                   "privacy button or by dialling *0 before the number",
                   "sessions held on the recorder".capitalize(), "after 30 minutes",
                   "12 hours", "The office has not filled this in."):
        assert phrase in page, phrase
    # Roles and who holds them, from the live account list.
    assert re.search(r"Supervisor</th><td>see the line status; list recordings; listen to and "
                     r"download recordings</td><td>supervisor</td>", resp.text)
    assert re.search(r"Technician</th><td>see the line status; manage accounts[^<]*</td>"
                     r"<td>tech</td>", resp.text)
    assert "Accounts that can hear recordings: admin, privacy, supervisor." in page
    assert 'class="gap"' in resp.text  # the unbound key and the missing log are marked
    assert '<script src="/static/print.js" defer></script>' in resp.text
    assert c.get("/static/print.js").status == 200

    # The measures follow the state: an access log, TLS, encryption off, a quota.
    appliance.ctx.audit = AuditLog(tmp_path / "audit", b"k" * 32, clock_trusted=lambda: True)
    appliance.ctx.https = True
    configure(appliance, retention=RetentionConfig(quota_gb=20), web=WebConfig(host="0.0.0.0"))
    page = text(c.get("/privacy/record?lang=en").text)
    assert "append-only and hash-chained" in page and "kept 365 days" in page
    assert "served over HTTPS" in page and "WITHOUT TLS" not in page
    assert "a quota of 20 GB per volume" in page
    appliance.ctx.https = False
    page = text(c.get("/privacy/record?lang=en").text)
    assert "WITHOUT TLS on 0.0.0.0" in page
    configure(appliance, storage=replace(appliance.ctx.config.storage, encrypt=False))
    appliance.ctx.store.keys = None  # as open_store leaves it with encryption off
    page = text(c.get("/privacy/record?lang=fr").text)
    assert "Le chiffrement au repos est DÉSACTIVÉ" in page
    assert "Registre des activités de traitement" in page


def test_record_in_french_with_an_office(appliance: Appliance) -> None:
    configure(appliance, controller=OFFICE)
    c = appliance.client()
    c.login("privacy")
    resp = c.get("/privacy/record", headers={"Accept-Language": "fr-FR"})
    page = text(resp.text)
    assert '<html lang="fr">' in resp.text
    for phrase in ("Cabinet Martin", "dpo@cabinet-martin.example", "Catégories de personnes",
                   "Transferts vers des pays tiers Aucun.", "Référent protection des données",
                   "consulter le journal des accès", "Imprimer"):
        assert phrase in page, phrase
    assert "pas encore renseigné" not in page and 'id="controller-missing"' not in resp.text


def test_print_styles_hide_the_navigation() -> None:
    css = (Path(__file__).parents[2] / "web/callrec_web/static/style.css").read_text()
    block = css[css.index("@media print"):]
    assert "header.top" in block and ".no-print" in block and ".langs" in block


# -- in a browser ------------------------------------------------------------------------------
@pytest.mark.browser
def test_notice_and_record_in_a_browser(appliance: Appliance) -> None:
    """The French browser gets French, the keyboard reaches the switch, the record's print
    button works under the CSP, and the printed record has no navigation."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is not installed: run ./install.sh --dev --with-tests")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(base_url=f"http://127.0.0.1:{appliance.port}",
                                    locale="fr-FR")
            page.on("console", lambda msg: problems.append(msg.text)
                    if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.set_default_timeout(5000)
            page.goto("/privacy")
            assert page.evaluate("document.documentElement.lang") == "fr"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == (
                "Aller au contenu principal")
            page.get_by_role("link", name="English").click()
            page.wait_for_url("**/privacy?lang=en")
            assert page.get_by_role("heading", level=1).inner_text().startswith("Privacy notice")

            page.goto("/login?next=/privacy/record")
            page.get_by_label("Username").fill("privacy")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/privacy/record")
            button = page.get_by_role("button", name="Imprimer")
            assert button.is_visible()  # print.js ran: the CSP allows it
            page.evaluate("window.print = () => { window.printed = true; }")
            button.click()
            assert page.evaluate("window.printed") is True
            page.emulate_media(media="print")
            for hidden in ("header.top", "nav.langs", "footer", "#print"):
                assert not page.locator(hidden).is_visible(), hidden
            assert page.locator("#measures").is_visible()
        finally:
            browser.close()
    assert problems == []
