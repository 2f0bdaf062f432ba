"""Upgrade an older configuration file's text to the current `config_version`.

Pure: text in, text out. The installer (`callrec config migrate`, run by install.sh on an
upgrade) writes the result; the daemon itself reads every older version as it is (migration
is additive), so a box whose file was not migrated yet still starts.

A technician's comments and layout are part of the file's value (they explain why a setting
is what it is), so each step edits the text minimally instead of re-serialising the TOML.
Each step is checked: the migrated text must parse to exactly the old values plus the step's
own changes, or the step refuses (MigrationError) and the file is left as it was.

History of the schema, from the shipped sample configs (hw/config/) and config.py:
- version 1: every file before config_version existed (no key was ever renamed or removed
  between the first sample config and version 2);
- version 2: the file says `config_version = 2` (top level, before the first table).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any

CURRENT_VERSION = 2

# A table header line: [name] or [[name]], possibly indented, possibly followed by a comment.
_TABLE = re.compile(r"^[ \t]*\[")
# An existing top-level `config_version = N` line (N a plain integer, maybe a comment after).
_VERSION_LINE = re.compile(r"^(?P<head>[ \t]*config_version[ \t]*=[ \t]*)(?P<value>[^#\r\n]*?)"
                           r"(?P<tail>[ \t]*(?:#.*)?)$", re.M)
_STAMP_COMMENT = ("# The configuration's schema version: `callrec config migrate` (run by\n"
                  "# install.sh on an upgrade) brings an older file up to date.\n")


class MigrationError(ValueError):
    """The text cannot be migrated (invalid TOML, a newer version, or a step's check failed)."""


def version_of(data: dict[str, Any]) -> int:
    """The schema version a parsed file declares (1 when it does not say)."""
    version = data.get("config_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MigrationError(f"config_version must be a whole number from 1, not {version!r}")
    return version


def _parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MigrationError(f"invalid TOML: {exc}") from None


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def set_version(text: str, version: int) -> str:
    """`text` with its top-level config_version set to `version`, everything else as it was.

    An existing top-level line gets its value replaced; otherwise the key (with a comment
    saying what it is) goes before the first table and the comment block right above it, so
    that a comment describing that table stays attached to it. Every candidate edit is checked
    by parsing: a line that merely looks like a header (inside a multi-line string) is skipped.
    """
    before = _parse(text)
    wanted = {**before, "config_version": version}
    for candidate in _candidates(text, version):
        try:
            if tomllib.loads(candidate) == wanted:
                return candidate
        except tomllib.TOMLDecodeError:
            continue
    raise MigrationError("could not place config_version in the file without changing another "
                         f"value; add `config_version = {version}` at its top by hand")


def _candidates(text: str, version: int) -> list[str]:
    """Possible edits, the most natural first; set_version keeps the first that parses right."""
    nl = _newline(text)
    out: list[str] = []
    for match in _VERSION_LINE.finditer(text):
        out.append(text[:match.start("value")] + str(version) + text[match.end("value"):])
    lines = text.splitlines(keepends=True)
    block = _STAMP_COMMENT.replace("\n", nl) + f"config_version = {version}{nl}{nl}"
    for i, line in enumerate(lines):
        if not _TABLE.match(line):
            continue
        start = i
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        for at in dict.fromkeys((start, i)):  # above the table's own comment, else right above
            out.append("".join(lines[:at]) + block + "".join(lines[at:]))
    # No table at all (or none usable): at the end, after a newline if the file lacks one.
    tail = text if not text or text.endswith(("\n", "\r")) else text + nl
    out.append(tail + (nl if tail.strip() else "") + block.rstrip("\r\n") + nl)
    return out


def _to_2(text: str) -> tuple[str, list[str]]:
    """1 -> 2: stamp the version (no key was renamed or removed between the two)."""
    return set_version(text, 2), ["config_version 1 -> 2: stamped config_version = 2"]


# STEPS[v] migrates version v to v + 1.
STEPS: dict[int, Callable[[str], tuple[str, list[str]]]] = {1: _to_2}


def migrate(text: str) -> tuple[str, list[str]]:
    """(migrated text, what changed: one sentence per change); (text, []) when up to date.

    Raises MigrationError for invalid TOML or a version newer than CURRENT_VERSION.
    """
    version = version_of(_parse(text))
    if version > CURRENT_VERSION:
        raise MigrationError(f"config_version = {version} was written by a newer callrec "
                             f"(this one knows up to {CURRENT_VERSION}); upgrade the software")
    changes: list[str] = []
    while version < CURRENT_VERSION:
        text, done = STEPS[version](text)
        changes += done
        new = version_of(_parse(text))
        if new != version + 1:
            raise MigrationError(f"step {version} -> {version + 1} produced version {new}")
        version = new
    return text, changes
