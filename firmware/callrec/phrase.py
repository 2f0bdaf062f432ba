"""Sentences for people that the daemon builds, kept translatable: phrases.

A phrase is an English template (a PO msgid of the web UI) and its values, each a string, a
number or a phrase itself: {"text": "the tone came back weak: {measured}", "values": {...}}.
Plain JSON, as the self-test report and the status are saved so. The daemon keeps the English
(`english()`) for the CLI, the JSON API and the logs; the web UI translates the template and
fills the values in (callrec_web/phrases.py). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Phrase = dict[str, Any]


def N_(text: str) -> str:
    """Marks an English text that the web UI translates where it shows it (PO msgid)."""
    return text


def phrase(text: str, **values: Any) -> Phrase:
    """A phrase; `text` is a literal English template (tests/web/test_translations.py finds
    the texts of phrase("...") calls and checks each has its French translation)."""
    return {"text": text, "values": values}


def english(p: Phrase) -> str:
    """The phrase in English, values filled in (nested phrases first)."""
    values = {k: english(v) if isinstance(v, dict) else v for k, v in p["values"].items()}
    return p["text"].format(**values) if values else p["text"]


def joined(parts: Sequence[Phrase]) -> str:
    """Several phrases as one English sentence, as the web UI joins them: "; "."""
    return "; ".join(english(p) for p in parts)
