"""Retention at work on a real (encrypted) store: what is erased, what is kept, what is logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callrec.config import Config, RetentionConfig, StorageConfig
from callrec.housekeeping import Housekeeper, clock_trusted
from callrec.storage.open_store import open_store
from callrec.storage.recordings import RecordingStore, new_recording_id

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def add(store: RecordingStore, days_ago: float, **extra: object) -> str:
    started = NOW - timedelta(days=days_ago)
    rec_id = new_recording_id(started)
    meta = {"id": rec_id, "started_at": started.isoformat(), "direction": "in",
            "caller_number": "0612345678", "status": "recording"}
    writer = store.open_writer(meta, 8000)
    writer.write(b"\x01\x02" * 8000)
    writer.close()
    store.add({**meta, **extra, "status": "complete", "audio": store.audio_info(writer, 8000)})
    return rec_id


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = open_store(Config(storage=StorageConfig(data_dir=str(tmp_path))))
    yield s
    s.close()


def keeper(store: RecordingStore, trusted: bool = True, **cfg: object) -> Housekeeper:
    return Housekeeper(store, RetentionConfig(**cfg), now=lambda: NOW,  # type: ignore[arg-type]
                       trusted_clock=lambda: trusted)


def test_expired_recordings_are_erased_with_their_keys_and_logged_without_numbers(
    store: RecordingStore, caplog: pytest.LogCaptureFixture
) -> None:
    old, fresh = add(store, 200), add(store, 10)
    held, restricted = add(store, 300, legal_hold=True), add(store, 300, restricted=True)
    assert store.get(old)["size_bytes"] > 16000  # audio + sidecar + key on disk
    with caplog.at_level(logging.INFO):
        plan = keeper(store, min_free_mb=0).run_once("test")
    assert [d.rec_id for d in plan.deletions] == [old]
    assert store.get(old) is None and not store.has_files(old)
    assert {r["id"] for r in store.all_docs()} == {fresh, held, restricted}
    assert f"retention: erased {old} (max_age" in caplog.text
    assert "0612345678" not in caplog.text


def test_an_unsynchronised_clock_applies_no_age_limit(store: RecordingStore) -> None:
    old = add(store, 400)
    assert keeper(store, trusted=False, min_free_mb=0).run_once().deletions == ()
    assert store.get(old) is not None


def test_quota_erases_oldest_first_and_reports_days_left(store: RecordingStore) -> None:
    ids = [add(store, d) for d in (5, 4, 3, 2, 1)]
    size = store.get(ids[0])["size_bytes"]
    hk = keeper(store, min_free_mb=0, quota_gb=(3 * size + size // 2) / 1e9)
    plan = hk.run_once()
    assert [d.rec_id for d in plan.deletions] == ids[:2]
    assert [d.reason for d in plan.deletions] == ["quota", "quota"]
    assert [r["id"] for r in store.all_docs()] == ids[2:]
    [row] = hk.report
    assert row["volume"] == "sd" and row["recordings"] == 3
    assert "sd" in hk.report_text and "0612345678" not in hk.report_text


def test_clock_trust_is_callrec_clocks_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    # How the state is read (timesyncd's flag, adjtimex) is tested in test_clock.py.
    from callrec import clock

    for synchronised in (True, False):
        state = clock.ClockState(synchronised, clock.KERNEL)
        monkeypatch.setattr(clock, "_cached", lambda state=state: state)
        assert clock_trusted() is synchronised


def test_a_large_erasure_writes_each_day_shard_once(store: RecordingStore) -> None:
    ids = [add(store, 400 + i / 100) for i in range(60)]  # a day or two, all expired
    keep = add(store, 1)
    before = store.bytes_written
    plan = keeper(store, min_free_mb=0).run_once()
    assert sorted(d.rec_id for d in plan.deletions) == sorted(ids)
    written = store.bytes_written - before
    # One rewrite of each old day's shard per batch (one batch here), not sixty.
    assert 0 < written < 2 * len(ids) * 1000
    assert [r["id"] for r in store.all_docs()] == [keep]
    assert not any(store.has_files(i) for i in ids)


def test_the_report_after_erasing_counts_what_is_left(store: RecordingStore) -> None:
    old, held = add(store, 200), add(store, 300, legal_hold=True)
    fresh = [add(store, d) for d in (3, 2, 1)]
    hk = keeper(store, min_free_mb=0)
    hk.run_once()
    [row] = hk.report
    assert row["recordings"] == 4 and row["exempt"] == 1
    assert row["recordings_bytes"] == sum(store.get(i)["size_bytes"] for i in [held, *fresh])
    assert store.get(old) is None
