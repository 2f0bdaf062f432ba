"""Configuration changes reach the access log (which keys, never their values), and the
log's own check at start finds tampering."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from callrec.audit import AuditLog
from callrec.config import Config, ControllerConfig, RetentionConfig
from callrec.config_audit import (
    audit_problem,
    changed_keys,
    fingerprint,
    record_config_changes,
)

KEY = bytes(range(32))


def entries(log: AuditLog) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in log.entries() if e["action"] == "config.change"]


def test_fingerprint_names_every_key_and_hides_every_value() -> None:
    config = Config(controller=ControllerConfig(name="Cabinet Dupont", contact="0612345678"))
    fp = fingerprint(config)
    assert "controller.name" in fp and "retention.max_age_days" in fp and "runtime_dir" in fp
    assert "source" not in fp
    flat = repr(fp)
    assert "Dupont" not in flat and "0612345678" not in flat
    other = dataclasses.replace(config, retention=RetentionConfig(max_age_days=90))
    assert changed_keys(fp, fingerprint(other)) == ["retention.max_age_days"]
    assert changed_keys(fp, fp) == []
    assert changed_keys({"a": "1"}, {"b": "2"}) == ["a", "b"]


def test_each_start_logs_which_settings_changed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", KEY)
    config = Config(controller=ControllerConfig(name="Cabinet Dupont"))
    assert record_config_changes(log, config, log.directory) == []
    [first] = entries(log)
    assert first["details"]["first_start"] is True and first["actor"] == "system"
    assert record_config_changes(log, config, log.directory) == []  # unchanged: nothing new
    assert len(entries(log)) == 1
    changed = dataclasses.replace(config, controller=ControllerConfig(name="Dupont & Fils"),
                                  retention=RetentionConfig(max_age_days=30))
    assert record_config_changes(log, changed, log.directory) == [
        "controller.name", "retention.max_age_days"]
    last = entries(log)[-1]
    assert last["details"]["keys"] == ["controller.name", "retention.max_age_days"]
    raw = b"".join(p.read_bytes() for p in log.directory.iterdir() if p.is_file())
    assert b"Dupont" not in raw  # the values are nowhere in the log's folder
    assert log.verify().ok


def test_the_start_up_check_reports_a_tampered_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", KEY)
    for i in range(3):
        log.record("alice", "recording.play", f"20261129T10000{i}Z-0000000{i}")
    assert audit_problem(log) == ""
    [month] = [p for p in log.directory.glob("audit-*.jsonl")]
    month.write_bytes(month.read_bytes().replace(b"alice", b"mallo"))
    fresh = AuditLog(tmp_path / "audit", KEY)
    problem = audit_problem(fresh)
    assert problem.startswith("access log check failed:")
