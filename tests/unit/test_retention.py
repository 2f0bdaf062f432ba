from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from callrec.storage.retention import (
    Deletion,
    RecordingFacts,
    RetentionPolicy,
    VolumeUsage,
    days_left,
    deletion_log_message,
    estimate_days_left,
    facts_from_index,
    format_bytes,
    format_report,
    plan_deletions,
    plan_retention,
    space_is_low,
    storage_report,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MB = 1_000_000
GB = 1_000_000_000
_serial = count(1)


def rid(started: datetime, n: int | None = None) -> str:
    return f"{started:%Y%m%dT%H%M%SZ}-{next(_serial) if n is None else n:08x}"


def rec(
    age: timedelta,
    size: int = 5 * MB,
    volume: str = "sd",
    *,
    hold: bool = False,
    restricted: bool = False,
    n: int | None = None,
) -> RecordingFacts:
    started = NOW - age
    return RecordingFacts(rid(started, n), started, size, volume, hold, restricted)


def policy(days: int | None = 180, quota: int | None = None, min_free: int = 0) -> RetentionPolicy:
    return RetentionPolicy(days, quota, min_free, keep_forever=days is None)


def roomy(name: str = "sd") -> VolumeUsage:
    return VolumeUsage(name, 100 * GB, 90 * GB)


# --- policy --------------------------------------------------------------------------------


def test_forever_needs_the_explicit_flag() -> None:
    with pytest.raises(ValueError, match="keep_forever=True"):
        RetentionPolicy(max_age_days=None)
    assert RetentionPolicy(max_age_days=None, keep_forever=True).max_age is None
    with pytest.raises(ValueError, match="contradicts"):
        RetentionPolicy(max_age_days=30, keep_forever=True)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            RetentionPolicy(max_age_days=bad)
    with pytest.raises(ValueError, match="quota"):
        RetentionPolicy(30, quota_bytes=0)
    with pytest.raises(ValueError, match="min_free"):
        RetentionPolicy(30, min_free_bytes=-1)


# --- max age -------------------------------------------------------------------------------


def test_max_age_boundary_is_exactly_n_days() -> None:
    just_under = rec(timedelta(days=30) - timedelta(seconds=1))
    exactly = rec(timedelta(days=30))
    older = rec(timedelta(days=31))
    plan = plan_deletions([just_under, exactly, older], [roomy()], policy(30), NOW)
    assert plan == [
        Deletion(older.rec_id, "sd", "max_age", older.size_bytes),
        Deletion(exactly.rec_id, "sd", "max_age", exactly.size_bytes),
    ]


def test_keep_forever_erases_nothing_by_age() -> None:
    ancient = rec(timedelta(days=3650))
    assert plan_deletions([ancient], [roomy()], policy(None), NOW) == []


def test_expired_recordings_go_oldest_first_with_ties_by_id() -> None:
    same_time = NOW - timedelta(days=40)
    b = RecordingFacts(rid(same_time, 0xB), same_time, MB, "sd", False, False)
    a = RecordingFacts(rid(same_time, 0xA), same_time, MB, "sd", False, False)
    oldest = rec(timedelta(days=50))
    for order in ([b, a, oldest], [oldest, a, b], [a, oldest, b]):
        got = [d.rec_id for d in plan_deletions(order, [roomy()], policy(30), NOW)]
        assert got == [oldest.rec_id, a.rec_id, b.rec_id]


def test_untrusted_clock_skips_the_age_rule_but_not_the_space_rules() -> None:
    # A Pi with no RTC whose clock jumped ahead: everything looks years old.
    future = NOW + timedelta(days=3650)
    recs = [rec(timedelta(days=d), 10 * MB) for d in (3, 2, 1)]
    got = plan_deletions(recs, [roomy()], policy(30, quota=25 * MB), future, clock_trusted=False)
    assert [(d.rec_id, d.reason) for d in got] == [(recs[0].rec_id, "quota")]
    assert len(plan_deletions(recs, [roomy()], policy(30), future)) == 3


def test_expired_on_an_unmounted_volume_is_still_due() -> None:
    old = rec(timedelta(days=40), volume="usb")
    assert [d.reason for d in plan_deletions([old], [roomy("sd")], policy(30), NOW)] == ["max_age"]


# --- exemptions ----------------------------------------------------------------------------


def test_hold_restricted_and_in_progress_are_never_erased() -> None:
    held = rec(timedelta(days=400), hold=True)
    restricted = rec(timedelta(days=400), restricted=True)
    running = rec(timedelta(days=400))
    tiny = VolumeUsage("sd", 10 * GB, 0)  # no free space at all: every rule wants room
    plan = plan_retention(
        [held, restricted, running],
        [tiny],
        policy(30, quota=1, min_free=GB),
        NOW,
        in_progress=frozenset({running.rec_id}),
    )
    assert plan.deletions == ()
    (short,) = plan.shortfalls
    assert short.volume == "sd"
    assert short.blocked_bytes == 15 * MB
    assert short.over_quota_bytes == 15 * MB - 1
    assert short.free_missing_bytes == GB
    assert short.bytes_needed == GB and short.reason == "low_space"


# --- quota and free space ------------------------------------------------------------------


def test_quota_erases_oldest_first_until_it_holds() -> None:
    recs = [rec(timedelta(days=d), 10 * MB) for d in (1, 2, 3, 4, 5)]  # 50 MB
    plan = plan_retention(recs, [roomy()], policy(180, quota=25 * MB), NOW)
    assert [(d.rec_id, d.reason) for d in plan.deletions] == [
        (recs[4].rec_id, "quota"),
        (recs[3].rec_id, "quota"),
        (recs[2].rec_id, "quota"),
    ]
    assert plan.freed_bytes == 30 * MB and plan.shortfalls == ()


def test_quota_skips_exempt_and_takes_the_next_oldest() -> None:
    held = rec(timedelta(days=9), 10 * MB, hold=True)
    older = rec(timedelta(days=8), 10 * MB)
    newer = rec(timedelta(days=1), 10 * MB)
    got = plan_deletions([held, older, newer], [roomy()], policy(180, quota=20 * MB), NOW)
    assert [d.rec_id for d in got] == [older.rec_id]


def test_min_free_counts_space_freed_by_earlier_deletions() -> None:
    expired = rec(timedelta(days=200), 30 * MB)
    recs = [expired, *(rec(timedelta(days=d), 10 * MB) for d in (5, 4, 3))]
    # 10 MB free, 45 MB wanted: the expired 30 MB comes first, then 10 MB of the oldest is enough
    volume = VolumeUsage("sd", GB, 10 * MB)
    plan = plan_retention(recs, [volume], policy(180, min_free=45 * MB), NOW)
    assert [(d.rec_id, d.reason) for d in plan.deletions] == [
        (expired.rec_id, "max_age"),
        (recs[1].rec_id, "low_space"),
    ]
    assert plan.shortfalls == ()


def test_reason_is_quota_while_over_quota_then_low_space() -> None:
    recs = [rec(timedelta(days=d), 10 * MB) for d in (4, 3, 2, 1)]
    volume = VolumeUsage("sd", GB, 0)
    plan = plan_retention(recs, [volume], policy(180, quota=30 * MB, min_free=20 * MB), NOW)
    assert [d.reason for d in plan.deletions] == ["quota", "low_space"]


def test_volumes_are_independent_and_ordered_by_name() -> None:
    sd = [rec(timedelta(days=d), 10 * MB, "sd") for d in (3, 2)]
    usb = [rec(timedelta(days=d), 10 * MB, "usb") for d in (5, 1)]
    volumes = [VolumeUsage("usb", GB, GB), VolumeUsage("sd", GB, GB)]
    got = plan_deletions([*usb, *sd], volumes, policy(180, quota=10 * MB), NOW)
    assert [(d.volume, d.rec_id) for d in got] == [("sd", sd[0].rec_id), ("usb", usb[0].rec_id)]


def test_nothing_to_do_when_within_limits() -> None:
    recs = [rec(timedelta(days=d)) for d in range(10)]
    plan = plan_retention(recs, [roomy()], policy(180, quota=GB, min_free=GB), NOW)
    assert plan.deletions == () and plan.shortfalls == ()


def test_duplicate_ids_are_counted_once() -> None:
    r = rec(timedelta(days=1), 20 * MB)
    assert plan_deletions([r, r], [roomy()], policy(180, quota=25 * MB), NOW) == []


def test_space_is_low() -> None:
    assert space_is_low(VolumeUsage("sd", GB, 499 * MB), policy(min_free=500 * MB))
    assert not space_is_low(VolumeUsage("sd", GB, 500 * MB), policy(min_free=500 * MB))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_deletions([], [], policy(), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        RecordingFacts("x", datetime(2026, 1, 1), 1, "sd", False, False)


# --- index documents -----------------------------------------------------------------------


def test_from_index_doc_reads_and_defaults() -> None:
    doc = {
        "id": "20261129T103000Z-0a1b2c3d",
        "started_at": "2026-11-29T10:30:00.250000+00:00",
        "size_bytes": 1234,
        "volume": "usb",
        "legal_hold": True,
        "restricted": False,
        "caller_number": "0612345678",
    }
    f = RecordingFacts.from_index_doc(doc)
    assert f == RecordingFacts(
        "20261129T103000Z-0a1b2c3d",
        datetime(2026, 11, 29, 10, 30, 0, 250000, tzinfo=UTC),
        1234,
        "usb",
        True,
        False,
    )
    bare = RecordingFacts.from_index_doc({"id": "20261129T103000Z-0a1b2c3d"}, volume_default="x")
    assert bare.started_at == datetime(2026, 11, 29, 10, 30, tzinfo=UTC)
    assert (bare.size_bytes, bare.volume, bare.on_hold, bare.restricted) == (0, "x", False, False)
    # Today's index has the audio size under audio.bytes.
    today = {"id": "20261129T103000Z-0a1b2c3d", "audio": {"bytes": 9600}}
    assert RecordingFacts.from_index_doc(today).size_bytes == 9600
    zulu = {"id": "20261129T103000Z-0a1b2c3d", "started_at": "2026-11-29T10:30:00Z"}
    assert RecordingFacts.from_index_doc(zulu).started_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not a doc", "not a JSON object"),
        ({}, "without a well-formed 'id'"),
        ({"id": "0612345678"}, "without a well-formed 'id'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "started_at": "yesterday"}, "'started_at' is not"),
        ({"id": "20261129T103000Z-0a1b2c3d", "started_at": "2026-11-29T10:30:00"}, "no UTC"),
        ({"id": "20261129T103000Z-0a1b2c3d", "started_at": 17}, "'started_at' is not a string"),
        ({"id": "20261129T103000Z-0a1b2c3d", "size_bytes": -1}, "'size_bytes'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "size_bytes": "12"}, "'size_bytes'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "size_bytes": True}, "'size_bytes'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "volume": ""}, "'volume'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "legal_hold": "false"}, "'legal_hold'"),
        ({"id": "20261129T103000Z-0a1b2c3d", "restricted": 1}, "'restricted'"),
    ],
)
def test_from_index_doc_rejects_malformed(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        RecordingFacts.from_index_doc(doc)  # type: ignore[arg-type]
    # The message never repeats a bad value (it could be anything, a phone number included).
    assert "0612345678" not in str(info.value)


def test_facts_from_index_skips_bad_docs_and_says_why() -> None:
    docs = [{"id": "20261129T103000Z-0a1b2c3d"}, {"id": "+33612345678"}]
    facts, errors = facts_from_index(docs)
    assert [f.rec_id for f in facts] == ["20261129T103000Z-0a1b2c3d"]
    assert len(errors) == 1 and "33612345678" not in errors[0]


def test_facts_from_the_index_go_into_columns_oldest_first() -> None:
    """The index gives ids in order; calls started within the same second may come out of
    start order (the id's hex is random), and an id listed twice counts once."""
    t0 = NOW - timedelta(days=3)
    docs = [
        {"id": rid(t0, 1), "started_at": (t0 + timedelta(microseconds=900)).isoformat(),
         "size_bytes": 1},
        {"id": rid(t0, 2), "started_at": (t0 + timedelta(microseconds=100)).isoformat(),
         "size_bytes": 2, "legal_hold": True},
        {"id": rid(t0, 2), "size_bytes": 99},
        {"id": rid(t0 + timedelta(seconds=1), 3), "volume": "usb", "size_bytes": 3,
         "restricted": True},
    ]
    facts, errors = facts_from_index(docs)
    assert errors == [] and len(facts) == 3
    assert [(f.size_bytes, f.volume, f.on_hold, f.restricted) for f in facts] == [
        (2, "sd", True, False), (1, "sd", False, False), (3, "usb", False, True)]
    assert facts[1].started_at == t0 + timedelta(microseconds=900)
    assert [f.rec_id for f in facts.without([rid(t0, 2)])] == [rid(t0, 1), docs[3]["id"]]
    # In any other order: sorted all the same (the first of a repeated id counts).
    again, _ = facts_from_index(docs[::-1])
    assert [(f.rec_id, f.size_bytes) for f in again] == [
        (rid(t0, 2), 99), (rid(t0, 1), 1), (docs[3]["id"], 3)]


def test_a_large_table_in_scrambled_start_order() -> None:
    base = NOW - timedelta(days=100)
    docs = [{"id": rid(base + timedelta(seconds=k), k),
             "started_at": (base + timedelta(seconds=(k * 7919) % 3000)).isoformat(),
             "size_bytes": k} for k in range(3000)]
    facts, _ = facts_from_index(docs)  # thousands of descents: sorted by key instead
    starts = [f.started_at for f in facts]
    assert starts == sorted(starts) and len(facts) == 3000
    plan = plan_retention(facts, [roomy()], policy(30), NOW)
    assert len(plan.deletions) == 3000
    assert [d.rec_id for d in plan.deletions] == [f.rec_id for f in facts]


# --- days left -----------------------------------------------------------------------------


def steady(days: int, per_day: int = 10, size: int = 5 * MB) -> list[RecordingFacts]:
    """`per_day` calls a day, evenly spread, for the last `days` days."""
    step = timedelta(days=1) / per_day
    return [rec(step * (k + 0.5), size) for k in range(days * per_day)]


def test_days_left_at_a_steady_call_volume() -> None:
    # 10 calls a day of 5 MB = 50 MB/day; 1 GB free with no reserve -> 20 days.
    recs = steady(30)
    volume = VolumeUsage("sd", 16 * GB, GB)
    forever = policy(None)
    assert days_left(volume, recs, forever, NOW) == pytest.approx(20.0)
    est = estimate_days_left(volume, recs, forever, NOW)
    assert est.state == "ok" and est.limit == "free_space"
    assert est.bytes_per_day == pytest.approx(50 * MB)
    # A max age far beyond 20 days changes nothing; the 500 MB reserve halves the room.
    assert days_left(volume, recs, policy(180), NOW) == pytest.approx(20.0)
    assert days_left(volume, recs, policy(180, min_free=500 * MB), NOW) == pytest.approx(10.0)


def test_days_left_until_the_quota() -> None:
    recs = steady(30)  # 1.5 GB recorded
    volume = VolumeUsage("sd", 16 * GB, 10 * GB)
    assert days_left(volume, recs, policy(None, quota=2 * GB), NOW) == pytest.approx(10.0)
    assert estimate_days_left(volume, recs, policy(None, quota=2 * GB), NOW).limit == "quota"


def test_days_left_never_when_max_age_keeps_up() -> None:
    # 30 days kept at 50 MB/day peaks near 1.5 GB: 2 GB more free space is never used up.
    recs = steady(30)
    volume = VolumeUsage("sd", 16 * GB, 2 * GB)
    est = estimate_days_left(volume, recs, policy(30), NOW)
    assert est.days is None and est.state == "never"
    assert est.peak_bytes == pytest.approx(1.5 * GB, rel=0.01)
    assert "never" in est.describe()
    # Kept forever, the same volume lasts 2 GB / 50 MB = 40 days.
    assert days_left(volume, recs, policy(None), NOW) == pytest.approx(40.0)


def test_days_left_counts_what_expires_meanwhile() -> None:
    # One call a day until two weeks ago, ten a day since: 780 MB stored, 50 MB/day now.
    light = [rec(timedelta(days=14.5 + k), 5 * MB) for k in range(16)]
    recs = [*light, *steady(14)]
    volume = VolumeUsage("sd", 16 * GB, 600 * MB)
    # Kept forever: 600 MB / 50 MB a day = 12 days. With 30 days kept, the light days expire
    # meanwhile (5 MB a day), so usage grows by 45 MB a day: about 13.3 days.
    assert days_left(volume, recs, policy(None), NOW) == pytest.approx(12.0)
    assert days_left(volume, recs, policy(30), NOW) == pytest.approx(600 / 45, rel=0.02)


def test_days_left_unknown_without_recent_history() -> None:
    volume = VolumeUsage("sd", 16 * GB, GB)
    assert estimate_days_left(volume, [], policy(), NOW).state == "unknown"
    old = [rec(timedelta(days=100))]
    est = estimate_days_left(volume, old, policy(), NOW)
    assert est.days is None and est.state == "unknown" and est.short() == "unknown"


def test_days_left_full_now() -> None:
    volume = VolumeUsage("sd", 16 * GB, 100 * MB)
    est = estimate_days_left(volume, steady(3), policy(min_free=500 * MB), NOW)
    assert est.days == 0.0 and est.state == "full"


def test_days_left_young_history_uses_its_own_span() -> None:
    # Two days of history at 50 MB/day: the rate is not diluted over the 14-day window.
    recs = steady(2)
    assert days_left(VolumeUsage("sd", 16 * GB, GB), recs, policy(None), NOW) == pytest.approx(
        20.0, rel=0.05
    )


# --- report and log ------------------------------------------------------------------------


def test_storage_report_and_its_table_hold_no_personal_data() -> None:
    docs = []
    for k, facts in enumerate(steady(3)):
        docs.append(
            {
                "id": facts.rec_id,
                "started_at": facts.started_at.isoformat(),
                "size_bytes": facts.size_bytes,
                "caller_number": f"+3361234{k:04d}",
                "caller_name": "DUPONT MARIE",
                "called_number": "0145678901",
                "legal_hold": k == 0,
            }
        )
    docs.append({"id": "20200101T000000Z-00000001", "volume": "usb", "size_bytes": 7})
    facts, errors = facts_from_index(docs)
    assert errors == []
    sd = VolumeUsage("sd", 32 * GB, 20 * GB, path="/var/lib/callrec")
    rows = storage_report([sd], facts, policy(180, min_free=500 * MB), NOW)
    assert [r.name for r in rows] == ["sd", "usb"]
    first = rows[0]
    assert (first.recordings_count, first.exempt_count) == (30, 1)
    assert first.recordings_bytes == 150 * MB
    assert first.oldest == min(f.started_at for f in facts if f.volume == "sd")
    assert first.days_left.state == "never"  # 180 days at 50 MB/day: 9 GB fit in 19.5
    assert rows[1].path == "(not mounted)" and rows[1].due_count == 1
    text = format_report(rows)
    for secret in ("3361234", "DUPONT", "0145678901", "MARIE"):
        assert secret not in text
    assert "/var/lib/callrec" in text and "150.0 MB" in text and "max age 180 days" in text
    assert "sd: days left:" in text and "usb: not mounted" in text
    assert rows[0].as_dict()["recordings"] == 30


def test_report_shows_the_shortfall() -> None:
    held = rec(timedelta(days=1), 2 * GB, hold=True)
    rows = storage_report([VolumeUsage("sd", 4 * GB, GB)], [held], policy(quota=GB), NOW)
    assert rows[0].shortfall is not None and rows[0].shortfall.bytes_needed == GB
    assert "1.0 GB over the recordings quota" in format_report(rows)


def test_format_report_of_nothing() -> None:
    assert "no volume" in format_report([])


def test_deletion_log_message() -> None:
    d = Deletion("20261129T103000Z-0a1b2c3d", "sd", "max_age", 1_234_567)
    expected = "retention: erased 20261129T103000Z-0a1b2c3d (max_age, 1.2 MB)"
    assert deletion_log_message(d) == expected
    odd = Deletion("0612345678", "sd", "quota", 10)
    assert "0612345678" not in deletion_log_message(odd)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1_234_567, 5 * GB, 3 * 10**15)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.2 MB",
        "5.0 GB",
        "3000.0 TB",
    ]
