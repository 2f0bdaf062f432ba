"""The in-memory view of the index: every recording's metadata, compact, sorted by id.

100,000 recordings of ~700 bytes of JSON each would take ~100 MB as Python dicts and ~75 MB as
plain bytes. Here documents are serialised to compact JSON and packed by runs of up to 64 (in id
order) into zlib blocks, ~8x smaller; a few recently used blocks are kept decompressed. A
document added or changed after start is kept as plain bytes until 64 such have gathered, then
packed into a new block. Search by phone number goes through a map from the number's digits to
ids. Not thread-safe by itself: the store's lock guards it.
"""

from __future__ import annotations

import json
import zlib
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from callrec.storage.index_shards import compact, phone_key

PHONE_FIELDS = ("caller_number", "called_number")
BLOCK_DOCS = 64
BLOCK_BYTES = 256 * 1024
_CACHED_BLOCKS = 16
_BITS = 20  # offset and length of a document in its block: < 1 MiB each
_MASK = (1 << _BITS) - 1


class IndexView:
    def __init__(self) -> None:
        self.ids: list[str] = []  # ascending
        self._locs: list[int | bytes] = []  # per id: packed (block, offset, length) or the JSON
        self._blocks: list[bytes] = []
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._loose = 0
        self._pending: list[tuple[str, bytes]] = []  # bulk load: not yet packed
        self.phones: dict[str, list[str]] = {}  # digits -> ids ascending
        self.open: set[str] = set()  # ids indexed with status "recording"

    def __len__(self) -> int:
        return len(self.ids)

    # -- bulk load (ids ascending across calls) ------------------------------------------------
    def extend(self, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            rec_id = doc["id"]
            self.ids.append(rec_id)
            self._locs.append(0)
            self._pending.append((rec_id, compact(doc)))
            self._index_fields(rec_id, doc)
            if len(self._pending) >= BLOCK_DOCS:
                self._pack_pending()
        self._pack_pending()

    def _pack_pending(self) -> None:
        if not self._pending:
            return
        base = len(self.ids) - len(self._pending)
        self._pack([(base + k, raw) for k, (_, raw) in enumerate(self._pending)])
        self._pending = []

    def _pack(self, items: list[tuple[int, bytes]]) -> None:
        """Pack (position, json) items into one new block (or more if large)."""
        start = 0
        while start < len(items):
            chunk: list[tuple[int, bytes]] = []
            size = 0
            for pos, raw in items[start:]:
                if chunk and (len(chunk) >= BLOCK_DOCS or size + len(raw) > BLOCK_BYTES):
                    break
                chunk.append((pos, raw))
                size += len(raw)
            start += len(chunk)
            block = len(self._blocks)
            offset = 0
            for pos, raw in chunk:
                if len(raw) > _MASK:
                    self._locs[pos] = raw  # huge: stays plain
                    continue
                self._locs[pos] = (block << 2 * _BITS) | (offset << _BITS) | len(raw)
                offset += len(raw)
            self._blocks.append(zlib.compress(b"".join(r for _, r in chunk if len(r) <= _MASK), 1))

    # -- reads ---------------------------------------------------------------------------------
    def find(self, rec_id: str) -> int | None:
        i = bisect_left(self.ids, rec_id)
        return i if i < len(self.ids) and self.ids[i] == rec_id else None

    def raw(self, i: int) -> bytes:
        loc = self._locs[i]
        if isinstance(loc, bytes):
            return loc
        block, offset, length = loc >> 2 * _BITS, (loc >> _BITS) & _MASK, loc & _MASK
        data = self._cache.get(block)
        if data is None:
            data = zlib.decompress(self._blocks[block])
            self._cache[block] = data
            if len(self._cache) > _CACHED_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(block)
        return data[offset : offset + length]

    def doc(self, i: int) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw(i))
        return result

    def month_docs(self, prefix: str) -> list[dict[str, Any]]:
        """The documents whose id starts with `prefix` (e.g. '202611'), ascending."""
        lo, hi = bisect_left(self.ids, prefix), bisect_left(self.ids, prefix + "~")
        return [self.doc(i) for i in range(lo, hi)]

    # -- changes -------------------------------------------------------------------------------
    def put(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Index `doc`, merging it into the document of the same id if any (as an upsert)."""
        rec_id = doc["id"]
        i = bisect_left(self.ids, rec_id)
        if i < len(self.ids) and self.ids[i] == rec_id:
            old = self.doc(i)
            self._unindex_fields(rec_id, old)
            doc = {**old, **doc}
            if not isinstance(self._locs[i], bytes):
                self._loose += 1
            self._locs[i] = compact(doc)
        else:
            self.ids.insert(i, rec_id)
            self._locs.insert(i, compact(doc))
            self._loose += 1
        self._index_fields(rec_id, doc)
        if self._loose >= BLOCK_DOCS:
            loose: list[tuple[int, bytes]] = []
            for k, loc in enumerate(self._locs):
                if isinstance(loc, bytes) and len(loc) <= _MASK:
                    loose.append((k, loc))
            self._pack(loose)
            self._loose = 0
        return doc

    def drop(self, rec_id: str) -> bool:
        i = self.find(rec_id)
        if i is None:
            return False
        self._unindex_fields(rec_id, self.doc(i))
        if isinstance(self._locs[i], bytes):
            self._loose -= 1
        del self.ids[i]
        del self._locs[i]
        return True

    def _index_fields(self, rec_id: str, doc: dict[str, Any]) -> None:
        for key in {phone_key(doc.get(f)) for f in PHONE_FIELDS} - {""}:
            insort(self.phones.setdefault(key, []), rec_id)
        if doc.get("status") == "recording":
            self.open.add(rec_id)

    def _unindex_fields(self, rec_id: str, doc: dict[str, Any]) -> None:
        for key in {phone_key(doc.get(f)) for f in PHONE_FIELDS} - {""}:
            ids = self.phones.get(key)
            if ids is None:
                continue
            i = bisect_left(ids, rec_id)
            if i < len(ids) and ids[i] == rec_id:
                del ids[i]
            if not ids:
                del self.phones[key]
        self.open.discard(rec_id)
