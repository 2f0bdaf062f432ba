"""Sentences the daemon builds (self-test details, faults) shown in the page's language.

The daemon sends each such sentence twice: in English (for the CLI, the API and the logs) and
as phrases, {"text": English template, "values": {name: value or phrase}} (callrec.selftest
.phrase). A page translates the template and fills in the values, translated first when they
are phrases themselves; several phrases make one sentence joined by "; ", as in English.
Anything malformed (a report saved by an older version, a hand-edited file) shows the English.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Translate = Callable[..., str]
_MAX_DEPTH = 4  # phrases nest one or two deep; a deeper one is not ours


def _one(_: Translate, p: object, depth: int) -> str | None:
    if depth > _MAX_DEPTH or not isinstance(p, dict):
        return None
    text, values = p.get("text"), p.get("values")
    if not isinstance(text, str) or not isinstance(values, dict):
        return None
    filled: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            shown = _one(_, value, depth + 1)
            if shown is None:
                return None
            filled[str(name)] = shown
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            filled[str(name)] = value
        else:
            return None
    return _(text, **filled)


def say(_: Translate, phrases: object, english: str) -> str:
    """`phrases` (a list, or one phrase) in the language of `_`; else `english`."""
    items = [phrases] if isinstance(phrases, dict) else phrases
    if not isinstance(items, list) or not items:
        return english
    shown = [_one(_, p, 0) for p in items]
    if any(s is None for s in shown):
        return english
    return "; ".join(s for s in shown if s is not None)
