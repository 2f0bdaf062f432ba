"""Retention in the running appliance: expired recordings erased at start, the storage report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from callrec.sim.harness import Appliance
from callrec.storage.open_store import open_store
from callrec.storage.recordings import new_recording_id
from recfiles import audio_files


def seed(app: Appliance, days_ago: list[float]) -> list[str]:
    """Recordings made before the daemon starts (the daemon is stopped: one index writer)."""
    store = open_store(app.config)
    ids = []
    try:
        for days in days_ago:
            started = datetime.now(UTC) - timedelta(days=days)
            rec_id = new_recording_id(started)
            meta = {"id": rec_id, "started_at": started.isoformat(), "direction": "in",
                    "caller_number": "0612345678", "status": "recording"}
            writer = store.open_writer(meta, 8000)
            writer.write(b"\x00\x01" * 16000)
            writer.close()
            store.add({**meta, "status": "complete",
                       "audio": store.audio_info(writer, 8000), "duration_s": 2.0})
            ids.append(rec_id)
    finally:
        store.close()
    return ids


def storage_status(app: Appliance, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callrec", "storage", "status", *args,
                           "--config", str(app.config_path)], capture_output=True, text=True,
                          env=app.env, timeout=60)


def test_expired_recordings_are_erased_at_start_and_reported(appliance_factory: Any) -> None:
    app = appliance_factory()
    expired = seed(app, [400, 190, 30, 1])[:2]
    # Stopped daemon: the report is computed by the command itself, nothing is erased.
    offline = storage_status(app)
    assert offline.returncode == 0, offline.stderr
    assert "sd" in offline.stdout and "max age 180 days" in offline.stdout
    assert len(audio_files(app)) == 4

    app.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        storage = (app.status() or {}).get("storage") or {}
        if storage.get("last_run"):
            break
        time.sleep(0.2)
    assert storage.get("erased_by_retention") == 2, storage
    left = {p.stem for p in audio_files(app)}
    assert len(left) == 2 and not left & set(expired)
    [row] = storage["volumes"]
    assert row["recordings"] == 2 and row["volume"] == "sd" and storage["encrypted"] is True

    running = storage_status(app, "--json")
    assert running.returncode == 0, running.stderr
    report = json.loads(running.stdout)
    assert report["volumes"][0]["recordings"] == 2
    assert "0612345678" not in running.stdout
    log = app.log_tail("daemon", 200)
    for rec_id in expired:
        assert f"retention: erased {rec_id} (max_age" in log
    assert "0612345678" not in log
