"""The privacy notice (/privacy, public) and the record of processing (/privacy/record).

Both are generated from the configuration and the recorder's actual state (encryption, key
binding, access log, accounts), so they cannot drift from what the box does. Empty
[controller] fields are said to be unfilled, never made up.

Why the record is not public: GDPR art. 30(4) makes the record available to the supervisory
authority on request, and it details the security measures (including the missing ones, such
as an unbound key or no TLS) and which accounts can hear recordings, which is what an
attacker would look for first (ETSI EN 303 645 5.6: nothing sensitive without
authentication). Callers get everything art. 13 owes them on the notice; the record needs the
permission `processing.record` (privacy officer and administrator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import bottle
from bottle import request

import callrec
from callrec.config import ControllerConfig
from callrec_web import permissions as p
from callrec_web.access import PUBLIC, Runtime, principal
from callrec_web.i18n import LANGUAGE_NAMES, LANGUAGES, Catalog, negotiate
from callrec_web.users import ROLES

# The [controller] fields in the order a reader expects them.
CONTROLLER_FIELDS = tuple(f.name for f in fields(ControllerConfig))
# An organisation may have no DPO: an empty dpo_contact is said on the page, but it is not one
# of the gaps the administrators are warned about (it would never go away for them).
_OPTIONAL_FIELDS = frozenset({"dpo_contact"})
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# The order permissions are listed in the roles table: from the least to the most sensitive.
_PERMISSION_ORDER = (
    p.STATUS_VIEW, p.RECORDINGS_LIST, p.RECORDINGS_LISTEN, p.RECORDINGS_ERASE, p.AUDIT_VIEW,
    p.PROCESSING_RECORD, p.USERS_MANAGE, p.TOKENS_OWN,
)


@dataclass(frozen=True)
class Measure:
    """One line of the security measures; `warn` marks a gap the reader must not miss."""

    text: str
    warn: bool = False


@dataclass(frozen=True)
class RoleRow:
    role: str
    label: str
    may: list[str]
    accounts: list[str]


@dataclass
class Facts:
    """What both pages say, in one language, from the configuration and the live state."""

    controller: dict[str, str | None]  # field -> text, None when the office left it empty
    missing: list[str] = field(default_factory=list)  # labels of required fields left empty
    retention: str = ""
    refusal_key: str = ""


def page_language() -> str:
    """This request's language: ?lang= if it is one we have, else the browser's choice."""
    return negotiate(request.query.get("lang"), request.get_header("Accept-Language"))


def controller_text(config: ControllerConfig, name: str, t: Catalog) -> str | None:
    """A [controller] field for the page; the shipped default is shown in the page's language
    (the office kept our sentence, so our translation of it is what it said)."""
    value = str(getattr(config, name)).strip()
    if not value:
        return None
    default = str(getattr(ControllerConfig, name))
    if default and value == default.strip():
        return t(f"default_{name}")
    return value


def facts(rt: Runtime, t: Catalog) -> Facts:
    config = rt.ctx.config
    controller = {name: controller_text(config.controller, name, t) for name in CONTROLLER_FIELDS}
    missing = [t(f"field_{name}") for name, value in controller.items()
               if value is None and name not in _OPTIONAL_FIELDS]
    retention = config.retention
    if retention.keep_forever:
        kept = t("retention_forever")
    else:
        kept = t("retention_days", days=retention.max_age_days)
    return Facts(controller, missing, kept, config.privacy.refusal_key)


def security_measures(rt: Runtime, t: Catalog) -> list[Measure]:
    """The art. 32 measures as this recorder applies them, gaps marked."""
    ctx = rt.ctx
    config = ctx.config
    out: list[Measure] = []
    keys = ctx.store.keys
    if config.storage.encrypt and keys is not None:
        out.append(Measure(t("sec_encrypt_on")))
        kind = keys.binding_kind
        if kind in ("otp", "file"):
            out.append(Measure(t("sec_binding_bound", kind=t(f"binding_{kind}"))))
        else:
            out.append(Measure(t("sec_binding_none", setting=config.storage.key_binding), True))
        if config.storage.prefer_usb:
            out.append(Measure(t("sec_usb")))
    else:
        out.append(Measure(t("sec_encrypt_off"), True))
    out.append(Measure(t("sec_access")))
    out.append(Measure(t("sec_passwords")))
    out.append(Measure(t("sec_sessions", idle=config.web.session_idle_minutes,
                         hours=config.web.session_max_hours)))
    if ctx.https:
        out.append(Measure(t("sec_tls_on")))
    elif config.web.host in _LOOPBACK:
        out.append(Measure(t("sec_tls_local", host=config.web.host)))
    else:
        out.append(Measure(t("sec_tls_off", host=config.web.host), True))
    if ctx.audit is not None:
        out.append(Measure(t("sec_log_on", days=config.privacy.audit_retention_days)))
    else:
        out.append(Measure(t("sec_log_off"), True))
    out.append(Measure(t("sec_announcement")))
    key = config.privacy.refusal_key
    out.append(Measure(t("sec_refusal_on", key=key)) if key else Measure(t("sec_refusal_off")))
    prefix = config.privacy.privacy_prefix
    out.append(Measure(t("sec_staff", prefix=t("sec_prefix", prefix=prefix) if prefix else "")))
    if config.line.never_record:
        out.append(Measure(t("sec_never", line=config.line.name)))
    out.append(Measure(t("sec_minimise")))
    return out


def retention_lines(rt: Runtime, t: Catalog) -> list[str]:
    config = rt.ctx.config
    retention = config.retention
    if retention.keep_forever:
        lines = [t("rec_retention_forever")]
    else:
        lines = [t("rec_retention_days", days=retention.max_age_days,
                   minutes=retention.check_interval_minutes)]
    if retention.quota_gb > 0:
        space = t("rec_quota", quota=f"{retention.quota_gb:g}", free=retention.min_free_mb)
    else:
        space = t("rec_free", free=retention.min_free_mb)
    lines += [t("rec_retention_space", space=space), t("rec_retention_exempt"),
              t("rec_retention_log", days=config.privacy.audit_retention_days),
              t("rec_retention_accounts")]
    return lines


def role_rows(rt: Runtime, t: Catalog) -> tuple[list[RoleRow], list[str]]:
    """Each role, what it may do and who holds it; and the accounts that can hear calls."""
    accounts = rt.ctx.users.list()
    rows = []
    for role in ROLES:
        granted = p.ROLE_PERMISSIONS.get(role, frozenset())
        ordered = [perm for perm in _PERMISSION_ORDER if perm in granted]
        ordered += sorted(granted - set(_PERMISSION_ORDER))  # added later: still listed
        rows.append(RoleRow(role, t(f"role_{role}"), [t(f"perm_{perm}") for perm in ordered],
                            [a.name for a in accounts if role in a.roles]))
    listeners = [a.name for a in accounts if p.RECORDINGS_LISTEN in p.permissions_of(a.roles)]
    return rows, listeners


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add /privacy and /privacy/record to `app`."""

    def route(path: str, perm: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, "GET", fn, perm=perm)
            return fn

        return add

    @route("/privacy", PUBLIC)
    def notice() -> str:
        lang = page_language()
        t = Catalog(lang)
        return render(rt, "privacy.tpl", lang, t, facts=facts(rt, t), path="/privacy",
                      source=rt.ctx.config.source)

    @route("/privacy/record", p.PROCESSING_RECORD)
    def record() -> str:
        lang = page_language()
        t = Catalog(lang)
        roles, listeners = role_rows(rt, t)
        generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        return render(
            rt, "privacy_record.tpl", lang, t, facts=facts(rt, t), path="/privacy/record",
            measures=security_measures(rt, t), retention=retention_lines(rt, t),
            roles=roles, listeners=listeners, generated=generated,
            source=rt.ctx.config.source, version=callrec.__version__,
        )


def render(rt: Runtime, name: str, lang: str, t: Catalog, **values: Any) -> str:
    """A page in `lang`. Unlike pages.render, it sets no cookie for visitors (there is no form
    here, so no pre-login CSRF token) and leaves pending flash messages for the next page."""
    who = principal()
    bottle.response.content_type = "text/html; charset=utf-8"
    bottle.response.set_header("Content-Language", lang)
    bottle.response.set_header("Vary", "Accept-Language, Cookie")
    switch = [(code, LANGUAGE_NAMES[code], code == lang) for code in LANGUAGES]
    ui = {key: t(f"ui_{key}") for key in ("skip", "footer", "privacy_link")}
    return rt.views.render(
        name,
        who=who,
        can=lambda perm: who is not None and who.can(perm),
        csrf=who.session.csrf if who is not None and who.session is not None else "",
        flash=[],
        page_lang=lang,
        T=t,
        languages=switch,
        ui=ui,
        **values,
    )
