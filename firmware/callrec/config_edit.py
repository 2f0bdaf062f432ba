"""Changing keys of the configuration file's TOML text, keeping everything else as written.

The technician's comments, blank lines, key order and spelling of untouched values are their
notes on why the appliance is set up this way: a settings page that rewrote the file from the
parsed values would erase them. So only the span of the value itself is replaced (a comment
after it stays), a missing key is added at the end of its table (a missing table at the end
of the file), and the result is parsed again to prove that it says what was asked.

Pure: text in, text out. Reading and writing the file is config_store.py's job.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

TOP = ""  # the "section" of top-level keys (config_version, runtime_dir)
VERSION_KEY = (TOP, "config_version")

Value = str | int | float | bool
Changes = Mapping[tuple[str, str], Value]


class ConfigEditError(ValueError):
    """The text cannot be changed as asked (it is not TOML, or is written in a way this editor
    does not rewrite, such as an inline table); the message says why."""


# -- formatting values ------------------------------------------------------------------------
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def format_string(text: str) -> str:
    """A TOML basic string on one line: quotes, backslashes and control characters escaped
    (TOML forbids raw control characters and DEL in strings); other Unicode kept as is."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def format_value(value: Value) -> str:
    """The TOML spelling of a str, int, float or bool."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # always has a '.' or an exponent: stays a float in TOML
    if isinstance(value, str):
        return format_string(value)
    raise ConfigEditError(f"cannot write a {type(value).__name__} value in the configuration")


# -- scanning the text -----------------------------------------------------------------------
_HEADER = re.compile(r"[ \t]*\[(?!\[)[ \t]*([A-Za-z0-9_-]+|\"[^\"\n]*\")[ \t]*\][ \t]*(#.*)?$")
_ARRAY_HEADER = re.compile(r"[ \t]*\[\[")
_KEY = re.compile(r"[ \t]*((?:[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*')"
                  r"(?:[ \t]*\.[ \t]*(?:[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'))*)"
                  r"[ \t]*=[ \t]*")
_KEY_PART = re.compile(r"[A-Za-z0-9_-]+|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'")


@dataclass(frozen=True)
class _Entry:
    """A `key = value` of the text: its table, dotted key and where its value is."""

    table: str
    key: tuple[str, ...]
    line_start: int  # offset of the line the key is on
    value_start: int
    value_end: int  # just after the value (before any comment)
    line_end: int  # just after the newline ending the value's last line (or the text's end)


@dataclass(frozen=True)
class _Header:
    table: str
    line_start: int


def _key_parts(raw: str) -> tuple[str, ...]:
    parts = []
    for match in _KEY_PART.finditer(raw):
        part = match.group(0)
        parts.append(tomllib.loads(f"k = {part}")["k"] if part[0] in "\"'" else part)
    return tuple(parts)


def _skip_string(text: str, i: int) -> int:
    """The offset just after the string starting at `i` (any of TOML's four kinds)."""
    for quote in ('"""', "'''"):
        if text.startswith(quote, i):
            j = i + 3
            while True:
                k = text.find(quote, j)
                if k < 0:
                    raise ConfigEditError("a multi-line string is not closed")
                if quote == '"""':
                    backslashes = len(text[j:k]) - len(text[j:k].rstrip("\\"))
                    if backslashes % 2:  # an escaped quote: keep looking
                        j = k + 1
                        continue
                end = k + 3
                while text.startswith(quote[0], end) and end - k < 5:  # up to 2 quotes inside
                    end += 1
                return end
    quote = text[i]
    j = i + 1
    while j < len(text):
        char = text[j]
        if char == "\n":
            break
        if quote == '"' and char == "\\":
            j += 2
            continue
        if char == quote:
            return j + 1
        j += 1
    raise ConfigEditError("a string is not closed on its line")


def _skip_value(text: str, i: int) -> int:
    """The offset just after the value starting at `i`: a string, an array or inline table
    (which may span lines and hold comments), or a bare word (number, bool, date)."""
    if text[i:i + 1] in ('"', "'"):
        return _skip_string(text, i)
    if text[i:i + 1] in ("[", "{"):
        depth = 0
        j = i
        while j < len(text):
            char = text[j]
            if char in "\"'":
                j = _skip_string(text, j)
                continue
            if char == "#":
                newline = text.find("\n", j)
                j = len(text) if newline < 0 else newline
                continue
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise ConfigEditError("an array or inline table is not closed")
    j = i
    while j < len(text) and text[j] not in "#\n\r":
        j += 1
    value = text[i:j].rstrip(" \t")
    if not value:
        raise ConfigEditError("a key has no value")
    return i + len(value)


def _line_end(text: str, i: int) -> int:
    newline = text.find("\n", i)
    return len(text) if newline < 0 else newline + 1


def _scan(text: str) -> tuple[list[_Entry], list[_Header]]:
    """Every key/value and table header of `text`, in order."""
    entries: list[_Entry] = []
    headers: list[_Header] = []
    table = TOP
    i = 0
    while i < len(text):
        end = _line_end(text, i)
        line = text[i:end].rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            i = end
            continue
        if _ARRAY_HEADER.match(line):
            raise ConfigEditError("arrays of tables ([[...]]) are not used by the configuration")
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            table = _key_parts(name)[0] if name.startswith('"') else name
            headers.append(_Header(table, i))
            i = end
            continue
        key = _KEY.match(line)
        if not key:
            raise ConfigEditError(f"line {text.count(chr(10), 0, i) + 1} is not 'key = value' "
                                  "nor a [table]")
        value_start = i + key.end()
        value_end = _skip_value(text, value_start)
        entries.append(_Entry(table, _key_parts(key.group(1)), i, value_start, value_end,
                              _line_end(text, value_end)))
        i = _line_end(text, value_end)
    return entries, headers


def _find(entries: list[_Entry], section: str, key: str) -> _Entry | None:
    for entry in entries:
        if (entry.table, entry.key) == (section, (key,)):
            return entry
        if section and entry.table == TOP and entry.key == (section, key):
            return entry  # `line.country = "us"` before any table means [line] country
    return None


def _insertion(text: str, entries: list[_Entry], headers: list[_Header],
               section: str) -> tuple[int, str, str] | None:
    """Where a new key of `section` goes and what surrounds it there; None: no such table."""
    in_table = [e for e in entries if e.table == section and len(e.key) == 1]
    if in_table:
        at = in_table[-1].line_end
        return at, "" if text[:at].endswith("\n") else "\n", ""
    if section == TOP:
        if not headers:
            return len(text), "" if not text or text.endswith("\n") else "\n", ""
        at = headers[0].line_start
        # Above the comment lines that introduce the first table: they speak of it.
        lines = text[:at].splitlines(keepends=True)
        while lines and lines[-1].lstrip().startswith("#"):
            at -= len(lines.pop())
        return at, "", "" if text[at:].startswith("\n") else "\n"
    header = next((h for h in headers if h.table == section), None)
    if header is None:
        return None
    at = _line_end(text, header.line_start)
    return at, "" if text[:at].endswith("\n") else "\n", ""


def update(text: str, changes: Changes, version: int | None = None) -> str:
    """`text` with each (section, key) of `changes` set to its value; section "" is the top
    level. `version`, when given, is stamped as config_version. Raises ConfigEditError if the
    text is not TOML or the result would not say exactly what was asked."""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"the configuration is not valid TOML: {exc}") from None
    wanted: dict[tuple[str, str], Value] = dict(changes)
    if version is not None:
        wanted[VERSION_KEY] = version
    new_tables: dict[str, list[str]] = {}
    for (section, key), value in wanted.items():
        line = f"{key} = {format_value(value)}\n"
        entries, headers = _scan(text)
        entry = _find(entries, section, key)
        if entry is not None:
            text = text[:entry.value_start] + format_value(value) + text[entry.value_end:]
            continue
        place = _insertion(text, entries, headers, section)
        if place is None:
            new_tables.setdefault(section, []).append(line)
            continue
        at, before, after = place
        text = text[:at] + before + line + after + text[at:]
    for section, lines in new_tables.items():
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n" if text.strip() else "") + f"[{section}]\n" + "".join(lines)
    _check(text, wanted)
    return text


def _check(text: str, wanted: Mapping[tuple[str, str], Value]) -> None:
    """The edited text parses and holds exactly the wanted values (e.g. a key that was also
    given by an inline table would not)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"the change cannot be written into this file ({exc}); edit "
                              "the file by hand") from None
    for (section, key), value in wanted.items():
        table = data if section == TOP else data.get(section)
        got = table.get(key) if isinstance(table, dict) else None
        same = (got == value or (isinstance(value, float) and isinstance(got, float)
                                 and math.isnan(value) and math.isnan(got)))
        if not same or type(got) is not type(value):
            where = f"{section}.{key}" if section else key
            raise ConfigEditError(f"{where} could not be changed in this file; edit the file "
                                  "by hand")
