"""Retention and rotation: which recordings to erase, and how long each volume will last.

Pure decisions, like callflow.py: no I/O and no clock. The daemon reads the index and the
volumes' sizes, passes them in with the time, carries out the returned deletions through
`RecordingStore.erase()` (audio first) and logs each one with `deletion_log_message()`.
`callrec storage status` prints `format_report(storage_report(...))`.

The rules, in the order they are applied:

1. **Maximum age.** A recording is due once it is `max_age_days` old, counted from the start of
   the call (the time of collection). Keeping recordings forever needs an explicit choice
   (`RetentionPolicy(max_age_days=None, keep_forever=True)`): forgetting to set a limit must
   never mean "forever".
2. **Quota and minimum free space, per volume, oldest first**, counting the bytes already freed
   by the earlier deletions, until the recordings fit in the quota and the volume has at least
   `min_free_bytes` free.
3. **Exempt, always:** recordings on legal hold or restricted (GDPR art. 18: the person asked us
   to keep them but not use them), and recordings still being written. When exempt recordings
   alone break a limit, nothing else is deleted to make up for them beyond what the rule allows:
   the volume gets a `Shortfall`, so the daemon can write to another volume and the status page
   can say why.

Sizes are decimal (1 MB = 10^6 bytes, 1 GB = 10^9), like the disk makers' and df -H's.
Nothing here produces personal data: recordings are known by their id (UTC time + random hex)
and sizes only; `RecordingFacts` does not even carry the phone numbers.

Memory: a run over 100,000 recordings must fit in the daemon's budget (80 MB in all). So the
facts of the index are held in columns (`FactsTable`, ~45 bytes a recording instead of ~250 as
objects) sorted oldest first, and the rules walk them in that order without building per-
recording objects, sorted copies or sets of ids. Lists of `RecordingFacts` are still accepted
everywhere (tests, small callers): they are put in a table first.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, overload

DeletionReason = Literal["max_age", "quota", "low_space"]
REASONS: tuple[DeletionReason, ...] = ("max_age", "quota", "low_space")

# Same shape as storage.recordings' ids; repeated here so this module stays free of tinydb.
# ASCII digits only (\d takes any script's), matched whole: an id is then exactly ID_BYTES long.
_ID_RE = re.compile(r"([0-9]{8}T[0-9]{6}Z)-[0-9a-f]{8}")
ID_BYTES = 25
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = _DAY // _US


def _require_aware(name: str, value: datetime) -> None:
    # Naive datetimes would compare in the machine's local time and shift every deadline by the
    # UTC offset (and by an hour twice a year): refuse them instead of guessing.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")


@dataclass(frozen=True)
class RetentionPolicy:
    """How long recordings are kept and how much room they may take on each volume."""

    # None keeps recordings forever, which is only accepted together with keep_forever=True.
    max_age_days: int | None
    # Bytes of recordings allowed on each volume; None: no quota (only the free space limits).
    quota_bytes: int | None = None
    # Keep at least this much free on each volume (the OS, the index and the next calls need it).
    min_free_bytes: int = 0
    # The explicit "keep forever" switch: a missing or zero age alone is a mistake, not a choice.
    keep_forever: bool = False

    def __post_init__(self) -> None:
        if self.max_age_days is None:
            if not self.keep_forever:
                raise ValueError(
                    "max_age_days=None keeps recordings forever: pass keep_forever=True to choose "
                    "that explicitly"
                )
        else:
            if self.keep_forever:
                raise ValueError("keep_forever=True contradicts max_age_days: use None with it")
            if isinstance(self.max_age_days, bool) or self.max_age_days <= 0:
                raise ValueError("max_age_days must be a positive number of days")
        if self.quota_bytes is not None and self.quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive (None: no quota)")
        if self.min_free_bytes < 0:
            raise ValueError("min_free_bytes must not be negative")

    @property
    def max_age(self) -> timedelta | None:
        return None if self.max_age_days is None else timedelta(days=self.max_age_days)


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What retention needs to know about one recording, and nothing personal. Slotted: a
    retention run holds one per recording (100,000 of them on a busy office's box)."""

    rec_id: str
    started_at: datetime  # timezone-aware; the start of the call
    size_bytes: int
    volume: str
    on_hold: bool
    restricted: bool

    def __post_init__(self) -> None:
        _require_aware(f"recording {self.rec_id}: started_at", self.started_at)
        if self.size_bytes < 0:
            raise ValueError(f"recording {self.rec_id}: size_bytes must not be negative")

    @property
    def exempt(self) -> bool:
        """On legal hold or restricted: never erased by retention."""
        return self.on_hold or self.restricted

    @classmethod
    def from_index_doc(cls, doc: Mapping[str, Any], volume_default: str = "sd") -> RecordingFacts:
        """Facts from an index document; ValueError (naming the field, never its value) if bad.

        Tolerated: no `size_bytes` (the index of today has `audio.bytes`, used instead, else 0),
        no `started_at` (the id holds the UTC start time to the second), no `volume`
        (`volume_default`), no `legal_hold` / `restricted` (False). Error messages quote the id
        only once it is known to be well-formed, and never a field's value: a damaged document
        could hold anything, including a phone number, and these messages end up in the log.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("index document is not a JSON object")
        rec_id = doc.get("id")
        if not isinstance(rec_id, str) or not (m := _ID_RE.fullmatch(rec_id)):
            raise ValueError("index document without a well-formed 'id'")
        where = f"recording {rec_id}"

        raw_start = doc.get("started_at")
        if raw_start is None:
            started_at = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        elif isinstance(raw_start, str):
            try:
                started_at = datetime.fromisoformat(raw_start)
            except ValueError:
                raise ValueError(f"{where}: 'started_at' is not an ISO 8601 time") from None
            if started_at.tzinfo is None:
                raise ValueError(f"{where}: 'started_at' has no UTC offset")
        else:
            raise ValueError(f"{where}: 'started_at' is not a string")

        size = doc.get("size_bytes")
        if size is None:
            audio = doc.get("audio")
            size = audio.get("bytes") if isinstance(audio, Mapping) else None
            size = 0 if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{where}: 'size_bytes' is not a non-negative integer")

        volume = doc.get("volume")
        if volume is None:
            volume = volume_default
        if not isinstance(volume, str) or not volume:
            raise ValueError(f"{where}: 'volume' is not a volume name")

        flags: dict[str, bool] = {}
        for key in ("legal_hold", "restricted"):
            value = doc.get(key)
            # A string "false" would be truthy: refuse anything but a real boolean, so that a
            # damaged flag is reported (and the recording skipped, hence kept) rather than read.
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{where}: '{key}' is not true or false")
            flags[key] = bool(value)

        return cls(
            rec_id=rec_id,
            started_at=started_at,
            size_bytes=size,
            volume=volume,
            on_hold=flags["legal_hold"],
            restricted=flags["restricted"],
        )


def _us(t: datetime) -> int:
    """Microseconds since 1970 UTC: exact, and ordered as the instants are."""
    return (t - _EPOCH) // _US


class FactsTable(Sequence[RecordingFacts]):
    """The facts of many recordings in columns, oldest first (ties by id), each id once.

    A sequence of `RecordingFacts`, made one at a time when read; the rules below read the
    columns directly. Build one with `from_facts()` or `facts_from_index()`.
    """

    def __init__(self) -> None:
        self._ids = bytearray()  # ID_BYTES of ASCII per recording
        self._started = array("q")  # microseconds since 1970 UTC
        self._sizes = array("q")
        self._vols = array("H")  # index into _names
        self._flags = bytearray()  # 1: on hold, 2: restricted
        self._names: list[str] = []
        self._codes: dict[str, int] = {}

    # -- building ------------------------------------------------------------------------------
    def _append(self, f: RecordingFacts) -> None:
        code = self._codes.get(f.volume)
        if code is None:
            if len(self._names) > 0xFFFF:
                raise ValueError(f"recording {f.rec_id}: too many volume names")
            code = self._codes[f.volume] = len(self._names)
            self._names.append(f.volume)
        self._ids += f.rec_id.encode("ascii")
        self._started.append(_us(f.started_at))
        self._sizes.append(f.size_bytes)
        self._vols.append(code)
        self._flags.append(int(f.on_hold) | 2 * int(f.restricted))

    @classmethod
    def from_facts(cls, recordings: Iterable[RecordingFacts]) -> FactsTable:
        """A table of `recordings`, in any order; an id listed twice (a shard and its rebuilt
        copy) is one file: the first one counts."""
        if isinstance(recordings, FactsTable):
            return recordings
        table = cls()
        for f in _unique(recordings):
            table._append(f)
        return table

    def _sort(self) -> None:
        """Put rows appended in id order into (start, id) order. The start of a call and its
        id's time agree to the second, so only calls started within the same second can be
        out of order: an insertion sort fixes them in place (no copy, no key list)."""
        started, n = self._started, len(self)
        descents = sum(1 for i in range(1, n) if started[i] < started[i - 1])
        if not descents:
            return
        if descents > 1000:  # not what the index gives: sort by key, stable (ids stay ordered)
            order = sorted(range(n), key=started.__getitem__)
            self._take(order)
            return
        ids, sizes, vols, flags = self._ids, self._sizes, self._vols, self._flags
        for i in range(1, n):
            if started[i] >= started[i - 1]:
                continue
            row = (started[i], bytes(ids[i * ID_BYTES : (i + 1) * ID_BYTES]), sizes[i], vols[i],
                   flags[i])
            j = i
            while j > 0 and started[j - 1] > row[0]:  # ties keep id order: stable
                started[j], sizes[j], vols[j], flags[j] = (started[j - 1], sizes[j - 1],
                                                           vols[j - 1], flags[j - 1])
                ids[j * ID_BYTES : (j + 1) * ID_BYTES] = ids[(j - 1) * ID_BYTES : j * ID_BYTES]
                j -= 1
            started[j], sizes[j], vols[j], flags[j] = row[0], row[2], row[3], row[4]
            ids[j * ID_BYTES : (j + 1) * ID_BYTES] = row[1]

    def _take(self, rows: Iterable[int]) -> None:
        """Keep `rows` only, in that order."""
        ids, started, sizes, vols, flags = (bytearray(), array("q"), array("q"), array("H"),
                                            bytearray())
        for i in rows:
            ids += self._ids[i * ID_BYTES : (i + 1) * ID_BYTES]
            started.append(self._started[i])
            sizes.append(self._sizes[i])
            vols.append(self._vols[i])
            flags.append(self._flags[i])
        self._ids, self._started, self._sizes, self._vols, self._flags = (
            ids, started, sizes, vols, flags)

    def without(self, rec_ids: Iterable[str]) -> FactsTable:
        """A copy without these recordings (those just erased)."""
        gone = {i.encode("ascii", "replace") for i in rec_ids}
        table = FactsTable()
        table._names, table._codes = list(self._names), dict(self._codes)
        table._ids, table._started, table._sizes = self._ids, self._started, self._sizes
        table._vols, table._flags = self._vols, self._flags
        table._take(i for i in range(len(self)) if self.id_bytes(i) not in gone)
        return table

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._started)

    def id_bytes(self, i: int) -> bytes:
        return bytes(self._ids[i * ID_BYTES : (i + 1) * ID_BYTES])

    def rec_id(self, i: int) -> str:
        return self._ids[i * ID_BYTES : (i + 1) * ID_BYTES].decode("ascii")

    def started_at(self, i: int) -> datetime:
        return _EPOCH + timedelta(microseconds=self._started[i])

    def volume(self, i: int) -> str:
        return self._names[self._vols[i]]

    def exempt(self, i: int) -> bool:
        return bool(self._flags[i])

    def rows_on(self, volume: str) -> Iterator[int]:
        """The rows of the recordings on `volume`, oldest first."""
        code = self._codes.get(volume)
        if code is None:
            return iter(())
        vols = self._vols
        return (i for i in range(len(self)) if vols[i] == code)

    def volume_names(self) -> set[str]:
        """The volumes that hold at least one of the recordings."""
        return {self._names[c] for c in set(self._vols)}

    @overload
    def __getitem__(self, i: int) -> RecordingFacts: ...
    @overload
    def __getitem__(self, i: slice) -> list[RecordingFacts]: ...
    def __getitem__(self, i: int | slice) -> RecordingFacts | list[RecordingFacts]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        flags = self._flags[i]
        return RecordingFacts(self.rec_id(i), self.started_at(i), self._sizes[i], self.volume(i),
                              bool(flags & 1), bool(flags & 2))


def _table(recordings: Iterable[RecordingFacts]) -> FactsTable:
    return FactsTable.from_facts(recordings)


def facts_from_index(
    docs: Iterable[Mapping[str, Any]], volume_default: str = "sd"
) -> tuple[FactsTable, list[str]]:
    """Facts for every readable document, plus one error message per unreadable one.

    An unreadable document is left out, so retention never erases it; the daemon should log
    the messages (they hold no personal data) so that someone repairs or reindexes it.
    Documents in ascending id order (as the index gives them) go straight into the table's
    columns; in any other order they are first gathered as objects, then sorted.
    """
    table = FactsTable()
    errors: list[str] = []
    last = b""
    loose: list[RecordingFacts] | None = None
    for doc in docs:
        try:
            f = RecordingFacts.from_index_doc(doc, volume_default)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if loose is not None:
            loose.append(f)
            continue
        key = f.rec_id.encode("ascii")
        if key == last:
            continue  # listed twice: the first counts
        if key < last:
            loose = [*table, f]
            continue
        table._append(f)
        last = key
    if loose is not None:
        return FactsTable.from_facts(loose), errors
    table._sort()
    return table, errors


@dataclass(frozen=True)
class VolumeUsage:
    """A filesystem that holds recordings, as statvfs sees it (free: what callrec may use)."""

    name: str
    total_bytes: int
    free_bytes: int
    path: str = ""  # where it is mounted, shown by `callrec storage status`

    def __post_init__(self) -> None:
        if self.total_bytes < 0 or self.free_bytes < 0:
            raise ValueError(f"volume {self.name}: sizes must not be negative")


@dataclass(frozen=True, slots=True)
class Deletion:
    """One recording to erase, and why. Slotted: the first run on an old archive may erase
    tens of thousands."""

    rec_id: str
    volume: str
    reason: DeletionReason
    size_bytes: int


@dataclass(frozen=True)
class Shortfall:
    """A volume still over its limits after every erasable recording was planned for deletion.

    What is left is exempt (on hold, restricted) or still being recorded. The daemon should
    record new calls on another volume and show `describe()` on the status page.
    """

    volume: str
    over_quota_bytes: int  # recordings still above the quota (0: the quota holds)
    free_missing_bytes: int  # still missing to reach min_free_bytes (0: enough free)
    blocked_bytes: int  # exempt or in-progress recordings on the volume, which were kept

    @property
    def bytes_needed(self) -> int:
        # Erasing a recording lowers the quota use and raises the free space by the same
        # amount, so the larger of the two gaps is what would have to go.
        return max(self.over_quota_bytes, self.free_missing_bytes)

    @property
    def reason(self) -> Literal["quota", "low_space"]:
        return "quota" if self.over_quota_bytes >= self.free_missing_bytes else "low_space"

    def describe(self) -> str:
        limit = "over the recordings quota" if self.reason == "quota" else "short of free space"
        return (
            f"{self.volume}: {format_bytes(self.bytes_needed)} {limit}; "
            f"{format_bytes(self.blocked_bytes)} of recordings on hold, restricted or in "
            "progress cannot be erased"
        )


@dataclass(frozen=True)
class RetentionPlan:
    """The deletions to carry out, in order, and the volumes that stay over their limits."""

    deletions: tuple[Deletion, ...]
    shortfalls: tuple[Shortfall, ...]

    @property
    def freed_bytes(self) -> int:
        return sum(d.size_bytes for d in self.deletions)


def _oldest_first(r: RecordingFacts) -> tuple[datetime, str]:
    # Ties (same second) broken by id, so that two runs on the same facts agree exactly.
    return (r.started_at, r.rec_id)


def _unique(recordings: Iterable[RecordingFacts]) -> list[RecordingFacts]:
    # An id listed twice (a shard and its rebuilt copy) is one file: count its bytes once.
    seen: dict[str, RecordingFacts] = {}
    for r in recordings:
        seen.setdefault(r.rec_id, r)
    return sorted(seen.values(), key=_oldest_first)


def is_expired(recording: RecordingFacts, policy: RetentionPolicy, now: datetime) -> bool:
    """True once the recording is max_age_days old or older (exactly N days: expired)."""
    max_age = policy.max_age
    return max_age is not None and now - recording.started_at >= max_age


def plan_retention(
    recordings: Iterable[RecordingFacts],
    volumes: Iterable[VolumeUsage],
    policy: RetentionPolicy,
    now: datetime,
    in_progress: frozenset[str] = frozenset(),
    *,
    clock_trusted: bool = True,
) -> RetentionPlan:
    """Decide what to erase: expired recordings, then per volume oldest first until it fits.

    `volumes` are measured before any of these deletions; recordings on a volume that is not
    listed (not mounted) are still erased when expired, but no space rule applies to them.
    `clock_trusted=False` skips the age rule: a Raspberry Pi has no real-time clock, and a
    clock set far ahead (before NTP has answered) would make every recording look expired.
    The space rules do not depend on the clock, so they still apply.
    """
    _require_aware("now", now)
    t = _table(recordings)
    sizes, started = t._sizes, t._started
    busy = {i.encode("ascii", "replace") for i in in_progress}

    def erasable(i: int) -> bool:
        return not t.exempt(i) and (not busy or t.id_bytes(i) not in busy)

    deletions: list[Deletion] = []
    gone = bytearray(len(t))  # 1: planned for deletion
    max_age = policy.max_age
    if clock_trusted and max_age is not None:
        cutoff = _us(now) - max_age // _US  # started at or before: expired
        for i in range(len(t)):
            if started[i] > cutoff:
                break  # oldest first: the rest are younger
            if erasable(i):
                deletions.append(Deletion(t.rec_id(i), t.volume(i), "max_age", sizes[i]))
                gone[i] = 1

    shortfalls: list[Shortfall] = []
    by_name = {v.name: v for v in volumes}
    for name in sorted(by_name):
        volume = by_name[name]
        used = freed = 0
        for i in t.rows_on(name):
            if gone[i]:
                freed += sizes[i]  # the expired recordings erased above free their bytes too
            else:
                used += sizes[i]
        free = volume.free_bytes + freed
        for i in t.rows_on(name):
            if gone[i]:
                continue
            over_quota = policy.quota_bytes is not None and used > policy.quota_bytes
            low_space = free < policy.min_free_bytes
            if not (over_quota or low_space):
                break
            if not erasable(i):
                continue
            reason: DeletionReason = "quota" if over_quota else "low_space"
            deletions.append(Deletion(t.rec_id(i), name, reason, sizes[i]))
            gone[i] = 1
            used -= sizes[i]
            free += sizes[i]
        over = 0 if policy.quota_bytes is None else max(0, used - policy.quota_bytes)
        missing = max(0, policy.min_free_bytes - free)
        if over or missing:
            blocked = used  # what is left on the volume: exempt or in progress
            shortfalls.append(Shortfall(name, over, missing, blocked))
    return RetentionPlan(tuple(deletions), tuple(shortfalls))


def plan_deletions(
    recordings: Iterable[RecordingFacts],
    volumes: Iterable[VolumeUsage],
    policy: RetentionPolicy,
    now: datetime,
    in_progress: frozenset[str] = frozenset(),
    *,
    clock_trusted: bool = True,
) -> list[Deletion]:
    """The deletions of `plan_retention()` alone, in the order to carry them out."""
    plan = plan_retention(
        recordings, volumes, policy, now, in_progress, clock_trusted=clock_trusted
    )
    return list(plan.deletions)


def space_is_low(volume: VolumeUsage, policy: RetentionPolicy) -> bool:
    """True when the volume has less free space than the policy keeps: run retention now."""
    return volume.free_bytes < policy.min_free_bytes


# -- how long the volumes will last ---------------------------------------------------------

DaysLeftState = Literal["ok", "full", "never", "unknown"]


@dataclass(frozen=True)
class DaysLeft:
    """How many days until a volume's limit is reached, and why when there is no number.

    state "ok": `days` until the quota or the free space limit is reached at the recent rate;
    from then on retention erases the oldest recordings before their maximum age.
    state "full": the limit is reached now (`days` is 0.0).
    state "never": the maximum age erases recordings as fast as new ones arrive, and the
    steady-state peak (`peak_bytes`) fits (`days` is None).
    state "unknown": no recordings on this volume in the window, so no rate (`days` is None):
    we say "unknown" rather than pretend the volume lasts forever.
    """

    days: float | None
    state: DaysLeftState
    bytes_per_day: float | None = None
    limit: Literal["quota", "free_space"] | None = None
    peak_bytes: int | None = None

    def short(self) -> str:
        """The table cell: '20.0', '0 (full)', 'never', 'unknown'."""
        if self.state == "ok" and self.days is not None:
            return f"{self.days:.1f}"
        return {"full": "0 (full)", "never": "never", "unknown": "unknown", "ok": "?"}[self.state]

    def describe(self) -> str:
        rate = "" if self.bytes_per_day is None else f"{format_bytes(self.bytes_per_day)}/day"
        limit = "quota" if self.limit == "quota" else "free space limit"
        if self.state == "unknown":
            return "unknown: no recent recordings on this volume to estimate a rate"
        if self.state == "full":
            return f"0 days: at its {limit}; retention erases the oldest recordings"
        if self.state == "never":
            peak = format_bytes(self.peak_bytes or 0)
            return f"never at {rate}: the maximum age keeps recordings under about {peak}"
        return f"{self.short()} days at {rate} until the {limit}"


def estimate_days_left(
    volume: VolumeUsage,
    recordings: Iterable[RecordingFacts],
    policy: RetentionPolicy,
    now: datetime,
    window_days: float = 14,
) -> DaysLeft:
    """Days until this volume's quota or free-space limit is reached at the recent call volume.

    The rate is the bytes recorded on this volume per day over the last `window_days` (over
    the volume's history when shorter, at least one day, so a first call does not look like a
    flood). The projection lets the maximum age erase today's recordings as they expire and
    new ones after max_age_days, so a volume whose steady state fits is "never" full. Assumed:
    the volume's other contents do not grow.
    """
    _require_aware("now", now)
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    t = _table(recordings)
    sizes, started = t._sizes, t._started
    used = sum(sizes[i] for i in t.rows_on(volume.name))
    now_us = _us(now)

    # The recordings' size at which the volume hits a limit: its free space down to
    # min_free_bytes, or the quota if that comes first.
    cap = used + volume.free_bytes - policy.min_free_bytes
    limit: Literal["quota", "free_space"] = "free_space"
    if policy.quota_bytes is not None and policy.quota_bytes < cap:
        cap, limit = policy.quota_bytes, "quota"

    max_age = policy.max_age
    # Started at or before the cutoff: expired (none without an age limit).
    cutoff = now_us - max_age // _US if max_age is not None else None
    expired_now = 0 if cutoff is None else sum(
        sizes[i] for i in t.rows_on(volume.name) if started[i] <= cutoff and not t.exempt(i))
    # What remains once the next retention run has erased what is already expired.
    base = used - expired_now
    if base >= cap:
        return DaysLeft(0.0, "full", limit=limit)

    window_start = _us(now - timedelta(days=window_days))
    recent_bytes = sum(sizes[i] for i in t.rows_on(volume.name)
                       if window_start < started[i] <= now_us)
    if recent_bytes == 0:
        return DaysLeft(None, "unknown", limit=limit)
    first = next(iter(t.rows_on(volume.name)))  # oldest first
    history_days = (now_us - started[first]) / _DAY_US
    span = min(float(window_days), max(history_days, min(1.0, float(window_days))))
    rate = recent_bytes / span

    if max_age is None:
        return DaysLeft((cap - base) / rate, "ok", rate, limit)

    # Walk forward through the expiry times of today's erasable recordings: usage grows at
    # `rate` and drops by each recording's size as it expires. New recordings start expiring
    # after max_age, from when on usage stays at (what is left) + rate * max_age.
    # Oldest first is soonest to expire (ties in any order: the result is the same).
    horizon = max_age / _DAY
    assert cutoff is not None
    for i in t.rows_on(volume.name):
        if t.exempt(i) or started[i] <= cutoff:
            continue
        at = horizon - max(0.0, (now_us - started[i]) / _DAY_US)
        if base + rate * at > cap:
            return DaysLeft((cap - base) / rate, "ok", rate, limit)
        base -= sizes[i]
    peak = base + rate * horizon
    if peak > cap:
        return DaysLeft((cap - base) / rate, "ok", rate, limit)
    return DaysLeft(None, "never", rate, limit, peak_bytes=round(peak))


def days_left(
    volume: VolumeUsage,
    recordings: Iterable[RecordingFacts],
    policy: RetentionPolicy,
    now: datetime,
    window_days: float = 14,
) -> float | None:
    """`estimate_days_left(...).days`: None means "never" or "unknown" (see its `state`)."""
    return estimate_days_left(volume, recordings, policy, now, window_days).days


# -- `callrec storage status` ---------------------------------------------------------------


def format_bytes(n: float) -> str:
    """Decimal units, one decimal: 1234567 -> '1.2 MB'."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            break
    return f"{n:.1f} {unit}"


def describe_policy(policy: RetentionPolicy) -> str:
    """One line for the status table and the information page."""
    age = (
        "kept forever (explicit setting)"
        if policy.max_age_days is None
        else f"max age {policy.max_age_days} days"
    )
    quota = (
        "no quota" if policy.quota_bytes is None else f"quota {format_bytes(policy.quota_bytes)}"
    )
    return f"{age}, {quota}, keep {format_bytes(policy.min_free_bytes)} free per volume"


@dataclass(frozen=True)
class VolumeReport:
    """One row of `callrec storage status`: sizes, counts and times, no personal data."""

    name: str
    path: str
    total_bytes: int | None  # None: recordings name this volume but it was not measured
    free_bytes: int | None
    recordings_bytes: int
    recordings_count: int
    exempt_count: int  # on hold or restricted
    oldest: datetime | None
    days_left: DaysLeft
    due_count: int  # recordings the next retention run would erase
    shortfall: Shortfall | None
    policy: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for --json): times in ISO 8601 UTC, sizes in bytes."""
        return {
            "volume": self.name,
            "path": self.path,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "recordings_bytes": self.recordings_bytes,
            "recordings": self.recordings_count,
            "exempt": self.exempt_count,
            "oldest": None if self.oldest is None else self.oldest.astimezone(UTC).isoformat(),
            "days_left": self.days_left.days,
            "days_left_state": self.days_left.state,
            "days_left_note": self.days_left.describe(),
            "bytes_per_day": self.days_left.bytes_per_day,
            "due_for_deletion": self.due_count,
            "shortfall": None if self.shortfall is None else self.shortfall.describe(),
            "policy": self.policy,
        }


def storage_report(
    volumes: Iterable[VolumeUsage],
    recordings: Iterable[RecordingFacts],
    policy: RetentionPolicy,
    now: datetime,
    in_progress: frozenset[str] = frozenset(),
    window_days: float = 14,
) -> list[VolumeReport]:
    """A row per measured volume, then one per volume named by recordings but not measured."""
    _require_aware("now", now)
    t = _table(recordings)
    measured = {v.name: v for v in volumes}
    plan = plan_retention(t, measured.values(), policy, now, in_progress)
    due: dict[str, int] = {}
    for d in plan.deletions:
        due[d.volume] = due.get(d.volume, 0) + 1
    short = {s.volume: s for s in plan.shortfalls}
    described = describe_policy(policy)

    rows: list[VolumeReport] = []
    names = sorted(measured) + sorted(t.volume_names() - set(measured))
    for name in names:
        count = size = exempt = 0
        first: int | None = None
        for i in t.rows_on(name):
            first = i if first is None else first
            count += 1
            size += t._sizes[i]
            exempt += t.exempt(i)
        volume = measured.get(name)
        rows.append(
            VolumeReport(
                name=name,
                path=volume.path if volume else "(not mounted)",
                total_bytes=volume.total_bytes if volume else None,
                free_bytes=volume.free_bytes if volume else None,
                recordings_bytes=size,
                recordings_count=count,
                exempt_count=exempt,
                oldest=t.started_at(first) if first is not None else None,
                days_left=(
                    estimate_days_left(volume, t, policy, now, window_days)
                    if volume
                    else DaysLeft(None, "unknown")
                ),
                due_count=due.get(name, 0),
                shortfall=short.get(name),
                policy=described,
            )
        )
    return rows


def format_report(rows: Iterable[VolumeReport]) -> str:
    """A plain-text table, then the policy and one note per volume that needs one."""
    rows = list(rows)
    header = (
        "volume",
        "path",
        "total",
        "free",
        "recordings",
        "count",
        "exempt",
        "oldest (UTC)",
        "days left",
    )

    def size(n: int | None) -> str:
        return "-" if n is None else format_bytes(n)

    table = [header]
    for r in rows:
        oldest = "-" if r.oldest is None else f"{r.oldest.astimezone(UTC):%Y-%m-%d %H:%M}"
        table.append(
            (
                r.name,
                r.path or "-",
                size(r.total_bytes),
                size(r.free_bytes),
                format_bytes(r.recordings_bytes),
                str(r.recordings_count),
                str(r.exempt_count),
                oldest,
                r.days_left.short(),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    # Text columns left-aligned, numbers right-aligned, so sizes line up by their units.
    left = {0, 1, 7}
    lines = [
        "  ".join(
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]
    lines += [f"policy: {p}" for p in sorted({r.policy for r in rows})]
    for r in rows:
        if r.total_bytes is None:
            lines.append(f"{r.name}: not mounted; its recordings are counted from the index")
        else:
            lines.append(f"{r.name}: days left: {r.days_left.describe()}")
        if r.due_count:
            lines.append(f"{r.name}: {r.due_count} recording(s) due for deletion at the next run")
        if r.shortfall is not None:
            lines.append(r.shortfall.describe())
    if not rows:
        lines.append("no volume holds recordings")
    return "\n".join(lines)


def deletion_log_message(d: Deletion) -> str:
    """The log line after an erasure: id, reason and size only (no number, no name)."""
    # Ids are generated as UTC time + random hex; anything else in that field is a damaged
    # document and could hold anything, so it is not written to the log.
    shown = d.rec_id if _ID_RE.fullmatch(d.rec_id) else "<malformed id withheld>"
    return f"retention: erased {shown} ({d.reason}, {format_bytes(d.size_bytes)})"
