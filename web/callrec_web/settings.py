"""The Settings pages (technician and administrator, permission settings.manage).

Each form edits a few keys of the configuration file through callrec.config_store, which keeps
the file's comments, validates the whole result as the daemon will read it and writes it
atomically; the daemon applies it by restarting once no call is in progress. A refused value
is shown next to its field with the configuration's own explanation, and nothing is written.
Network and time are shown, never changed, here.

Forms are described by `Field`s built per request with the request's translator, so that
labels and help are `_("English")` texts like any template's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bottle
from bottle import HTTPResponse, request

from callrec.clock import clock_state
from callrec.config import Config
from callrec.config_store import SettingsError, explanation
from callrec_web import netinfo, uilang
from callrec_web import permissions as p
from callrec_web.access import Runtime, form, principal, see_other
from callrec_web.linestatus import snapshot
from callrec_web.pages import render
from callrec_web.translate import Translator

Tr = Callable[..., str]
TEXT, INT, FLOAT, BOOL, CHOICE = "text", "int", "float", "bool", "choice"


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    kind: str
    label: str
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for CHOICE

    @property
    def name(self) -> str:
        """The form field's name and the key's name in messages: "section.key"."""
        return f"{self.section}.{self.key}"

    @property
    def html_id(self) -> str:
        return f"f-{self.section}-{self.key}".replace("_", "-")


@dataclass(frozen=True)
class Group:
    legend: str
    fields: tuple[Field, ...]
    intro: str = ""


@dataclass(frozen=True)
class Form:
    path: str
    title: str
    intro: str
    groups: tuple[Group, ...]

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(f for g in self.groups for f in g.fields)


def line_form(_: Tr) -> Form:
    countries = (
        ("fr", _("France: French tones, caller ID by V.23 FSK (or DTMF) before the first ring")),
        ("eu", _("Europe (ETSI): European tones, caller ID by V.23 FSK (ETSI EN 300 659)")),
        ("us", _("United States: North American tones, caller ID by Bell 202 FSK between "
                 "the first and second rings")),
    )
    return Form("/settings/line", _("Analog line"), _(
        "The telephone line the box is connected in series with. A change applies when no "
        "call is in progress."), (
        Group(_("Line"), (
            Field("line", "name", TEXT, _("Line name"),
                  _("Shown in the recordings list and the status; no personal data.")),
            Field("line", "country", CHOICE, _("Country"),
                  _("Sets the call-progress tone plan (dial, busy, ringback) the box listens "
                    "for and the caller-ID standard it decodes."), countries),
        )),
        Group(_("What is recorded"), (
            Field("line", "record_incoming", BOOL, _("Record incoming calls")),
            Field("line", "record_outgoing", BOOL, _("Record outgoing calls")),
            Field("line", "never_record", BOOL, _("Never record this line"),
                  _("No announcement and no recording at all, whatever the direction (for "
                    "example the staff representatives' line).")),
        )),
        Group(_("Timing"), (
            Field("line", "outgoing_answer_delay_s", FLOAT, _("Outgoing answer delay (seconds)"),
                  _("Most exchanges do not signal when the called party answers: the "
                    "announcement starts this long after the last dialled digit, unless a "
                    "polarity reversal comes first.")),
            Field("line", "ring_timeout_s", FLOAT, _("Ring timeout (seconds)"),
                  _("A silence between rings longer than this ends an unanswered call.")),
        )),
    ))


def sip_form(_: Tr) -> Form:
    return Form("/settings/sip", _("SIP line"), _(
        "The box can also sit between the office's phones or PBX and its SIP provider. "
        "Addresses are host:port ([address]:port for IPv6)."), (
        Group(_("SIP line"), (
            Field("sip", "enabled", BOOL, _("SIP line enabled")),
            Field("sip", "name", TEXT, _("Line name")),
            Field("sip", "lan", TEXT, _("Office side: the box's address"),
                  _("The box's own IP address and port on the office network.")),
            Field("sip", "trunk", TEXT, _("Provider side: the box's address"),
                  _("May be the same as the office side.")),
            Field("sip", "pbx_peer", TEXT, _("The office's PBX or phone")),
            Field("sip", "trunk_peer", TEXT, _("The provider's SIP server")),
            Field("sip", "rtp_ports", TEXT, _("Media ports (first-last)"),
                  _("Four UDP ports per call.")),
            Field("sip", "media_timeout_s", FLOAT, _("Media timeout (seconds)"),
                  _("A call whose audio stopped this long is released.")),
            Field("sip", "trunk_keepalive_s", FLOAT, _("Provider keep-alive (seconds)"),
                  _("0: none; else 5 to 3600.")),
        )),
        Group(_("What is recorded"), (
            Field("sip", "announce_to_office", BOOL, _("Also play the announcement to the "
                                                       "office side")),
            Field("sip", "record_incoming", BOOL, _("Record incoming calls")),
            Field("sip", "record_outgoing", BOOL, _("Record outgoing calls")),
            Field("sip", "never_record", BOOL, _("Never record this line")),
        )),
        Group(_("Provider credentials"), (
            Field("sip", "trunk_username", TEXT, _("User name")),
            Field("sip", "trunk_password_file", TEXT, _("Password file"),
                  _("The absolute path of a file (readable by the callrec service only) that "
                    "holds the password. The password itself is never written here.")),
            Field("sip", "trunk_realm", TEXT, _("Realm"), _("Empty: any realm.")),
        )),
    ))


def storage_form(_: Tr) -> Form:
    formats = (
        ("compact", _("Compact (Opus): about 450 hours per GB, plays in every browser")),
        ("lossless", _("Lossless (FLAC): exact, about half the size of WAV")),
        ("wav", _("WAV: kept as captured, about 17 hours per GB")),
    )
    return Form("/settings/storage", _("Retention and storage"), _(
        "How long recordings are kept and where. Retention erases the oldest recordings first; "
        "recordings on hold, restricted or in progress are never erased."), (
        Group(_("Retention"), (
            Field("retention", "max_age_days", INT, _("Maximum age (days)"),
                  _("Recordings older than this are erased. 180 days is the six months the "
                    "CNIL allows for call recordings at work.")),
            Field("retention", "keep_forever", BOOL, _("Keep recordings forever"),
                  _("No age limit at all: only a deliberate choice, for a documented reason.")),
            Field("retention", "quota_gb", FLOAT, _("Quota (GB)"),
                  _("The most recordings may use on each volume; 0: no quota, only free "
                    "space limits them.")),
            Field("retention", "min_free_mb", INT, _("Free space kept (MB)"),
                  _("Kept free on each volume for the system, the index and the next call.")),
        )),
        Group(_("Storage"), (
            Field("storage", "audio_format", CHOICE, _("Audio format"),
                  _("How a recording is kept once the call is over."), formats),
            Field("storage", "prefer_usb", BOOL, _("Record to the USB stick when one is "
                                                   "usable"),
                  _("Otherwise, and whenever the stick fails, recordings go to the SD card.")),
        )),
    ))


def language_form(_: Tr) -> Form:
    return Form("/settings/language", _("Language"), _(
        "The language of these pages for everyone who has not chosen another one with the "
        "switch at the top of the page."), (
        Group(_("Language"), (
            Field("web", "language", CHOICE, _("Language of the web UI"), "",
                  (("en", "English"), ("fr", "Français"))),
        )),
    ))


def controller_form(_: Tr) -> Form:
    return Form("/settings/controller", _("Who is responsible"), _(
        "The office that decides why calls are recorded (the controller, GDPR art. 4(7)). The "
        "privacy notice, the record of processing and every information sheet given to a "
        "person show these texts: fill in at least the name, the address and the contact."), (
        Group(_("The controller"), (
            Field("controller", "name", TEXT, _("Name of the office")),
            Field("controller", "address", TEXT, _("Postal address")),
            Field("controller", "contact", TEXT, _("Contact for privacy requests"),
                  _("An e-mail address or a telephone number where people exercise their "
                    "rights.")),
            Field("controller", "dpo_contact", TEXT, _("Data protection officer"),
                  _("Their contact, if the office has named one; otherwise leave empty.")),
        )),
        Group(_("The processing"), (
            Field("controller", "purposes", TEXT, _("Purposes"),
                  _("Why calls are recorded, as people will read it.")),
            Field("controller", "legal_basis", TEXT, _("Legal basis")),
            Field("controller", "recipients", TEXT, _("Recipients"),
                  _("Who may hear the recordings.")),
            Field("controller", "supervisory_authority", TEXT, _("Supervisory authority"),
                  _("Where people may complain.")),
        )),
    ))


def privacy_form(_: Tr) -> Form:
    return Form("/settings/privacy", _("Saying no"), _(
        "How callers and staff keep a call out of recording, and how long the access log is "
        "kept."), (
        Group(_("Callers and staff"), (
            Field("privacy", "refusal_key", TEXT, _("Refusal key"),
                  _("The key a caller presses during the announcement to refuse the "
                    "recording (0-9, * or #); empty: no refusal by key. The default "
                    "announcements say which key.")),
            Field("privacy", "privacy_prefix", TEXT, _("Private call prefix"),
                  _("Dialled before a number, it keeps that call out of recording; the "
                    "exchange receives it too, so choose one it ignores. Empty: off.")),
            Field("privacy", "privacy_button_window_s", FLOAT,
                  _("Privacy button window (seconds)"),
                  _("After a press on the privacy button, the next call that starts within "
                    "this time is not recorded.")),
        )),
        Group(_("Access log"), (
            Field("privacy", "audit_retention_days", INT, _("Access log kept (days)"),
                  _("It must outlive the recordings it speaks of: at least the retention "
                    "age plus a month.")),
        )),
    ))


def announced_form(_: Tr) -> Form:
    played = (
        ("", _("One announcement, in the language of the installed prompt (as before)")),
        ("fr", _("French")), ("en", _("English")),
        ("fr en", _("French, then English")), ("en fr", _("English, then French")),
    )
    return Form("/settings/announcement-languages", _("Languages announced"), _(
        "Which announcements play on each call, one after the other. Each language plays its "
        "active version, chosen on the Announcements page."), (
        Group(_("Languages announced"), (
            Field("announcement", "incoming_languages", CHOICE, _("Incoming calls"), "", played),
            Field("announcement", "outgoing_languages", CHOICE, _("Outgoing calls"), "", played),
        )),
    ))


FORMS: dict[str, Callable[[Tr], Form]] = {
    "line": line_form, "sip": sip_form, "storage": storage_form, "language": language_form,
    "controller": controller_form, "privacy": privacy_form,
    "announcement-languages": announced_form,
}


# -- reading a form: pure ---------------------------------------------------------------------
def current_value(config: Config, f: Field) -> Any:
    return getattr(getattr(config, f.section), f.key)


def shown(value: Any) -> str:
    """A value as the form shows it (floats without a needless '.0')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_form(fields: tuple[Field, ...], raw: dict[str, str], config: Config,
              _: Tr) -> tuple[dict[tuple[str, str], Any], dict[str, str]]:
    """The changes a submitted form asks for (only keys whose value differs from `config`)
    and the fields refused, as {"section.key": message}."""
    changes: dict[tuple[str, str], Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        text = raw.get(f.name, "").strip()
        value: Any
        if f.kind == BOOL:
            value = raw.get(f.name) == "on"
        elif f.kind == INT:
            try:
                value = int(text)
            except ValueError:
                errors[f.name] = _("Enter a whole number.")
                continue
        elif f.kind == FLOAT:
            try:
                value = float(text.replace(",", "."))
            except ValueError:
                errors[f.name] = _("Enter a number.")
                continue
            if not math.isfinite(value):
                errors[f.name] = _("Enter a number.")
                continue
        elif f.kind == CHOICE:
            value = text
            if value not in {v for v, _label in f.choices}:
                errors[f.name] = _("Choose one of the options.")
                continue
        else:
            value = text
            if any(ord(c) < 0x20 for c in value):
                errors[f.name] = _("Use one line of text.")
                continue
        if f.kind in (INT, FLOAT) and value < 0:
            errors[f.name] = _("Must not be negative.")
            continue
        if value != current_value(config, f):
            changes[(f.section, f.key)] = value
    # Keeping recordings forever is written as no age limit: the configuration refuses an age
    # next to keep_forever, so the form does not make the technician clear it by hand.
    keep = changes.get(("retention", "keep_forever"), config.retention.keep_forever)
    if any(f.name == "retention.keep_forever" for f in fields) and keep:
        changes.pop(("retention", "max_age_days"), None)
        errors.pop("retention.max_age_days", None)
        if config.retention.max_age_days != 0 or ("retention", "keep_forever") in changes:
            changes[("retention", "max_age_days")] = 0
    return changes, errors


# -- the pages ----------------------------------------------------------------------------------
def install(app: bottle.Bottle, rt: Runtime) -> None:
    ctx = rt.ctx

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=p.SETTINGS_MANAGE)
            return fn

        return add

    def tr() -> Translator:
        return Translator(uilang.current(rt.views.lang))

    def unavailable(error: str) -> str:
        """The file cannot be edited (missing, unreadable, invalid): say so, change nothing."""
        return render(rt, "settings_unavailable.tpl", 409, error=error,
                      path=str(ctx.settings.path) if ctx.settings else "")

    def who() -> str:
        caller = principal()
        return caller.name if caller else "anonymous"

    @route("/settings", "GET")
    def index() -> str:
        snap = snapshot(ctx.status)
        config: Config | None = None
        error = ""
        if ctx.settings is None:
            error = tr()("No configuration file is being served here: the settings cannot be "
                         "changed from this page.")
        else:
            try:
                config = ctx.settings.current()
            except SettingsError as exc:
                error = str(exc)
        clock = snap.get("clock")
        if clock is None:  # not from the daemon (a page served without it): read it here
            state = clock_state()
            clock = {"synchronised": state.synchronised, "source": state.source,
                     "detail": state.detail}
        return render(rt, "settings.tpl", config=config, error=error, snap=snap,
                      clock=clock, now=datetime.now().astimezone(), zone=time_zone(),
                      host=netinfo.hostname(), addresses=netinfo.addresses(),
                      pending=pending(), saved=request.query.get("saved", ""))

    def pending() -> bool:
        return bool(ctx.settings is not None and ctx.settings.pending()) or \
            snapshot(ctx.status).get("config_pending") is True

    def page(name: str, status: int = 200, errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None, general: str = "") -> str:
        _ = tr()
        spec = FORMS[name](_)
        if ctx.settings is None:
            return unavailable(_("No configuration file is being served here."))
        try:
            config = ctx.settings.current()
        except SettingsError as exc:
            return unavailable(str(exc))
        if values is None:
            values = {f.name: shown(current_value(config, f)) for f in spec.fields}
            values.update({f.name: "on" for f in spec.fields
                           if f.kind == BOOL and current_value(config, f)})
        return render(rt, "settings_form.tpl", status, form=spec, values=values,
                      errors=errors or {}, general=general, pending=pending(),
                      saved=request.query.get("saved", ""), section_name=name)

    def save(name: str) -> str | HTTPResponse:
        _ = tr()
        spec = FORMS[name](_)
        if ctx.settings is None:
            return unavailable(_("No configuration file is being served here."))
        try:
            config = ctx.settings.current()
        except SettingsError as exc:
            return unavailable(str(exc))
        raw = {f.name: form(f.name, 1000) for f in spec.fields}
        changes, errors = read_form(spec.fields, raw, config, _)
        if errors:
            return page(name, 400, errors, raw)
        try:
            result = ctx.settings.update(changes, who())
        except SettingsError as exc:
            reason = explanation(str(exc))
            if exc.key in {f.name for f in spec.fields}:
                return page(name, 400, {exc.key: reason}, raw)
            return page(name, 400, {}, raw, general=str(exc))
        return see_other(f"{spec.path}?saved={result.when}")

    for name in FORMS:
        def show(name: str = name) -> str:
            return page(name)

        def post(name: str = name) -> str | HTTPResponse:
            return save(name)

        route(f"/settings/{name}", "GET")(show)
        route(f"/settings/{name}", "POST")(post)



def time_zone() -> str:
    """The system's time zone: its name from /etc/localtime's link (e.g. Europe/Paris) and
    the current abbreviation and offset."""
    name = ""
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            name = target.split("zoneinfo/", 1)[1]
    except OSError:
        name = os.environ.get("TZ", "")
    local = datetime.now().astimezone()
    offset = local.strftime("%z")
    label = f"{local.tzname()} (UTC{offset[:3]}:{offset[3:]})"
    return f"{name}, {label}" if name else label

