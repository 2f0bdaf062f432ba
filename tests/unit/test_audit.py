"""The access log: chain, seals, every kind of tampering, power cuts, processes, retention."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callrec.audit import (
    GENESIS,
    AuditLog,
    canonical,
    canonical_line,
    entry_hash,
    redact_numbers,
    seal,
)
from callrec.privacy.pseudonym import Pseudonymizer

KEY = bytes(range(32))
REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, start: datetime = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def make_log(tmp_path: Path, clock: Callable[[], datetime] | None = None, *,
             key: bytes | None = KEY, retention_days: int = 365) -> AuditLog:
    return AuditLog(tmp_path / "audit", key, retention_days=retention_days,
                    now=clock or Clock(), clock_trusted=lambda: True,
                    pseudonymize=Pseudonymizer(b"p" * 32))


def only_file(log: AuditLog) -> Path:
    (name,) = log.files()
    return log.directory / name


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def three(log: AuditLog) -> None:
    log.record("alice", "auth.login", "alice")
    log.record("alice", "recording.play", "20260310T090000Z-0123abcd")
    log.record("alice", "recording.erase", "20260310T090000Z-0123abcd", "asked by the caller")


def rewrite_chain(docs: list[dict[str, Any]], key: bytes | None, prev: str = GENESIS) -> bytes:
    """What an attacker without the key does: fix every prev and hash after an edit."""
    out = b""
    for doc in docs:
        doc = {k: v for k, v in doc.items() if k not in ("hash", "mac")}
        doc["prev"] = prev
        doc["hash"] = entry_hash(doc)
        if key is not None:
            doc["mac"] = seal(key, doc["hash"])
        prev = doc["hash"]
        out += canonical_line(doc)
    return out


# -- the chain -------------------------------------------------------------------------------
def test_entries_are_chained_sealed_and_verify(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    docs = list(log.entries())
    assert [d["seq"] for d in docs] == [1, 2, 3]
    assert docs[0]["prev"] == GENESIS
    assert [d["prev"] for d in docs[1:]] == [d["hash"] for d in docs[:-1]]
    assert all(d["hash"] == entry_hash(d) and d["mac"] == seal(KEY, d["hash"]) for d in docs)
    assert docs[2]["reason"] == "asked by the caller"
    assert only_file(log).name == "audit-2026-03.jsonl"
    result = log.verify()
    assert result.ok and result.entries == 3 and result.last_seq == 3 and not result.tears
    assert result.summary().startswith("access log OK: 3 entries")


def test_the_chain_continues_across_months(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    log.record("alice", "auth.login", "alice")
    clock.now += timedelta(days=31)
    log.record("bob", "auth.login", "bob")
    assert log.files() == ["audit-2026-03.jsonl", "audit-2026-04.jsonl"]
    first, second = log.entries()
    assert second["prev"] == first["hash"] and second["seq"] == 2
    assert log.verify().ok


def test_a_clock_that_goes_back_keeps_appending_to_the_newest_file(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    log.record("alice", "auth.login", "alice")
    clock.now = datetime(1970, 1, 1, tzinfo=UTC)  # a Pi booted without network time
    log.record("bob", "auth.login", "bob")
    assert log.files() == ["audit-2026-03.jsonl"]
    assert log.verify().ok


def test_phone_numbers_never_reach_the_log(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("privacy", "subject.erase", "p-0123456789abcdef",
               "caller +33 6 12 34 56 78 asked on 2026-03-01 by phone",
               {"note": "also 06.12.34.56.78", "ip": "192.168.1.20"})
    raw = only_file(log).read_text()
    assert "12 34 56" not in raw and "12.34.56" not in raw and "612345678" not in raw
    pseudo = Pseudonymizer(b"p" * 32)("0612345678")
    assert raw.count(pseudo) == 2  # both spellings: one person, one pseudonym
    assert "2026-03-01" in raw and "192.168.1.20" in raw and "p-0123456789abcdef" in raw
    assert redact_numbers("call 0612345678", None) == "call [number]"
    assert redact_numbers("recording 20240501T090000Z-0123abcd", None).endswith("0123abcd")


def test_fields_that_cannot_go_in_are_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    for bad in [("alice", "Login"), ("", "auth.login"), ("a\nb", "auth.login")]:
        with pytest.raises(ValueError):
            log.record(*bad)
    with pytest.raises(ValueError):
        log.record("alice", "auth.login", reason="x" * 1001)
    assert log.files() == []


# -- tampering ---------------------------------------------------------------------------------
def test_an_edited_field_is_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    path.write_bytes(path.read_bytes().replace(b'"actor":"alice"', b'"actor":"mallory"', 1))
    result = log.verify()
    assert not result.ok and result.broken_at == 1
    assert "edited" in result.problems[0].message


def test_a_deleted_line_is_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    lines = lines_of(path)
    path.write_bytes(lines[0] + lines[2])
    result = log.verify()
    assert not result.ok and result.broken_at == 3
    assert "entries 2 are missing" in result.problems[0].message


def test_reordered_lines_are_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    a, b, c = lines_of(path)
    path.write_bytes(a + c + b)
    result = log.verify()
    assert not result.ok and result.broken_at == 3


def test_entries_removed_from_the_end_are_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    path.write_bytes(b"".join(lines_of(path)[:2]))
    result = log.verify()
    assert not result.ok
    assert "truncated" in result.problems[0].message and result.broken_at == 3


def test_a_line_cut_short_by_someone_is_truncation_not_a_power_cut(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # head.json vouches for the whole last entry
    result = log.verify()
    assert not result.ok and not result.tears
    assert "truncated" in result.problems[0].message


def test_a_whole_rewrite_without_the_key_is_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    docs = [json.loads(line) for line in lines_of(path)]
    docs[1]["target"] = "20260310T090000Z-ffffffff"  # hide what was played
    # The first entry kept as it was; from the edit on, re-chained under the attacker's guess.
    forged = lines_of(path)[0] + rewrite_chain(docs[1:], b"\x00" * 32, docs[0]["hash"])
    path.write_bytes(forged)
    head = json.loads((log.directory / "head.json").read_text())
    head = {k: v for k, v in head.items() if k not in ("hash", "mac")}
    head["hash_of_last"] = json.loads(forged.splitlines()[-1])["hash"]
    head["hash"] = hashlib.sha256(canonical(head)).hexdigest()
    head["mac"] = seal(b"\x00" * 32, head["hash"])
    (log.directory / "head.json").write_text(json.dumps(head))
    result = log.verify()
    assert not result.ok and result.broken_at == 2
    assert "without the key" in result.problems[0].message
    # Without the key, the same rewrite passes the hash chain: this is what the seal is for.
    assert AuditLog(log.directory, None).verify().ok


def test_a_missing_head_is_found(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    (log.directory / "head.json").unlink()
    assert not log.verify().ok


def test_a_log_read_without_the_key_checks_the_chain_only(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    result = AuditLog(log.directory, None).verify()
    assert result.ok and not result.sealed and "NOT checked" in result.summary()


# -- power cuts ----------------------------------------------------------------------------
def test_a_torn_last_line_is_reported_as_a_tear_kept_and_recorded(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    head = (log.directory / "head.json").read_bytes()
    # The power went during the write of a 4th entry: part of its line is on disk, and
    # head.json (replaced only after the line's fsync) still names entry 3.
    log.record("bob", "recording.download", "20260310T090000Z-0123abcd")
    (log.directory / "head.json").write_bytes(head)
    data = path.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    fragment = data[last : last + 50]
    path.write_bytes(data[:last] + fragment)

    result = log.verify()
    assert result.ok and len(result.tears) == 1 and result.entries == 3
    assert "power" in result.tears[0].message

    log.record("bob", "auth.login", "bob")
    assert fragment in path.read_bytes()  # evidence is never deleted
    docs = list(log.entries())
    torn = docs[3]
    assert torn["action"] == "audit.torn" and torn["seq"] == 4 and torn["prev"] == docs[2]["hash"]
    assert torn["details"]["bytes"] == len(fragment)
    assert docs[4]["action"] == "auth.login" and docs[4]["seq"] == 5
    result = log.verify()
    assert result.ok and len(result.tears) == 1 and result.entries == 5

    # Editing the kept fragment afterwards is tampering.
    path.write_bytes(path.read_bytes().replace(fragment, fragment[:-1] + b"X"))
    assert not log.verify().ok


def test_a_lost_newline_only_is_no_tear(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    path.write_bytes(path.read_bytes()[:-1])
    assert log.verify().ok and not log.verify().tears
    log.record("bob", "auth.login", "bob")
    result = log.verify()
    assert result.ok and result.entries == 4 and not result.tears


def test_a_tear_at_the_end_of_last_month_is_recorded_in_the_new_one(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    three(log)
    path = only_file(log)
    path.write_bytes(path.read_bytes() + b'{"seq":4,"at":"2026-03-3')
    clock.now += timedelta(days=31)
    log.record("bob", "auth.login", "bob")
    assert log.files() == ["audit-2026-03.jsonl", "audit-2026-04.jsonl"]
    result = log.verify()
    assert result.ok and len(result.tears) == 1 and result.entries == 5


# -- several processes -------------------------------------------------------------------------
def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from callrec.audit import AuditLog
        log = AuditLog(Path({str(directory)!r}), bytes(range(32)), clock_trusted=lambda: True)
        for i in range(60):
            log.record(sys.argv[1], "recording.play", f"item-{{i}}")
    """)
    env = {"PYTHONPATH": f"{REPO / 'firmware'}:{REPO / 'web'}", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", script, who], env=env)
             for who in ("daemon", "cli:root")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    log = AuditLog(directory, KEY, clock_trusted=lambda: True)
    result = log.verify()
    assert result.ok, result.summary()
    assert result.entries == 120 and result.last_seq == 120
    actors = [d["actor"] for d in log.entries()]
    assert actors.count("daemon") == 60 and actors.count("cli:root") == 60


# -- retention -------------------------------------------------------------------------------
def year_of_logs(tmp_path: Path) -> tuple[AuditLog, Clock]:
    clock = Clock(datetime(2025, 1, 15, tzinfo=UTC))
    log = make_log(tmp_path, clock, retention_days=90)
    for _ in range(6):  # January to June, two entries a month
        log.record("alice", "auth.login", "alice")
        log.record("alice", "recording.play", "20250115T090000Z-0123abcd")
        clock.now += timedelta(days=30)
    return log, clock


def test_retention_deletes_old_months_whole_and_verify_still_passes(tmp_path: Path) -> None:
    log, clock = year_of_logs(tmp_path)
    # The month change at each append already pruned: at 90 days only the months that
    # ended more than 90 days ago are gone.
    assert log.files()[0] == "audit-2025-03.jsonl"
    clock.now = datetime(2025, 8, 1, tzinfo=UTC)
    assert log.prune() == ["audit-2025-03.jsonl", "audit-2025-04.jsonl"]
    checkpoint = json.loads((log.directory / "checkpoint.json").read_text())
    assert checkpoint["file"] == "audit-2025-05.jsonl" and checkpoint["seq"] == 9
    assert checkpoint["deleted"][:2] == ["audit-2025-01.jsonl", "audit-2025-02.jsonl"]
    result = log.verify()
    assert result.ok and result.first_seq == 9 and result.last_seq == 12
    log.record("bob", "auth.login", "bob")
    assert log.verify().ok


def test_retention_never_deletes_the_newest_file_nor_with_an_untrusted_clock(
    tmp_path: Path,
) -> None:
    log, clock = year_of_logs(tmp_path)
    clock.now = datetime(2030, 1, 1, tzinfo=UTC)
    untrusted = AuditLog(log.directory, KEY, now=clock, clock_trusted=lambda: False)
    assert untrusted.prune() == []
    assert log.prune()
    assert log.files() == ["audit-2025-06.jsonl"]
    assert log.verify().ok


def test_deletions_inside_the_kept_range_are_still_found(tmp_path: Path) -> None:
    log, _ = year_of_logs(tmp_path)
    assert log.verify().ok
    (log.directory / "audit-2025-04.jsonl").unlink()  # a month in the middle
    result = log.verify()
    assert not result.ok and "missing" in result.problems[0].message


def test_deleting_the_oldest_kept_month_is_found(tmp_path: Path) -> None:
    log, _ = year_of_logs(tmp_path)
    (log.directory / log.files()[0]).unlink()
    assert not log.verify().ok


def test_an_edited_checkpoint_is_found(tmp_path: Path) -> None:
    log, _ = year_of_logs(tmp_path)
    path = log.directory / "checkpoint.json"
    checkpoint = json.loads(path.read_text())
    checkpoint["file"] = "audit-2025-04.jsonl"  # to hide the deletion of March
    path.write_text(json.dumps(checkpoint))
    assert not log.verify().ok


# -- reading ---------------------------------------------------------------------------------
def test_search_filters_and_pages_newest_first(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    log.record("alice", "auth.login", "alice")
    clock.now += timedelta(days=1)
    log.record("alice", "recording.play", "r1")
    log.record("bob", "recording.download", "r2")
    clock.now += timedelta(days=1)
    log.record("bob", "recording.erase", "r1")
    page, total = log.search(action="recording.")
    assert total == 3 and [d["seq"] for d in page] == [4, 3, 2]
    assert log.search(actor="bob")[1] == 2
    assert [d["seq"] for d in log.search(targets=["r1"])[0]] == [4, 2]
    assert log.search(since=date(2026, 3, 11), until=date(2026, 3, 11))[1] == 2
    page, total = log.search(offset=1, limit=2)
    assert total == 4 and [d["seq"] for d in page] == [3, 2]


def test_verification_is_cached_until_a_file_changes(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    first = log.verify()
    assert log.verify() is first
    log.record("bob", "auth.login", "bob")
    assert log.verify() is not first and log.verify().entries == 4


# -- the command line --------------------------------------------------------------------------
def test_cli_verify_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from callrec.audit import open_audit
    from callrec.cli import main
    from callrec.config import Config, StorageConfig
    from callrec.storage.open_store import open_keys

    cfg = tmp_path / "callrec.toml"
    cfg.write_text(f'runtime_dir = "{tmp_path}/run"\n[storage]\ndata_dir = "{tmp_path}/data"\n')
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "data")))
    log = open_audit(config, open_keys(config), clock_trusted=lambda: True)
    three(log)

    assert main(["audit", "verify", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.startswith("access log OK: 3 entries, seq 1..3")
    assert main(["audit", "show", "--config", str(cfg), "--action", "recording.", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["total"] == 2 and [e["seq"] for e in shown["items"]] == [3, 2]
    assert main(["audit", "show", "--config", str(cfg), "--actor", "alice"]) == 0
    out = capsys.readouterr().out
    assert "recording.erase 20260310T090000Z-0123abcd (asked by the caller)" in out

    path = only_file(log)
    a, _, c = lines_of(path)
    path.write_bytes(a + c)
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 3" in out and f"TAMPERED: {path.name}:2:" in out


def test_verification_after_appends_checks_new_lines_and_still_sees_old_edits(
    tmp_path: Path,
) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    three(log)
    clock.now += timedelta(days=31)
    three(log)
    assert log.verify().entries == 6
    log.record("bob", "auth.login", "bob")  # only the new line is checked now
    result = log.verify()
    assert result.ok and result.entries == 7 and result.last_seq == 7
    assert result.files == log.files()
    fresh = AuditLog(log.directory, KEY).verify()
    assert (fresh.entries, fresh.last_seq, fresh.ok) == (7, 7, True)

    newest = log.directory / log.files()[-1]
    newest.write_bytes(newest.read_bytes().replace(b'"actor":"alice"', b'"actor":"eve"', 1))
    log.record("bob", "auth.logout", "bob")  # an append right after the edit
    assert log.verify().broken_at == 4

    newest.write_bytes(newest.read_bytes().replace(b'"actor":"eve"', b'"actor":"alice"', 1))
    assert log.verify().ok
    oldest = log.directory / log.files()[0]  # a month verified long ago
    oldest.write_bytes(oldest.read_bytes().replace(b'"actor":"alice"', b'"actor":"eve"', 1))
    log.record("bob", "auth.login", "bob")
    assert log.verify().broken_at == 1


def test_a_truncation_stays_found_after_the_next_append(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    path.write_bytes(b"".join(lines_of(path)[:2]))
    log.record("bob", "auth.login", "bob")  # moves head.json on: the evidence must survive
    result = log.verify()
    assert not result.ok and result.broken_at == 3
    assert "removed from the end" in result.problems[0].message
    assert [d["action"] for d in log.entries()][-2:] == ["audit.anomaly", "auth.login"]


def test_two_power_cuts_in_a_row_are_still_tears(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    three(log)
    path = only_file(log)
    # A first write cut short, then the write that was recording it cut short too.
    path.write_bytes(path.read_bytes() + b'{"action":"recording.pl' + b'\n{"action":"aud')
    log.record("bob", "auth.login", "bob")
    result = log.verify()
    assert result.ok and len(result.tears) == 1 and result.entries == 5
    torn = [d for d in log.entries() if d["action"] == "audit.torn"]
    assert torn[0]["details"]["lines"] == 2


def test_hooks_for_the_daemon_and_retention(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.evidence("call.refused", {"at": "2026-03-10T09:00:00+00:00", "line": "line1",
                                  "direction": "in", "reason": "refusal_key",
                                  "subject": "p-0123456789abcdef", "prompt": None})
    assert log.retention_erased([("20250101T090000Z-0123abcd", "max_age", 123_456),
                                 ("20250101T100000Z-0123abce", "quota", 654_321)])
    refused, *erased = log.entries()
    assert (refused["actor"], refused["action"], refused["target"]) == (
        "system", "call.refused", "p-0123456789abcdef")
    assert "prompt" not in refused["details"] and refused["details"]["line"] == "line1"
    assert [(e["action"], e["target"], e["details"]["rule"]) for e in erased] == [
        ("retention.erase", "20250101T090000Z-0123abcd", "max_age"),
        ("retention.erase", "20250101T100000Z-0123abce", "quota")]
    assert log.verify().ok


def test_record_from_cli_is_sealed_like_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callrec.audit import open_audit, record_from_cli
    from callrec.config import Config, StorageConfig
    from callrec.storage.open_store import open_keys

    monkeypatch.setenv("SUDO_USER", "marie")
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "data")))
    daemon_log = open_audit(config, open_keys(config), clock_trusted=lambda: True)
    daemon_log.record("admin", "auth.login", "admin")
    assert record_from_cli(config, "user.add", "carol", details={"roles": ["supervisor"]})
    entries = list(daemon_log.entries())
    assert entries[-1]["actor"] == "cli:marie" and entries[-1]["target"] == "carol"
    assert daemon_log.verify().ok
