"""Retention at work: erases what the policy says is due, on its own thread.

The decisions are storage.retention's (pure); this module gathers the facts (the index, the
volume's space), erases through the RecordingStore (the index's one writer, thread-safe), logs
every deletion by id and reason only, and publishes a storage report for the status page and
`callrec storage status`. It runs at start, every `check_interval_minutes`, and when a
finished recording leaves the volume short of space. It never runs on the daemon's event
thread: erasing thousands of expired recordings must not delay a call.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callrec.audit import AuditLog
from callrec.clock import clock_state
from callrec.config import RetentionConfig
from callrec.storage.recordings import RecordingStore
from callrec.storage.retention import (
    RetentionPlan,
    VolumeUsage,
    deletion_log_message,
    facts_from_index,
    format_report,
    plan_retention,
    space_is_low,
    storage_report,
)
from callrec.storage.volumes import USB

log = logging.getLogger(__name__)

# Recordings erased per index write: the first run on an old archive may erase thousands.
ERASE_BATCH = 500


def release_free_memory() -> None:
    """Give the pages a run freed back to the system: glibc keeps them otherwise, and a run
    over 100,000 recordings parses each one's metadata (the daemon's start-up trim comes
    before the first run ends)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (musl): nothing to trim


def clock_trusted() -> bool:
    """True once the clock is synchronised (callrec.clock). A Pi has no battery clock: until
    then the time may be days off, and age-based erasure waits (space rules do not)."""
    return clock_state().synchronised


def volume_usage(name: str, path: Path) -> VolumeUsage:
    st = os.statvfs(path)
    return VolumeUsage(name, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, str(path))


class Housekeeper:
    """Runs retention on request; `report` is the latest storage report (JSON-ready)."""

    IF_LOW_SPACE = "low_space"  # a request that runs only if a volume is short of space

    def __init__(
        self,
        store: RecordingStore,
        config: RetentionConfig,
        on_shortfall: Callable[[str], None] = lambda detail: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        trusted_clock: Callable[[], bool] = clock_trusted,
        audit: AuditLog | None = None,
    ) -> None:
        self.store, self.config, self.policy = store, config, config.policy()
        self.audit = audit
        self._on_shortfall, self._now, self._trusted_clock = on_shortfall, now, trusted_clock
        self._requests: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)
        self.report: list[dict[str, Any]] = []
        self.report_text = ""
        self.last_run: datetime | None = None
        self.erased_total = 0

    def volumes(self) -> list[VolumeUsage]:
        """The SD card, and the USB stick while it is mounted (its recordings stay indexed
        when it is not, but its space is not known then)."""
        usage = [volume_usage("sd", self.store.root)]
        point = self.store.usb_mount_point
        if point is not None and self.store.available("usb"):
            try:
                usage.append(volume_usage("usb", point))
            except OSError as exc:  # a failing stick: the recorder reports it
                log.warning("USB stick: cannot read its space: %s", exc.strerror or exc)
        return usage

    # -- called from other threads: enqueue only -------------------------------------------
    def request(self, why: str) -> None:
        self._requests.put(why)

    def space_is_low(self) -> bool:
        """Cheap (statvfs only): whether a run is needed now for space."""
        return any(space_is_low(v, self.policy) for v in self.volumes())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._requests.put(None)
            self._thread.join(timeout=30)

    # -- the thread ------------------------------------------------------------------------
    VOLUMES_CHANGED = "volumes changed"  # also recovers what a stick that came back holds

    def _run(self) -> None:
        while (why := self._requests.get()) is not None:
            try:
                if why == self.IF_LOW_SPACE and not self.space_is_low():
                    continue
                if why == self.VOLUMES_CHANGED and self.store.available(USB):
                    # A stick that was out when the box restarted after a power cut holds its
                    # interrupted recording still marked "recording": finish and list it now.
                    recovered = self.store.recover(volume=USB)
                    if recovered:
                        log.warning("%d interrupted recording(s) recovered from the USB stick",
                                    len(recovered))
                self.run_once(why)
            except Exception:  # a bug here must not stop retention for good
                log.exception("retention run failed")

    def preview(self) -> list[dict[str, Any]]:
        """The storage report without erasing anything (also sets `report_text`)."""
        facts, _ = facts_from_index(self.store.iter_docs())
        rows = storage_report(self.volumes(), facts, self.policy, self._now())
        self.report_text = format_report(rows)
        return [row.as_dict() for row in rows]

    def run_once(self, why: str = "manual") -> RetentionPlan:
        now = self._now()
        facts, errors = facts_from_index(self.store.iter_docs())
        for message in errors:
            log.warning("retention skips an index entry: %s", message)
        volumes = self.volumes()
        trusted = self._trusted_clock()
        if not trusted:
            log.warning("retention: clock not synchronised yet; age limit not applied")
        plan = plan_retention(
            facts, volumes, self.policy, now, self.store.in_progress(), clock_trusted=trusted
        )
        for start in range(0, len(plan.deletions), ERASE_BATCH):
            batch = plan.deletions[start : start + ERASE_BATCH]
            erased = set(self.store.erase_many([d.rec_id for d in batch]))
            if self.audit is not None:  # the access log: which recording went, and why
                self.audit.retention_erased(
                    (d.rec_id, d.reason, d.size_bytes) for d in batch if d.rec_id in erased)
            for deletion in batch:
                if deletion.rec_id in erased:
                    self.erased_total += 1
                    log.info("%s", deletion_log_message(deletion))
        self._on_shortfall("; ".join(s.describe() for s in plan.shortfalls))
        if plan.deletions:
            facts = facts.without(d.rec_id for d in plan.deletions)
            volumes = self.volumes()
        rows = storage_report(volumes, facts, self.policy, now)
        self.report, self.report_text = [row.as_dict() for row in rows], format_report(rows)
        self.last_run = now
        log.info("retention run (%s): %d erased", why, len(plan.deletions))
        del facts
        release_free_memory()
        return plan
