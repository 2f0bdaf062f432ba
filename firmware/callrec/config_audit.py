"""Configuration changes in the access log, and the log's own check at start.

The configuration is a file a technician edits (there is no settings page yet), so the daemon
cannot know who changed it; it can say that it changed, which keys, and when it noticed:
at each start it compares a fingerprint of every key with the one kept from the previous
start and writes one "config.change" entry naming the keys that differ. The fingerprint
holds a SHA-256 prefix per value, never the values (a controller's contact or a file path
is nobody's business in the log): the entry says which settings changed, not to what.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from callrec.audit import AuditLog
from callrec.config import Config
from callrec.storage.atomic_json import write_atomic

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "config-fingerprint.json"
_NOT_KEYS = {"source"}  # where the file was read from, not a setting


def fingerprint(config: Config) -> dict[str, str]:
    """section.key -> a short digest of its value, for every setting. Pure."""
    out: dict[str, str] = {}
    for name, value in dataclasses.asdict(config).items():
        if name in _NOT_KEYS:
            continue
        items = value.items() if isinstance(value, dict) else [("", value)]
        for key, setting in items:
            digest = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()
            out[f"{name}.{key}" if key else name] = digest[:16]
    return out


def changed_keys(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The keys whose value differs, appeared or disappeared. Pure."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def record_config_changes(audit: AuditLog, config: Config, directory: Path) -> list[str]:
    """At start: log which settings changed since the previous start (none the first time,
    which is logged as the first configuration). Returns the changed keys."""
    path = directory / SNAPSHOT_NAME
    now = fingerprint(config)
    try:
        before: dict[str, str] | None = json.loads(path.read_text())
    except FileNotFoundError:
        before = None
    except (OSError, ValueError) as exc:
        log.warning("access log: previous configuration fingerprint unreadable (%s)", exc)
        before = {}
    changed = changed_keys(before, now) if before is not None else []
    if before is None:
        audit.try_record("system", "config.change", "", "",
                         {"first_start": True, "keys": len(now)})
    elif changed:
        audit.try_record("system", "config.change", "", "", {"keys": changed})
    if before != now:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, json.dumps(now, sort_keys=True, indent=0).encode())
    return changed


def audit_problem(audit: AuditLog) -> str:
    """"" if the access log verifies, else what is wrong (for the status page)."""
    try:
        result = audit.verify()
    except OSError as exc:
        return f"access log unreadable: {exc}"
    return "" if result.ok else f"access log check failed: {result.summary()}"
