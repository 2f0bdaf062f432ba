"""The in-memory view of the index: every recording's metadata, compact, sorted by id.

Budget: the whole daemon must stay under 80 MB with 100,000 recordings, ~58 MB of which it uses
with none. So the view holds almost no Python object per recording (each costs 30-80 bytes of
header, and small objects scattered over the heap keep its pages resident after they are
freed):
  - ids: one array of 64-bit keys, ascending. A key is the id's time (a mixed-radix count of
    seconds from 1970, so that keys sort as the ids do) and its 32 random bits; `find`
    bisects it at C speed. Ids outside 1970-2100 or not of `new_recording_id`'s form are
    refused (`valid_id`);
  - documents: compact JSON packed by runs of up to 64 (in id order) into zlib blocks with a
    preset dictionary (~57 bytes a document instead of ~700), one 64-bit locator per id in an
    array (block, offset, length); a few recently used blocks are kept decompressed. A document
    added or changed after start stays plain ("loose") until 64 such have gathered, then they
    are packed into a new block. A block none of whose documents is current any more is freed;
    one with less than half is unpacked (its current documents become loose again), so that
    stale copies never pile up over months of changes and erasures;
  - search: per id, a 32-bit hash (CRC-32) of the caller's and of the called number's digits,
    8 bytes in one bytearray. A search scans it (C speed) and confirms each hit against the
    document, so a hash collision never returns a wrong recording.
100,000 recordings take ~8.5 MB (5.5 MB of blocks; bench/index.py: page p95 0.2 ms, search p95
4 ms). Not thread-safe by itself: the store's lock guards it.
"""

from __future__ import annotations

import json
import re
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from callrec.storage.index_shards import compact, phone_key

PHONE_FIELDS = ("caller_number", "called_number")
# [0-9], not \d: int() reads other scripts' digits too, and the id would not come back the same.
_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
_YEAR0, _YEARS = 1970, 131  # 131 years of 12 x 31 x 24 x 60 x 61 seconds fit in 32 bits
_LOWEST, _HIGHEST = "19700101T000000Z-00000000", "21001231T235960Z-ffffffff"
BLOCK_DOCS = 64
BLOCK_BYTES = 256 * 1024
_CACHED_BLOCKS = 8
_LEVEL = 6
_BITS = 20  # offset and length of a document in its block: < 1 MiB each
_MASK = (1 << _BITS) - 1
_LOOSE = (1 << 64) - 1  # locator of a document kept plain (in `_loose` or `_huge`)
# zlib's preset dictionary: what every document repeats, so that even a block's first document
# compresses. In memory only (never written), so changing it needs no migration.
_ZDICT = compact({
    "id": "20261129T100000Z-0a1b2c3d", "started_at": "2026-11-29T10:00:00+00:00",
    "direction": "in", "line": 1, "caller_number": "0612345678", "caller_name": None,
    "caller_absence": None, "called_number": None, "ring_count": 2, "keys_during_prompt": None,
    "answered_by": "handset", "announcement": {
        "prompt": "announcement", "sha256": "", "started_at": "2026-11-29T10:00:00+00:00",
        "completed": True},
    "audio": {"sample_rate": 8000, "channels": 1, "file": "20261129T100000Z-0a1b2c3d.cra",
              "format": "wav", "codec": "pcm_s16le", "bytes": 0,
              "encryption": "aes-256-gcm-chunked-v1"},
    "firmware": "0.4.0", "ended_at": "2026-11-29T10:00:00.000000+00:00", "end_reason": "hangup",
    "duration_s": 0.0, "status": "complete", "volume": "sd", "size_bytes": 0,
    "legal_hold": False, "restricted": False,
})


def id_key(rec_id: object) -> int | None:
    """The 64-bit key of an id, ordered as the ids are; None if the view cannot hold it."""
    if not isinstance(rec_id, str) or not _ID_RE.fullmatch(rec_id):
        return None
    # Three int() calls and divmod, not one per field: the view computes 100,000 at start.
    y, md = divmod(int(rec_id[:8]), 10000)
    mo, d = divmod(md, 100)
    h, ms = divmod(int(rec_id[9:15]), 10000)
    mi, s = divmod(ms, 100)
    if not (_YEAR0 <= y < _YEAR0 + _YEARS and 1 <= mo <= 12 and 1 <= d <= 31 and h < 24
            and mi < 60 and s <= 60):
        return None
    t = (((((y - _YEAR0) * 12 + mo - 1) * 31 + d - 1) * 24 + h) * 60 + mi) * 61 + s
    return t << 32 | int(rec_id[17:], 16)


def key_id(key: int) -> str:
    t, s = divmod(key >> 32, 61)
    t, mi = divmod(t, 60)
    t, h = divmod(t, 24)
    t, d = divmod(t, 31)
    y, mo = divmod(t, 12)
    return f"{y + _YEAR0:04d}{mo + 1:02d}{d + 1:02d}T{h:02d}{mi:02d}{s:02d}Z-{key & 0xFFFFFFFF:08x}"


def valid_id(rec_id: object) -> bool:
    """Whether the view can hold this id (any that `new_recording_id` makes until 2100)."""
    return id_key(rec_id) is not None


def phone_hash(key: str) -> int:
    """The 32-bit search hash of a number's digits; 0 for no number."""
    return (zlib.crc32(key.encode()) or 1) if key else 0


def _hashes(doc: dict[str, Any]) -> bytes:
    return b"".join(
        phone_hash(phone_key(doc.get(f))).to_bytes(4, "little") for f in PHONE_FIELDS
    )


def _compress(data: bytes) -> bytes:
    c = zlib.compressobj(_LEVEL, zdict=_ZDICT)
    return c.compress(data) + c.flush()


def _decompress(block: bytes) -> bytes:
    d = zlib.decompressobj(zdict=_ZDICT)
    return d.decompress(block) + d.flush()


class _Ids(Sequence[str]):
    """The view's ids as a read-only sequence of str, made one at a time."""

    def __init__(self, view: IndexView) -> None:
        self._view = view

    def __len__(self) -> int:
        return len(self._view)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._view.id_at(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._view.id_at(i)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):  # ids may be dropped meanwhile: stop at the end
            if i >= len(self):
                return
            yield self._view.id_at(i)


class IndexView:
    def __init__(self) -> None:
        self._keys = array("Q")  # per recording: id_key(id), ascending
        self._locs = array("Q")  # per recording: block << 40 | offset << 20 | length, or _LOOSE
        self._hashes = bytearray()  # per recording: caller's and called number's phone_hash
        self._blocks: list[bytes] = []
        self._live = array("I")  # per block: how many of its documents are current
        self._packed = array("I")  # per block: how many documents it was made with
        self._spans = array("Q")  # per block: its lowest and highest key
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._loose: dict[str, bytes] = {}  # changed since start, to be packed
        self._huge: dict[str, bytes] = {}  # too large for a block (never in practice)
        self._pending: list[bytes] = []  # bulk load: the last ids' documents, not yet packed
        self.open: set[str] = set()  # ids indexed with status "recording"
        self.ids: Sequence[str] = _Ids(self)

    def __len__(self) -> int:
        return len(self._locs)

    def id_at(self, i: int) -> str:
        return key_id(self._keys[i])

    # -- bulk load (ids ascending across calls) ------------------------------------------------
    def extend(self, docs: Iterable[dict[str, Any]]) -> int:
        """Append documents with ids ascending and above every id in the view; those whose id
        the view cannot hold (`valid_id`) are left out. Returns how many were."""
        left_out = 0
        for doc in docs:
            rec_id = doc["id"]
            key = id_key(rec_id)
            if key is None:
                left_out += 1
                continue
            if self._keys and key <= self._keys[-1]:
                raise ValueError("ids must be ascending")
            raw = compact(doc)
            self._keys.append(key)
            self._hashes += _hashes(doc)
            if len(raw) > _MASK:
                self._locs.append(_LOOSE)
                self._huge[rec_id] = raw
            else:
                self._locs.append(0)
                self._pending.append(raw)
            if doc.get("status") == "recording":
                self.open.add(rec_id)
            if len(self._pending) >= BLOCK_DOCS:
                self._pack_pending()
        self._pack_pending()
        return left_out

    def _pack_pending(self) -> None:
        if not self._pending:
            return
        # The pending documents are the last ones appended (huge ones excepted).
        items: list[tuple[int, bytes]] = []
        pos = len(self) - 1
        for raw in reversed(self._pending):
            while self._locs[pos] == _LOOSE:
                pos -= 1
            items.append((pos, raw))
            pos -= 1
        self._pending = []
        self._pack(items[::-1])

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
                self._locs[pos] = (block << 2 * _BITS) | (offset << _BITS) | len(raw)
                offset += len(raw)
            self._blocks.append(_compress(b"".join(raw for _, raw in chunk)))
            self._live.append(len(chunk))
            self._packed.append(len(chunk))
            keys = [self._keys[pos] for pos, _ in chunk]
            self._spans.extend((min(keys), max(keys)))

    def _pack_loose(self) -> None:
        if len(self._loose) < BLOCK_DOCS:
            return
        items = []
        for rec_id, raw in self._loose.items():
            pos = self.find(rec_id)
            assert pos is not None
            items.append((pos, raw))
        self._loose = {}
        self._pack(sorted(items))

    def _release(self, i: int, rec_id: str) -> None:
        """Forget the document at `i` (it is being replaced or dropped): loose from now on."""
        loc = self._locs[i]
        self._locs[i] = _LOOSE
        self._loose.pop(rec_id, None)
        self._huge.pop(rec_id, None)
        if loc == _LOOSE:
            return
        block = loc >> 2 * _BITS
        self._live[block] -= 1
        if not self._live[block]:
            self._free(block)
        elif self._live[block] * 2 < self._packed[block]:
            self._unpack(block)

    def _free(self, block: int) -> None:
        self._blocks[block] = b""
        self._live[block] = 0
        self._cache.pop(block, None)

    def _unpack(self, block: int) -> None:
        """Make the current documents of a block mostly stale loose again, and free it."""
        data = _decompress(self._blocks[block])
        keys, locs = self._keys, self._locs
        lo = bisect_left(keys, self._spans[2 * block])
        hi = bisect_right(keys, self._spans[2 * block + 1])
        for pos in range(lo, hi):  # its documents are between its lowest and highest key
            loc = locs[pos]
            if loc != _LOOSE and loc >> 2 * _BITS == block:
                offset, length = (loc >> _BITS) & _MASK, loc & _MASK
                self._loose[self.id_at(pos)] = data[offset : offset + length]
                locs[pos] = _LOOSE
        self._free(block)

    # -- reads ---------------------------------------------------------------------------------
    def find(self, rec_id: str) -> int | None:
        key = id_key(rec_id)
        if key is None:
            return None
        i = bisect_left(self._keys, key)
        return i if i < len(self) and self._keys[i] == key else None

    def raw(self, i: int) -> bytes:
        loc = self._locs[i]
        if loc == _LOOSE:
            rec_id = self.id_at(i)
            return self._loose.get(rec_id) or self._huge[rec_id]
        block, offset, length = loc >> 2 * _BITS, (loc >> _BITS) & _MASK, loc & _MASK
        data = self._cache.get(block)
        if data is None:
            data = _decompress(self._blocks[block])
            self._cache[block] = data
            if len(self._cache) > _CACHED_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(block)
        return data[offset : offset + length]

    def doc(self, i: int) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw(i))
        return result

    def prefix_range(self, prefix: str) -> range:
        """The positions of the ids that start with `prefix`: a year, month or day
        ('2026', '202611', '20261129')."""
        lo, hi = id_key(prefix + _LOWEST[len(prefix):]), id_key(prefix + _HIGHEST[len(prefix):])
        if lo is None or hi is None:
            return range(0)
        return range(bisect_left(self._keys, lo), bisect_right(self._keys, hi))

    def prefix_docs(self, prefix: str) -> list[dict[str, Any]]:
        """The documents whose id starts with `prefix`, ascending."""
        return [self.doc(i) for i in self.prefix_range(prefix)]

    def search(self, key: str) -> list[dict[str, Any]]:
        """The documents whose caller or called number has the digits `key`, ascending."""
        h = phone_hash(key)
        if not h:
            return []
        needle, buf = h.to_bytes(4, "little"), self._hashes
        found: list[dict[str, Any]] = []
        last = -1
        pos = buf.find(needle)
        while pos >= 0:
            i = pos // 8
            if pos % 4 == 0 and i != last:  # an aligned hit; one per recording
                last = i
                doc = self.doc(i)
                if any(phone_key(doc.get(f)) == key for f in PHONE_FIELDS):  # not a collision
                    found.append(doc)
            pos = buf.find(needle, pos + 1)
        return found

    # -- changes -------------------------------------------------------------------------------
    def put(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Index `doc`, merging it into the document of the same id if any (as an upsert)."""
        rec_id = doc["id"]
        key = id_key(rec_id)
        if key is None:
            raise ValueError("not a recording id")
        i = bisect_left(self._keys, key)
        if i < len(self) and self._keys[i] == key:
            doc = {**self.doc(i), **doc}
            self._release(i, rec_id)
            self._hashes[i * 8 : (i + 1) * 8] = _hashes(doc)
        else:
            self._keys.insert(i, key)
            self._locs.insert(i, _LOOSE)
            self._hashes[i * 8 : i * 8] = _hashes(doc)
        raw = compact(doc)
        (self._huge if len(raw) > _MASK else self._loose)[rec_id] = raw
        if doc.get("status") == "recording":
            self.open.add(rec_id)
        else:
            self.open.discard(rec_id)
        self._pack_loose()
        return doc

    def drop(self, rec_id: str) -> bool:
        i = self.find(rec_id)
        if i is None:
            return False
        self._release(i, rec_id)
        del self._keys[i]
        del self._locs[i]
        del self._hashes[i * 8 : (i + 1) * 8]
        self.open.discard(rec_id)
        self._pack_loose()  # what an unpacked block left loose
        return True
