"""The staff UI in French: every text has its translation, no translation is stale, the pages
render in French through the real app, and the language switch works.

Texts are found where they are written: `_("…")` in templates (a regex: templates are not
Python), `_("…")` and `N_("…")` in Python (ast), and the English texts of messages.tpl (the
code refers to them by key; `t(key)` translates them like `_`).
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from callrec_web import translate, uilang
from callrec_web.translate import LOCALE_DIR, parse_po
from callrec_web.views import TEMPLATE_DIR, parse_messages

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = (ROOT / "web", ROOT / "firmware")
# Templates whose words come from their own catalog (i18n.py): not part of the _() texts.
OWN_CATALOG = ("privacy",)
# _( then one Python string literal (single or double quotes, escapes allowed).
_TEMPLATE_CALL = re.compile(r"""(?<![\w.])_\(\s*('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")


def template_texts() -> dict[str, set[str]]:
    """msgid → the templates that use it."""
    found: dict[str, set[str]] = {}
    for path in sorted(TEMPLATE_DIR.glob("*.tpl")):
        if path.name.startswith(OWN_CATALOG):
            continue
        for match in _TEMPLATE_CALL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(ast.literal_eval(match.group(1)), set()).add(path.name)
    return found


def python_files() -> Iterator[Path]:
    for top in SOURCE_DIRS:
        for path in sorted(top.rglob("*.py")):
            if ".venv" not in path.parts and "__pycache__" not in path.parts:
                yield path


def _translating(func: ast.expr) -> bool:
    """`_`, `N_`, `phrase` (callrec.selftest: a sentence the daemon builds, translated where
    it is shown), or a translator made on the spot: `tr()` / `Translator(lang)`."""
    if isinstance(func, ast.Name):
        return func.id in ("_", "N_", "phrase")
    return (
        isinstance(func, ast.Call)
        and isinstance(func.func, ast.Name)
        and func.func.id in ("tr", "Translator")
    )


def python_texts() -> dict[str, set[str]]:
    """msgid → the .py files that mark it with _("…"), N_("…") or tr()("…")."""
    found: dict[str, set[str]] = {}
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _translating(node.func)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, set()).add(str(path.relative_to(ROOT)))
    return found


def catalog_texts() -> dict[str, set[str]]:
    """The English texts of messages.tpl (rendered: it is a template)."""
    import bottle

    tpl = bottle.SimpleTemplate(name="messages.tpl", lookup=[str(TEMPLATE_DIR)])
    return {text: {"messages.tpl"} for text in parse_messages(str(tpl.render())).values()}


def all_texts() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for source in (template_texts(), python_texts(), catalog_texts()):
        for text, where in source.items():
            found.setdefault(text, set()).update(where)
    return found


def po_files(lang: str = "fr") -> list[Path]:
    return sorted((LOCALE_DIR / lang).glob("*.po"))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# -- (c) the PO files parse --------------------------------------------------------------------
def test_po_files_parse_and_are_utf8() -> None:
    files = po_files()
    assert files, "no French PO file"
    for path in files:
        entries = parse_po(path.read_text(encoding="utf-8"), str(path))
        assert entries, f"{path.name} has no translated entry"


def test_parse_po_rejects_garbage_and_skips_fuzzy() -> None:
    text = 'msgid "A"\nmsgstr "B"\n\n#, fuzzy\nmsgid "C"\nmsgstr "D"\n\nmsgid "E"\nmsgstr ""\n'
    assert parse_po(text) == {"A": "B"}
    with pytest.raises(translate.PoError, match=r"x\.po:2"):
        parse_po('msgid "A"\nnonsense\n', "x.po")


def test_no_msgid_is_translated_twice_differently() -> None:
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in po_files():
        for msgid, msgstr in parse_po(path.read_text(encoding="utf-8"), str(path)).items():
            if msgid in seen and seen[msgid][1] != msgstr:
                clashes.append(f"{msgid!r}: {seen[msgid][0]} and {path.name}")
            seen[msgid] = (path.name, msgstr)
    assert not clashes, "translated differently in two files:\n" + "\n".join(clashes)


# -- (a) every text has its French translation, with the same placeholders ---------------------
def test_every_text_is_translated_with_the_same_placeholders() -> None:
    fr = translate.texts("fr")
    texts = all_texts()
    assert len(texts) > 300, "the extraction found too few texts: is the regex broken?"
    missing = sorted(
        f"{text!r} ({', '.join(sorted(where))})" for text, where in texts.items() if text not in fr
    )
    assert not missing, f"{len(missing)} text(s) without French translation:\n" + "\n".join(missing)
    wrong = sorted(
        f"{text!r}: {sorted(placeholders(text))} vs {sorted(placeholders(fr[text]))}"
        for text in texts
        if placeholders(text) != placeholders(fr[text])
    )
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


# -- (b) no stale entry ------------------------------------------------------------------------
def test_no_po_entry_is_stale() -> None:
    used = set(all_texts())
    stale = []
    for path in po_files():
        for msgid in parse_po(path.read_text(encoding="utf-8"), str(path)):
            if msgid not in used:
                stale.append(f"{path.name}: {msgid!r}")
    assert not stale, "PO entries no code or template uses (remove them):\n" + "\n".join(stale)


# -- the language choice (pure) ----------------------------------------------------------------
def test_choose_language() -> None:
    assert uilang.choose("fr", None, "en") == ("fr", True)
    assert uilang.choose("fr", "fr", "en") == ("fr", False)
    assert uilang.choose(None, "fr", "en") == ("fr", False)
    assert uilang.choose("de", "fr", "en") == ("fr", False)  # unknown ?lang= is ignored
    assert uilang.choose(None, "xx", "fr") == ("fr", False)
    assert uilang.choose(None, None, "xx") == ("en", False)


def test_switch_links_keep_the_query() -> None:
    links = uilang.switch_links("/audit", [("actor", "a b"), ("lang", "en"), ("page", "2")], "en")
    assert links == [
        ("en", "English", "/audit?actor=a+b&page=2&lang=en", True),
        ("fr", "Français", "/audit?actor=a+b&page=2&lang=fr", False),
    ]


# -- (d) the pages in French -------------------------------------------------------------------
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col"})


class _Text(HTMLParser):
    """The visible text nodes in the page's language: not <script>/<style>, not hidden=""
    subtrees, not elements in another language (lang="en": the switch names English so)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.nodes: list[str] = []
        self.html_lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "html":
            self.html_lang = named.get("lang") or ""
        if tag in _VOID:
            return
        skipped = (
            "hidden" in named
            or tag in ("script", "style")
            or (tag != "html" and named.get("lang") not in (None, self.html_lang))
        )
        self.stack.append((tag, skipped or (self.stack[-1][1] if self.stack else False)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if data.strip() and not (self.stack and self.stack[-1][1]):
            self.nodes.append(" ".join(data.split()))


def untranslated(html: str) -> tuple[str, list[str]]:
    """(<html lang>, text nodes that are an English msgid whose French differs)."""
    parser = _Text()
    parser.feed(html)
    fr = translate.texts("fr")
    english = {" ".join(k.split()) for k, v in fr.items() if k != v}
    return parser.html_lang, [node for node in parser.nodes if node in english]


def assert_french(html: str) -> None:
    lang, left = untranslated(html)
    assert lang == "fr"
    assert not left, f"English left on a French page: {left}"


@pytest.fixture()
def french(admin: Any) -> Any:
    """The admin's client with French chosen by the switch."""
    response = admin.get("/recordings?lang=fr")
    assert response.status == 200
    return admin


@pytest.fixture()
def admin(appliance: Any) -> Any:
    client = appliance.client()
    client.login("admin")
    return client


def test_setup_page_in_french(fresh: Any) -> None:
    visitor = fresh.client()
    page = visitor.get("/setup?lang=fr")
    assert page.status == 200
    assert_french(page.text)
    assert "Premier démarrage : créer l'administrateur" in unescape(page.text)
    # a wrong setup code: the error, tied to the form, is in French too
    sent = visitor.post(
        "/setup", {"code": "WRONG", "username": "boss", "password": "x" * 12, "confirm": "x" * 12}
    )
    assert sent.status in (400, 403), sent.status
    assert "Le code d'installation est erroné" in unescape(sent.text)
    assert_french(sent.text)


def test_login_page_in_french(appliance: Any) -> None:
    login = appliance.client().get("/login?lang=fr")
    assert login.status == 200
    assert_french(login.text)
    assert ">Connexion</h1>" in login.text


def test_staff_pages_render_in_french(appliance: Any, french: Any) -> None:
    listing = french.get("/recordings")
    assert listing.status == 200
    assert_french(listing.text)
    assert "enregistrement(s), les plus récents en premier." in listing.text
    match = re.search(r'href="/recordings/([0-9A-Za-z-]+)"', listing.text)
    assert match
    rec_id = match.group(1)
    pages = [
        f"/recordings/{rec_id}",
        f"/recordings/{rec_id}/erase",
        "/status",
        "/account",
        "/users",
        "/selftest",
        "/subjects",
        "/subjects/donotrecord",
        "/audit",
        "/no-such-page",
    ]
    for path in pages:
        page = french.get(path)
        assert page.status in (200, 404), (path, page.status)
        assert_french(page.text)
    assert "Numéro composé" in french.get(f"/recordings/{rec_id}").text
    assert "Cette page n'existe pas." in unescape(french.get("/no-such-page").text)
    # a self-test run: titles and verdicts translated
    french.post("/selftest", {})
    selftest = french.get("/selftest")
    assert_french(selftest.text)
    assert "Carte et microcontrôleur du HAT" in selftest.text


def test_person_pages_render_in_french(appliance: Any) -> None:
    officer = appliance.client()
    officer.login("privacy")
    officer.get("/subjects?lang=fr")
    found = officer.post("/subjects", {"number": "+33123456789"})
    assert found.status == 303, found.text
    person_path = found.header("Location") or ""
    person = officer.get(person_path)
    assert person.status == 200
    assert_french(person.text)
    assert "Enregistrer une demande" in person.text
    for action in ("export", "erase", "object", "restrict"):
        page = officer.get(f"{person_path}/{action}")
        assert page.status == 200, (action, page.status)
        assert_french(page.text)


# -- (e) the switch ----------------------------------------------------------------------------
def test_lang_parameter_sets_a_cookie_that_later_pages_follow(appliance: Any) -> None:
    client = appliance.client()
    first = client.get("/login?lang=fr")
    cookie = next(c for c in first.headers.get_all("Set-Cookie") or [] if c.startswith("lang="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("lang=fr;")
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in cookie.lower() and "max-age=31536000" in cookie.lower()
    assert first.header("Content-Language") == "fr"
    later = client.get("/login")
    assert '<html lang="fr">' in later.text
    assert ">Connexion</h1>" in later.text
    # the switch is on the page: each language named in itself, this page again
    assert 'href="/login?lang=en" hreflang="en" lang="en">English</a>' in later.text
    assert 'hreflang="fr" lang="fr" aria-current="true">Français</a>' in later.text
    back = client.get("/login?lang=en")
    assert '<html lang="en">' in back.text and ">Log in</h1>" in back.text
    assert '<html lang="en">' in client.get("/login").text


def test_configured_language_is_the_default(tmp_path: Path) -> None:
    from webtest_support import Appliance, FakeClock

    from callrec.config import Config, StorageConfig, WebConfig
    from callrec.storage.open_store import open_store
    from callrec_web.app import make_app
    from callrec_web.context import WebContext
    from callrec_web.server import WebServer
    from callrec_web.users import UserStore

    config = Config(storage=StorageConfig(data_dir=str(tmp_path)), web=WebConfig(language="fr"))
    store = open_store(config)
    users = UserStore(tmp_path / "users.json")
    ctx = WebContext(
        config=config, store=store, users=users, status=lambda: {}, setup_code=lambda: "CODE"
    )
    server = WebServer(make_app(ctx), "127.0.0.1", 0, threads=2, poll_interval_s=0.02)
    server.start()
    try:
        app = Appliance(server, store, users, FakeClock(), ctx, {}, ["CODE"])
        client = app.client()
        page = client.get("/setup")
        assert_french(page.text)
        assert "Créer l'administrateur" in unescape(page.text)
        english = client.get("/setup?lang=en")
        assert '<html lang="en">' in english.text
        assert ">Create the administrator</button>" in english.text
    finally:
        server.stop()
        store.close()


# -- (f) the daemon's sentences: self-test details and remedies, faults, reasons, counters ------
def _english_sentences(html: str, sentences: list[str]) -> list[str]:
    text = " ".join(unescape(html).split())
    return [s for s in sentences if s and " ".join(s.split()) in text]


def _judged_report() -> dict[str, Any]:
    """A report of the real verdicts, failing and warning items among them, as the page gets
    it after the JSON round trip of selftest.json."""
    import json
    from datetime import UTC, datetime

    from callrec import selftest as st

    results = (
        st.judge_mcu(st.McuMeasure("sim", False, None, None, 1, None)),
        st.judge_pins(st.PinsMeasure(True, (True, True), True, False, None, True)),
        st.judge_audio(st.AudioMeasure("hat", True, True, True, True,
                                       st.Loopback(-45.2, 0.91, 0.5, -90.0, 1000))),
        st.judge_storage([
            st.VolumeMeasure("sd", "the SD card", True, "", True, "", 0.012, 50_000_000,
                             30_000_000_000),
            st.VolumeMeasure("usb", "the USB stick", False, "", False, "", None, 0, 0),
        ], 100_000_000),
        st.judge_index(12, ""),
        st.judge_clock(st.ClockMeasure(datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC), False,
                                       "NTP (systemd-timesyncd)")),
        st.judge_keys(st.KeysMeasure(True, False, None, None, None, "", False)),
    )
    report = st.Report("2025-03-04T05:06:00+00:00", "2025-03-04T05:06:07+00:00", "daemon",
                       "sim", results)
    return st.Report.from_dict(json.loads(json.dumps(report.as_dict()))).as_dict()


def test_selftest_details_and_remedies_in_french(appliance: Any, french: Any) -> None:
    report = _judged_report()
    assert {r["status"] for r in report["results"]} == {"ok", "warn", "fail"}
    appliance.ctx.selftest.report = lambda: report  # the fake daemon answers with real verdicts
    assert french.post("/selftest", {}).status == 303
    page = french.get("/selftest")
    assert page.status == 200
    assert_french(page.text)
    english = [r[k] for r in report["results"] for k in ("detail", "remedy") if r[k]]
    assert not _english_sentences(page.text, english), "English sentences on a French page"
    shown = " ".join(unescape(page.text).split())
    for french_text in (
        "carte sim : pas de réponse du MCU sur le pty du simulateur de ligne",
        "le voyant d'enregistrement (GPIO27) n'a pas suivi; ligne de réinitialisation du MCU "
        "relâchée",
        "relâchez le bouton ; s'il reste enfoncé, vérifiez son câblage",
        "la tonalité est revenue faible : tonalité revenue à -45 dBFS (jouée à -12), "
        "pureté 0.91, entendue 0.50 s sur 0.50 s",
        "la carte SD : écriture, synchronisation et relecture réussies (fsync 12 ms), 50 MB "
        "libres sur 30,000 MB, sous les 100 MB à garder libres; la clé USB : non insérée",
        "lisible, 12 enregistrement(s)",
        "2025-03-04 05:06:07 UTC, NON synchronisée (NTP (systemd-timesyncd))",
        "la clé de l'appareil ne peut pas être ouverte : absente",
        "démarrez le simulateur de ligne (`callrec sim line`), puis relancez l'autotest",
    ):
        assert french_text in shown, french_text
    # The same report in English: the daemon's sentences, unchanged.
    english_page = french.get("/selftest?lang=en").text
    assert not set(english) - set(_english_sentences(english_page, english))
    # The API gives the English sentences, and the phrases for other tools.
    api = french.request("GET", "/api/v1/selftest").json()
    assert [r["detail"] for r in api["results"]] == [r["detail"] for r in report["results"]]


def test_an_old_report_without_phrases_shows_its_english(appliance: Any, french: Any) -> None:
    report = _judged_report()
    for r in report["results"]:
        r.pop("detail_t"), r.pop("remedy_t")
    appliance.ctx.selftest.report = lambda: report
    french.post("/selftest", {})
    page = french.get("/selftest").text
    assert "the tone came back weak: tone back at -45 dBFS" in unescape(page)


def test_status_faults_reasons_and_counters_in_french(
    appliance: Any, french: Any, tmp_path: Path
) -> None:
    import json
    from types import SimpleNamespace
    from typing import cast

    from callrec.clock import ClockState
    from callrec.config import Config
    from callrec.phrase import phrase
    from callrec.status import CLOCK_FAULT_AFTER_S, StatusBoard

    board = SimpleNamespace(
        set_fault_led=lambda on: None, recording_led=False,
        mcu=SimpleNamespace(connected=True, version="hat-1.2"),
        audio=SimpleNamespace(is_open=True))
    now = [0.0]
    status = StatusBoard(Config(runtime_dir=str(tmp_path)), cast(Any, board),
                         clock=lambda: ClockState(False, "NTP (systemd-timesyncd)", "no server"),
                         monotonic=lambda: now[0])
    now[0] += CLOCK_FAULT_AFTER_S
    status.check_clock()
    # As the daemon sets them (daemon.py): a missing prompt, a board fault without detail.
    status.set_fault("announcement", phrase(
        "No announcement ({problems}): calls are not recorded until a valid prompt is "
        "installed", problems="prompt file missing: in.wav"))
    status.set_fault("mcu", phrase("failed"))
    flow = SimpleNamespace(state=SimpleNamespace(value="not_recorded"), call=None,
                           not_recorded_reason="the caller is on the do-not-record list",
                           private_until=lambda at: None)
    status.publish(cast(Any, flow))
    snap = json.loads((tmp_path / "status.json").read_text())  # as the CLI reads it too
    faults = {f["part"]: f["detail"] for f in snap["faults"]}
    assert faults["mcu"] == "failed" and faults["announcement"].startswith(
        "No announcement (prompt file missing: in.wav): calls are not recorded")
    assert faults["clock"].startswith("not synchronised 10 minutes after start")
    snap["sip"] = {"line": "sip", "calls": 0, "recording": 0,
                   "outcomes": {"recorded": 2, "ended_during_announcement": 1},
                   "transport": {"received": 5, "sent": 4, "dropped": {"stranger": 3}},
                   "relay": {"forwarded": 9, "prompt_packets": 0,
                             "ignored": {"no_destination": 1}}}
    appliance.status.update(snap)
    page = french.get("/status")
    assert page.status == 200
    assert_french(page.text)
    english = [*faults.values(), "line audio device", "HAT microcontroller link",
               "the caller is on the do-not-record list", "ended during announcement",
               "no destination"]
    assert not _english_sentences(page.text, english), "English sentences on a French page"
    shown = " ".join(unescape(page.text).split())
    for french_text in (
        "annonce : Aucune annonce (prompt file missing: in.wav) : les appels ne sont pas "
        "enregistrés tant qu'une annonce valide n'est pas installée",
        "horloge : non synchronisée 10 minutes après le démarrage",
        "liaison avec le microcontrôleur du HAT : en échec",
        ": l'appelant figure sur la liste des numéros à ne pas enregistrer",
        "terminés pendant l'annonce 1, enregistrés 2",
        "inconnus 3",
        "sans destination 1",
    ):
        assert french_text in shown, french_text
    # The API keeps the English for tools, with the phrase alongside.
    api = french.request("GET", "/api/v1/status").json()
    clock = next(f for f in api["faults"] if f["part"] == "clock")
    assert clock["detail"] == faults["clock"] and clock["detail_t"]["values"] == {"minutes": 10}
    assert "shown" not in api
    # The page's script refreshes from /api/v1/status?lang=<the page's>: the same French words.
    assert 'data-source="/api/v1/status?lang=fr"' in page.text
    live = french.request("GET", "/api/v1/status?lang=fr").json()["shown"]
    assert "horloge : non synchronisée 10 minutes après le démarrage" in " ".join(live["faults"])
    assert live["reason"] == "l'appelant figure sur la liste des numéros à ne pas enregistrer"
    assert live["counters"]["stranger"] == "inconnus"
    assert french.request("GET", "/api/v1/status?lang=en").json()["shown"]["faults"] == [
        f"{name}: {detail}" for name, detail in (
            (f["name"], f["detail"]) for f in api["faults"])]
