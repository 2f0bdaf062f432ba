"""Month shards of the recordings index: one TinyDB file per month, each write keeping the last.

index/2026-11.json is a TinyDB document {"recordings": {doc_id: meta}} with the recordings whose
id starts with 202611. Adding a recording rewrites only its month. Every write goes through
`write_atomic` (temp file, fsync, replace, fsync directory) and first keeps the shard it replaces
as <shard>.prev (a hard link, so no extra bytes are written; a rename where links are not
supported): after a crash the shard is the old or the new version, or missing with .prev holding
the old one. index/recordings.json is a small manifest naming the shards, rewritten only when a
month begins, so that a lost shard is noticed at start.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from callrec.storage.atomic_json import AtomicJSONStorage, fsync_dir, seal, write_atomic
from callrec.storage.crypto import Sealer

TABLE = "recordings"
FORMAT = 2
SHARD_RE = re.compile(r"^(\d{4})-(\d{2})\.json$")
_NON_DIGITS = re.compile(r"\D+")


def month_of(rec_id: str) -> str:
    """'20261129T100000Z-0a1b2c3d' -> '2026-11' (the id must be well-formed)."""
    return f"{rec_id[:4]}-{rec_id[4:6]}"


def phone_key(number: object) -> str:
    """The search key of a phone number: its digits only ('+33 6 12' -> '33612')."""
    return _NON_DIGITS.sub("", number) if isinstance(number, str) else ""


def compact(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class ShardStorage(AtomicJSONStorage):
    """AtomicJSONStorage that keeps the previous version as <name>.prev and caches its data.

    The cache spares TinyDB a parse of the file before each write; `drop_cache()` frees it.
    """

    def __init__(self, path: str | os.PathLike[str], sealer: Sealer | None = None) -> None:
        super().__init__(path, sealer)
        self.prev = self.path.with_name(self.path.name + ".prev")
        self._data: dict[str, dict[str, Any]] | None = None
        self.bytes_written = 0

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._data is None:
            self._data = super().read()
        return self._data

    def seed(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data

    def drop_cache(self) -> None:
        self._data = None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        payload = seal(payload, self.path, self.sealer)
        self._data = None  # until the write succeeded
        keep_previous(self.path, self.prev)
        write_atomic(self.path, payload)
        self.bytes_written += len(payload)
        self._data = data


def keep_previous(path: Path, prev: Path) -> None:
    """Make `prev` the current content of `path` (if any) without copying it.

    Crash-safe: at any point `path` is intact, and `prev` is missing or a good older version.
    """
    if not path.exists():
        return
    prev.unlink(missing_ok=True)
    try:
        os.link(path, prev)
    except OSError:  # no hard links (FAT/exFAT): the shard is briefly absent, .prev has it
        os.replace(path, prev)
    fsync_dir(path.parent)


def shard_docs(data: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The recordings of a shard document; raises ValueError if it is not one."""
    if not data:
        return []
    table = data.get(TABLE, {})
    docs = list(table.values())
    if not all(isinstance(d, dict) and isinstance(d.get("id"), str) for d in docs):
        raise ValueError("shard holds documents without an id")
    return docs


def shard_document(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {TABLE: {str(i): d for i, d in enumerate(docs, 1)}}


def write_manifest(path: Path, months: list[str], sealer: Sealer | None = None) -> None:
    data = {"meta": {"format": FORMAT}, "shards": {m: {"file": f"{m}.json"} for m in months}}
    write_atomic(path, seal(json.dumps(data, separators=(",", ":")).encode(), path, sealer))


def is_manifest(data: dict[str, Any]) -> bool:
    meta = data.get("meta")
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def shard_files(index_dir: Path) -> list[str]:
    """Months that have a shard (or only its .prev) in `index_dir`."""
    months = set()
    for p in index_dir.iterdir():
        name = p.name.removesuffix(".prev")
        m = SHARD_RE.match(name)
        if m:
            months.add(f"{m.group(1)}-{m.group(2)}")
    return sorted(months)
