"""Translations of the staff UI: `_("English text", name=value)` in templates and code.

The English text is the key (as in gettext), so a template reads as English and a new text
needs no name. The other languages live in PO files, locale/<lang>/*.po, merged per language:
one file per area of the UI, so that a translator can use any PO editor, and two changes to
different pages never touch the same file. A text without a translation shows in English; the
tests fail on any such text (tests/web/test_translations.py).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"


class PoError(ValueError):
    """A PO file that cannot be read; the message names the file and line."""


def _unquote(text: str, where: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise PoError(f"{where}: expected a quoted string, got {text!r}") from None
    if not isinstance(value, str):
        raise PoError(f"{where}: expected a quoted string, got {text!r}")
    return value


def parse_po(text: str, source: str = "<po>") -> dict[str, str]:
    """msgid → msgstr of a PO file (the subset we write: no plurals, no contexts).

    Entries with an empty msgstr or marked fuzzy are left out: they are not translated yet.
    """
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    field = ""
    fuzzy = False

    def finish() -> None:
        nonlocal current, fuzzy
        msgid, msgstr = current.get("msgid"), current.get("msgstr")
        if msgid and msgstr and not fuzzy:
            entries[msgid] = msgstr
        current, fuzzy = {}, False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line:
            finish()
            field = ""
        elif line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
        elif line.startswith(("msgid ", "msgstr ")):
            field, _, rest = line.partition(" ")
            if field == "msgid" and "msgid" in current:
                finish()
            current[field] = _unquote(rest, where)
        elif line.startswith('"') and field:
            current[field] += _unquote(line, where)
        else:
            raise PoError(f"{where}: unexpected line {line[:40]!r}")
    finish()
    return entries


@cache
def texts(lang: str, directory: Path = LOCALE_DIR) -> Mapping[str, str]:
    """Every translation of `lang` (empty for English, the language of the keys)."""
    merged: dict[str, str] = {}
    folder = directory / lang
    if folder.is_dir():
        for path in sorted(folder.glob("*.po")):
            merged.update(parse_po(path.read_text(encoding="utf-8"), str(path)))
    return merged


def N_(text: str) -> str:
    """Marks an English text kept in code and translated where it is shown, `_(text)`.

    It does nothing: it is how tests/web/test_translations.py finds the texts to check."""
    return text


class Translator:
    """`_` for one language: the translation of an English text, with {name} filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.table = texts(lang)

    def __call__(self, text: str, /, **values: object) -> str:
        return fill(self.table.get(text, text), values)


def fill(template: str, values: Mapping[str, object]) -> str:
    """`template` with its {name}s filled in; as it is if they do not fit (a translation with a
    broken placeholder shows its words, never an error page; the tests catch it)."""
    if not values:
        return template
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
