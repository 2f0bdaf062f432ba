"""`callrec run` under a fake systemd: READY=1 once the web UI answers, a status line, watchdog
pings while it runs, STOPPING=1 on SIGTERM, all sent by the daemon's own process (what
NotifyAccess=main in systemd/callrec.service accepts).

The notify socket is a real AF_UNIX datagram socket receiving with SO_PASSCRED, the way PID 1
receives, so the sender's pid of every message is checked.
"""

from __future__ import annotations

import itertools
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from callrec.sim.harness import Appliance


class FakeSystemd:
    def __init__(self) -> None:
        self.name = f"@callrec-e2e-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.received: list[tuple[int, str, float]] = []  # (sender pid, message, when)

    def receive_until(self, done: Callable[[str], bool], timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except TimeoutError:
                return None
            pid = -1
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:12])[0]
            message = data.decode()
            self.received.append((pid, message, time.monotonic()))
            if done(message):
                return message
        return None


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    s = FakeSystemd()
    monkeypatch.setenv("NOTIFY_SOCKET", s.name)  # the appliance's processes inherit it
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # 2 s: a ping every second
    try:
        yield s
    finally:
        s.sock.close()


def test_daemon_notifies_ready_status_watchdog_and_stopping(
    appliance_factory: Callable[..., Appliance], systemd: FakeSystemd
) -> None:
    app = appliance_factory()
    app.start_line()
    app.start_daemon(wait_ready=False)  # returns once the web UI answers
    daemon_pid = app.procs["daemon"].pid
    ready = systemd.receive_until(lambda m: "READY=1" in m, timeout_s=30)
    assert ready is not None, app.log_tail("daemon")
    assert app._web_up()
    # Watchdog pings from the loop: about one a second with WATCHDOG_USEC of 2 s.
    systemd.receive_until(lambda m: False, timeout_s=3.5)
    stopped_at = time.monotonic()  # pings while shutting down are no longer paced by the loop
    app.stop_proc("daemon")
    stopping = systemd.receive_until(lambda m: "STOPPING=1" in m, timeout_s=15)
    assert stopping is not None, systemd.received
    messages = [m for _, m, _ in systemd.received]
    assert {pid for pid, _, _ in systemd.received} == {daemon_pid}, systemd.received
    pings = [t for _, m, t in systemd.received if m == "WATCHDOG=1" and t < stopped_at]
    assert len(pings) >= 3, messages
    assert all(b - a < 2.0 for a, b in itertools.pairwise(pings)), pings
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert statuses[0] == "STATUS=starting: checking recordings", messages
    assert any(m.startswith("READY=1\nSTATUS=idle") and "faults:" in m for m in messages), messages
    assert messages.index(ready) < messages.index(stopping)
