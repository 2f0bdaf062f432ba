"""Fixtures for the web layer: a real cheroot server on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from webtest_support import (
    PASSWORD,
    ROLE_USERS,
    SETUP_CODE,
    Appliance,
    FakeClock,
    FakeSelfTest,
    add_recording,
)

from callrec.config import Config, StorageConfig, WebConfig
from callrec.storage.open_store import open_store
from callrec_web.app import make_app
from callrec_web.context import WebContext
from callrec_web.server import WebServer
from callrec_web.users import UserStore


def _start(tmp_path: Path, with_users: bool) -> Iterator[Appliance]:
    config = Config(
        storage=StorageConfig(data_dir=str(tmp_path)),
        web=WebConfig(page_size=3, session_idle_minutes=30, session_max_hours=12),
    )
    store = open_store(config)
    users = UserStore(tmp_path / "users.json")
    if with_users:
        for name, roles in ROLE_USERS.items():
            users.add_user(name, PASSWORD, roles)
    clock = FakeClock()
    status: dict[str, Any] = {  # as callrec.status.StatusBoard.snapshot() gives it
        "version": "0.1.0",
        "running": True,
        "line": "line1",
        "state": "idle",
        "since": "2024-05-01T10:00:00+00:00",
        "call": None,
        "not_recorded_reason": None,
        "recording": False,
        "faults": [],
        "board": {
            "backend": "sim",
            "mcu_connected": True,
            "mcu_version": "hat-1.2",
            "audio_open": True,
        },
        "last_call": None,
        "last_recording": "20240501T090000Z-0123abcd",
        "announcement_latency_ms": [12.5],
        "updated": "2024-05-01T10:00:01+00:00",
        "caller_number": "+33999999999",  # must never pass the whitelist
    }
    setup_code: list[str | None] = [None if with_users else SETUP_CODE]
    ctx = WebContext(
        config=config,
        store=store,
        users=users,
        status=lambda: dict(status),
        setup_code=lambda: setup_code[0],
        selftest=FakeSelfTest(),
    )
    server = WebServer(make_app(ctx, clock=clock), "127.0.0.1", 0, threads=4, poll_interval_s=0.02)
    server.start()
    try:
        yield Appliance(server, store, users, clock, ctx, status, setup_code)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Appliance]:
    """An appliance at first start: no accounts."""
    yield from _start(tmp_path, with_users=False)


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    """An appliance with one account per role and five recordings."""
    for app in _start(tmp_path, with_users=True):
        base = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        for i in range(5):
            add_recording(app.store, base + timedelta(hours=i), "in" if i % 2 else "out")
        yield app
