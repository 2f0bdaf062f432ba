"""Template rendering and the small display helpers the templates use.

All user-visible text lives in the templates, written in English as `_("text")`, or in
messages.tpl (the English texts that the code refers to by key). Both are translated through
translate.py's PO files: the English text is the msgid, so there is one template per page
whatever the language, and each request is rendered in its own language.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import bottle

from callrec_web import uilang
from callrec_web.translate import Translator

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def local_time(iso: object, with_seconds: bool = False) -> str:
    """An ISO 8601 UTC timestamp shown in the appliance's local time; '' if unusable."""
    if not isinstance(iso, str) or not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def duration(seconds: object) -> str:
    """Seconds as m:ss or h:mm:ss; '' if unusable."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(count: object) -> str:
    """A byte count in kB/MB for people; '' if unusable."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return ""
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def field(meta: object, *path: str) -> Any:
    """A nested value of a recording's metadata (or a status snapshot), None if absent."""
    value: Any = meta
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def number(meta: dict[str, Any]) -> str:
    """The other party's number: the caller's for incoming calls, the dialled one otherwise."""
    key = "caller_number" if meta.get("direction") == "in" else "called_number"
    value = meta.get(key)
    return value if isinstance(value, str) else ""


HELPERS = {
    "local_time": local_time,
    "duration": duration,
    "size": size,
    "field": field,
    "number": number,
}


def parse_messages(text: str) -> dict[str, str]:
    """`key = text` lines (blank lines and # comments ignored) into a dict."""
    messages: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if sep:
                messages[key.strip()] = value.strip()
    return messages


class Views:
    """Renders templates in the request's language; compiled templates are kept.

    messages.tpl is the catalog of the texts that code refers to by key (flash messages,
    form errors, role names); templates show them with {{t('key')}}, translated like `_`.
    `lang` is the default language ([web] language), used when a request has chosen none.
    """

    def __init__(self, lang: str = "en", directory: Path = TEMPLATE_DIR) -> None:
        self.lang = lang
        self.directory = directory
        self._lock = threading.Lock()
        self._cache: dict[str, bottle.SimpleTemplate] = {}
        self.messages = parse_messages(str(self._template("messages.tpl").render()))

    def text(
        self, key: str, default: str | None = None, /, lang: str | None = None, **values: object
    ) -> str:
        """The catalog text for `key` (else `default`, else the key) in `lang` (the request's
        if None), with {name} filled in."""
        english = self.messages.get(key, key if default is None else default)
        translate = Translator(uilang.current(self.lang) if lang is None else lang)
        return translate(english, **values)

    def texts_in(self, lang: str) -> Any:
        """`t` for templates: catalog texts in `lang`."""

        def t(key: str, default: str | None = None, /, **values: object) -> str:
            return self.text(key, default, lang=lang, **values)

        return t

    def _template(self, name: str) -> bottle.SimpleTemplate:
        with self._lock:
            tpl = self._cache.get(name)
            if tpl is None:
                tpl = bottle.SimpleTemplate(name=name, lookup=[str(self.directory)])
                self._cache[name] = tpl
            return tpl

    def render(self, name: str, ui_lang: str | None = None, **values: Any) -> str:
        """Template `name` in `ui_lang` (else the request's language, else the default)."""
        lang = ui_lang or uilang.current(self.lang)
        values.setdefault("_", Translator(lang))
        return str(
            self._template(name).render(lang=lang, t=self.texts_in(lang), **HELPERS, **values)
        )
