"""Day shards of the recordings index: one TinyDB file per day, each write keeping the last.

index/2026-11-29.json is a TinyDB document {"recordings": {doc_id: meta}} with the recordings
whose id starts with 20261129. Adding a recording rewrites only its day: at 100,000 recordings
over three years a month shard was ~1.8 MB rewritten per call (SD-card wear), a day's is ~60 kB,
and even a call centre's 1,000 calls a day stay under a megabyte. Every write goes through
`write_atomic` (temp file, fsync, replace, fsync directory) and first keeps the shard it replaces
as <shard>.prev (a hard link, so no extra bytes are written; a rename where links are not
supported): after a crash the shard is the old or the new version, or missing with .prev holding
the old one. index/recordings.json is a small manifest naming the shards, rewritten only when a
day with calls begins, so that a lost shard is noticed at start. Format 2 had a shard per month
(index/2026-11.json): the store converts those to day shards at start (`MONTH_RE`).
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
FORMAT = 3  # 2: month shards (converted at start), 3: day shards
SHARD_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.json$")
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})\.json$")
_NON_DIGITS = re.compile(r"\D+")


def month_of(rec_id: str) -> str:
    """'20261129T100000Z-0a1b2c3d' -> '2026-11' (the id must be well-formed)."""
    return f"{rec_id[:4]}-{rec_id[4:6]}"


def day_of(rec_id: str) -> str:
    """'20261129T100000Z-0a1b2c3d' -> '2026-11-29': the shard that indexes it."""
    return f"{rec_id[:4]}-{rec_id[4:6]}-{rec_id[6:8]}"


def id_prefix(shard: str) -> str:
    """The id prefix of a shard's (or a month's) recordings: '2026-11-29' -> '20261129'."""
    return shard.replace("-", "")


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


def write_manifest(path: Path, shards: list[str], sealer: Sealer | None = None) -> None:
    data = {"meta": {"format": FORMAT}, "shards": {s: {"file": f"{s}.json"} for s in shards}}
    write_atomic(path, seal(json.dumps(data, separators=(",", ":")).encode(), path, sealer))


def manifest_format(data: dict[str, Any]) -> int | None:
    """2 (month shards) or 3 (day shards); None if `data` is not a manifest (the single-file
    index of format 1 holds the documents themselves)."""
    meta = data.get("meta")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    return fmt if fmt in (2, FORMAT) else None


def is_manifest(data: dict[str, Any]) -> bool:
    return manifest_format(data) is not None


def shard_files(index_dir: Path, pattern: re.Pattern[str] = SHARD_RE) -> list[str]:
    """Days that have a shard (or only its .prev) in `index_dir`; with `MONTH_RE`, the months
    of format 2's shards."""
    found = set()
    for p in index_dir.iterdir():
        m = pattern.match(p.name.removesuffix(".prev"))
        if m:
            found.add("-".join(m.groups()))
    return sorted(found)
