"""The Settings pages (issue 7 item 1): forms over the real configuration file, through a real
server. What is checked is the file on disk (comments kept, byte-identical after a refusal, no
temporary file left), the HTTP statuses and the messages next to the fields."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from webtest_support import Appliance, Client

from callrec.audit import AuditLog
from callrec.config import parse
from callrec.config_store import AFTER_CALL, NOW, ConfigStore, current_version
from callrec.privacy.pseudonym import Pseudonymizer

CONFIG = """\
# The office's recorder. Edited by Jean on site, 2024-05-02.
runtime_dir = "/run/callrec"

[line]
name = "accueil"   # the reception's line
country = "fr"
# Outgoing calls are recorded since the works council agreed (minutes of 12 March).
record_outgoing = true

[retention]
max_age_days = 90  # the office's own rule: three months

[controller]
name = "Cabinet \\"Dupont\\" & Fils"
"""


class Daemon:
    """What the daemon answers when asked to apply (request_config_apply): counted."""

    def __init__(self) -> None:
        self.asked = 0
        self.answer = NOW

    def __call__(self) -> str:
        self.asked += 1
        return self.answer


@pytest.fixture
def settings(appliance: Appliance, tmp_path: Path) -> tuple[Appliance, Path, Daemon]:
    """The appliance with a configuration file to edit and an access log."""
    path = tmp_path / "etc" / "callrec.toml"
    path.parent.mkdir()
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o640)
    appliance.ctx.audit = AuditLog(tmp_path / "audit", b"k" * 32, clock_trusted=lambda: True,
                                   pseudonymize=Pseudonymizer(b"p" * 32))
    daemon = Daemon()
    appliance.ctx.settings = ConfigStore(path, apply=daemon, audit=appliance.ctx.audit)
    return appliance, path, daemon


def tech(app: Appliance) -> Client:
    c = app.client()
    c.login("tech")
    return c


def line_form(**overrides: str) -> dict[str, str]:
    data = {"line.name": "accueil", "line.country": "fr", "line.record_incoming": "on",
            "line.record_outgoing": "on", "line.outgoing_answer_delay_s": "6",
            "line.ring_timeout_s": "8"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v != "off"}


def error_for(page: str, field_id: str) -> str:
    """The message tied to a field (aria-describedby), '' if none."""
    m = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', page) or \
        re.search(rf'<select[^>]*id="{field_id}"[^>]*>', page)
    assert m, f"no field {field_id}"
    if "aria-invalid" not in m.group(0):
        return ""
    assert f"{field_id}-error" in m.group(0)
    err = re.search(rf'<p class="errors field-error" id="{field_id}-error">([^<]*)</p>', page)
    assert err
    return err.group(1)


def test_saving_the_line_keeps_comments_and_changes_only_what_was_asked(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, daemon = settings
    c = tech(app)
    page = c.get("/settings/line")
    assert page.status == 200 and 'value="accueil"' in page.text
    resp = c.post("/settings/line", line_form(**{"line.country": "us",
                                                 "line.record_outgoing": "off"}))
    assert resp.status == 303 and resp.header("Location") == "/settings/line?saved=now"
    text = path.read_text(encoding="utf-8")
    # Every comment is still there, and the untouched lines are as they were written.
    for line in CONFIG.splitlines():
        if "country" not in line and "record_outgoing =" not in line:
            assert line in text, line
    assert 'country = "us"' in text and "record_outgoing = false" in text
    assert text.startswith("# The office's recorder.")
    data = tomllib.loads(text)
    assert data["config_version"] == current_version()
    assert data["controller"]["name"] == 'Cabinet "Dupont" & Fils'
    assert parse(data).line.country == "us"
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == [".callrec.toml.lock",
                                                              "callrec.toml"]
    assert daemon.asked == 1
    # The page then says what happens next.
    assert "The recorder restarts now" in c.get("/settings/line?saved=now").text
    # Who changed which keys is in the access log; never the values.
    [entry] = [e for e in app.ctx.audit.entries() if e["action"] == "settings.change"]
    assert entry["actor"] == "tech"
    assert entry["details"]["keys"] == ["line.country", "line.record_outgoing"]
    assert "us" not in str(entry["details"]["keys"])


def test_saving_unchanged_values_writes_nothing(settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, daemon = settings
    before = path.stat().st_mtime_ns
    resp = tech(app).post("/settings/line", line_form())
    assert resp.status == 303 and resp.header("Location").endswith("saved=unchanged")
    assert path.read_text(encoding="utf-8") == CONFIG and path.stat().st_mtime_ns == before
    assert daemon.asked == 0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("line.ring_timeout_s", "soon", "Enter a number."),
    ("line.outgoing_answer_delay_s", "-2", "Must not be negative."),
    ("line.country", "de", "Choose one of the options."),
    ("line.name", "a\nb", "Use one line of text."),
])
def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_written(
        settings: tuple[Appliance, Path, Daemon], field: str, value: str, message: str) -> None:
    app, path, daemon = settings
    before = path.read_bytes()
    resp = tech(app).post("/settings/line", line_form(**{field: value}))
    assert resp.status == 400
    field_id = "f-" + field.replace(".", "-").replace("_", "-")
    assert error_for(resp.text, field_id) == message
    assert "Nothing was saved" in resp.text
    assert path.read_bytes() == before and daemon.asked == 0
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_configurations_own_rules_show_by_the_field(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, _ = settings
    before = path.read_bytes()
    c = tech(app)
    storage = {"retention.max_age_days": "0", "retention.quota_gb": "0",
               "retention.min_free_mb": "500", "storage.audio_format": "compact",
               "storage.prefer_usb": "on"}
    resp = c.post("/settings/storage", storage)
    assert resp.status == 400
    assert "would keep recordings forever" in error_for(resp.text, "f-retention-max-age-days")
    assert path.read_bytes() == before
    # A SIP line without its addresses: the message is by the first one it needs.
    resp = c.post("/settings/sip", {"sip.enabled": "on", "sip.name": "sip", "sip.rtp_ports":
                                    "20000-20999", "sip.media_timeout_s": "30",
                                    "sip.trunk_keepalive_s": "30"})
    assert resp.status == 400
    assert "a SIP line needs it" in error_for(resp.text, "f-sip-lan")
    assert path.read_bytes() == before


def test_keep_forever_clears_the_age_limit(settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, _ = settings
    resp = tech(app).post("/settings/storage", {
        "retention.max_age_days": "90", "retention.keep_forever": "on",
        "retention.quota_gb": "2.5", "retention.min_free_mb": "500",
        "storage.audio_format": "lossless"})
    assert resp.status == 303, resp.text
    text = path.read_text(encoding="utf-8")
    assert "max_age_days = 0  # the office's own rule: three months" in text
    config = parse(tomllib.loads(text))
    assert config.retention.keep_forever and config.retention.quota_gb == 2.5
    assert config.storage.audio_format == "lossless" and config.storage.prefer_usb is False


def test_a_change_during_a_call_says_when_it_applies(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, daemon = settings
    daemon.answer = AFTER_CALL
    c = tech(app)
    resp = c.post("/settings/language", {"web.language": "fr"})
    assert resp.header("Location") == "/settings/language?saved=after_call"
    assert "will apply when the call in progress ends" in c.get(resp.header("Location")).text
    assert tomllib.loads(path.read_text())["web"]["language"] == "fr"
    # The index and the status page say it too while it waits.
    app.status["config_pending"] = True
    assert "will apply when the call ends" in c.get("/settings").text
    assert "A configuration change will apply when the call ends." in c.get("/status").text
    app.status["config_pending"] = False


def test_csrf_and_same_origin_are_required(settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, daemon = settings
    c = tech(app)
    assert c.post("/settings/line", line_form(csrf_token="wrong")).status == 403
    assert c.post("/settings/line", line_form(**{"line.country": "us"}), csrf=False).status == 403
    c.origin = "http://evil.example"
    assert c.post("/settings/line", line_form(**{"line.country": "us"})).status == 403
    assert path.read_text(encoding="utf-8") == CONFIG and daemon.asked == 0


@pytest.mark.parametrize("page", ["/settings", "/settings/line", "/settings/sip",
                                  "/settings/storage", "/settings/language"])
def test_only_technicians_and_administrators_get_in(
        settings: tuple[Appliance, Path, Daemon], page: str) -> None:
    app, path, _ = settings
    for name, status in (("admin", 200), ("tech", 200), ("supervisor", 403), ("privacy", 403)):
        c = app.client()
        c.login(name)
        assert c.get(page).status == status, name
        nav = c.get("/account").text
        assert ('href="/settings"' in nav) is (status == 200), name
        if page != "/settings" and status == 403:
            # The POST is refused before anything is read, even with a valid token.
            assert c.post(page, {"line.country": "us"}).status == 403
    anonymous = app.client()
    assert anonymous.get(page).status == 303
    assert path.read_text(encoding="utf-8") == CONFIG


def test_a_malformed_file_gives_a_clear_page_not_a_500(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, daemon = settings
    path.write_text(CONFIG + "\n[line\ncountry = \n", encoding="utf-8")
    before = path.read_bytes()
    c = tech(app)
    for page in ("/settings/line", "/settings/storage"):
        resp = c.get(page)
        assert resp.status == 409
        assert "The configuration file cannot be used" in resp.text
        assert "invalid TOML" in resp.text
    index = c.get("/settings")
    assert index.status == 200 and "invalid TOML" in index.text
    assert c.post("/settings/line", line_form(**{"line.country": "us"})).status == 409
    assert path.read_bytes() == before and daemon.asked == 0


def test_a_file_valid_toml_but_refused_by_the_configuration_says_which_key(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, _ = settings
    path.write_text(CONFIG.replace('country = "fr"', 'country = "de"'), encoding="utf-8")
    resp = tech(app).get("/settings/line")
    assert resp.status == 409 and "line.country" in resp.text and "is not one of" in resp.text


def test_the_index_shows_network_time_roles_and_links(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, _, _ = settings
    app.status["web"] = {"url": "https://callrec.local:8443/", "tls": True,
                         "fingerprint": "AB:CD:EF", "warning": None}
    app.status["clock"] = {"synchronised": False, "source": "NTP (kernel clock state)",
                           "detail": "maximum error 16 s"}
    page = tech(app).get("/settings").text
    for link in ("/settings/line", "/settings/sip", "/settings/storage", "/settings/language",
                 "/settings/announcements", "/users"):
        assert f'href="{link}"' in page
    assert "https://callrec.local:8443/" in page and "AB:CD:EF" in page and ".local" in page
    assert "not synchronised" in page and "time unverified" in page
    assert "never hears a call" in page and "accueil, fr" in page
    app.status["clock"] = {"synchronised": True, "source": "NTP (systemd-timesyncd)",
                           "detail": ""}
    page = tech(app).get("/settings").text
    assert "time unverified" not in page and "synchronised (NTP (systemd-timesyncd))" in page
    del app.status["web"], app.status["clock"]


def test_pages_are_translated(settings: tuple[Appliance, Path, Daemon]) -> None:
    app, _, _ = settings
    c = tech(app)
    page = c.get("/settings/line?lang=fr").text
    assert "Ligne analogique" in page and "Enregistrer" in page
    resp = c.post("/settings/line", line_form(**{"line.ring_timeout_s": "x"}))
    assert "Entrez un nombre." in resp.text


def test_replace_validates_the_whole_file_and_the_version(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, _ = settings
    store = app.ctx.settings
    assert store is not None and store.current_text() == CONFIG
    from callrec.config_store import SettingsError

    for bad, key in (("config_version = 99\n", "config_version"),
                     ('[line]\ncountry = "de"\n', "line.country"),
                     ("[line\n", "")):
        with pytest.raises(SettingsError) as err:
            store.replace(bad, "admin")
        assert err.value.key == key
        assert path.read_text(encoding="utf-8") == CONFIG
    result = store.replace('[line]\nname = "restored"\n', "admin")
    assert result.changed == ("controller.name", "line.country", "line.name",
                              "line.record_outgoing", "retention.max_age_days", "runtime_dir")
    assert path.read_text(encoding="utf-8") == '[line]\nname = "restored"\n'
    assert store.pending()
    logged: list[dict[str, Any]] = [e for e in app.ctx.audit.entries()
                                    if e["action"] == "settings.replace"]
    assert logged and logged[0]["actor"] == "admin"


def test_the_controller_and_saying_no_are_set_from_the_web(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    """What the privacy notice shows, and how callers refuse: no SSH needed for either."""
    app, path, _daemon = settings
    c = tech(app)
    page = c.get("/settings/controller")
    assert page.status == 200 and "Cabinet &quot;Dupont&quot; &amp; Fils" in page.text
    fields = {"controller.name": "Cabinet Martin", "controller.address": "1 rue de la Paix, Lyon",
              "controller.contact": "dpo@martin.example", "controller.dpo_contact": "",
              "controller.purposes": "Preuve des commandes passées par téléphone.",
              "controller.legal_basis": "Intérêt légitime (art. 6(1)(f) RGPD).",
              "controller.recipients": "La direction.",
              "controller.supervisory_authority": "CNIL"}
    resp = c.post("/settings/controller", fields)
    assert resp.status == 303, resp.text
    controller = parse(tomllib.loads(path.read_text(encoding="utf-8"))).controller
    assert (controller.name, controller.contact) == ("Cabinet Martin", "dpo@martin.example")
    assert controller.purposes == "Preuve des commandes passées par téléphone."
    # A refusal key that is not a telephone key is refused next to its field; nothing written.
    before = path.read_bytes()
    privacy = {"privacy.refusal_key": "x", "privacy.privacy_prefix": "*0",
               "privacy.privacy_button_window_s": "60", "privacy.audit_retention_days": "365"}
    resp = c.post("/settings/privacy", privacy)
    assert resp.status == 400
    assert "DTMF" in error_for(resp.text, "f-privacy-refusal-key")
    assert path.read_bytes() == before
    resp = c.post("/settings/privacy", {**privacy, "privacy.refusal_key": "#"})
    assert resp.status == 303
    assert parse(tomllib.loads(path.read_text(encoding="utf-8"))).privacy.refusal_key == "#"


def test_the_languages_announced_are_chosen_from_the_web(
        settings: tuple[Appliance, Path, Daemon]) -> None:
    app, path, _daemon = settings
    c = tech(app)
    assert c.get("/settings/announcement-languages").status == 200
    resp = c.post("/settings/announcement-languages",
                  {"announcement.incoming_languages": "fr en",
                   "announcement.outgoing_languages": ""})
    assert resp.status == 303
    announcement = parse(tomllib.loads(path.read_text(encoding="utf-8"))).announcement
    assert (announcement.incoming_languages, announcement.outgoing_languages) == ("fr en", "")
    before = path.read_bytes()
    resp = c.post("/settings/announcement-languages",
                  {"announcement.incoming_languages": "de",
                   "announcement.outgoing_languages": ""})
    assert resp.status == 400 and path.read_bytes() == before
