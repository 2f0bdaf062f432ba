"""sdnotify: the sd_notify protocol over a real AF_UNIX datagram socket, and the daemon's loop
feeding the watchdog only while it turns and its recorders drain."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from callrec import events as ev
from callrec.daemon import RECORDER_STALL_S, Daemon
from callrec.sdnotify import Backlog, Notifier, Watchdog, socket_address, watchdog_interval


class Systemd:
    """The receiving end of $NOTIFY_SOCKET, as PID 1 holds it."""

    def __init__(self, sock: socket.socket, env_name: str) -> None:
        self.sock, self.env_name = sock, env_name
        self.sock.settimeout(2.0)

    def messages(self, timeout: float = 0.0) -> list[str]:
        """Every datagram received so far (waiting up to `timeout` for the first)."""
        out: list[str] = []
        self.sock.settimeout(timeout or 0.001)
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return out
            self.sock.settimeout(0.001)


def _bind(kind: str, tmp_path: Path) -> Systemd:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        name = f"@callrec-test-{uuid.uuid4().hex}"
        sock.bind(b"\0" + name[1:].encode())
    return Systemd(sock, name)


@pytest.fixture(params=["path", "abstract"])
def any_systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Systemd]:
    """$NOTIFY_SOCKET as a file system path, and in the abstract namespace ("@name")."""
    s = _bind(request.param, tmp_path)
    yield s
    s.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[Systemd]:
    s = _bind("path", tmp_path)
    yield s
    s.sock.close()


@pytest.fixture(autouse=True)
def _close_notifiers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Notifier a test makes is closed after it (an open socket is a warning)."""
    made: list[Notifier] = []
    original = Notifier.__init__

    def init(self: Notifier, env: Any = None) -> None:
        original(self, env)
        made.append(self)

    monkeypatch.setattr(Notifier, "__init__", init)
    yield
    for n in made:
        n.close()


# --- the protocol ----------------------------------------------------------------------------


def test_socket_address() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == b"\0abc"


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping() and not n.status("idle")
    assert not Watchdog(n, interval_s=30).enabled


def test_ready_status_watchdog_stopping_reach_the_socket(any_systemd: Systemd) -> None:
    systemd = any_systemd
    n = Notifier(env={"NOTIFY_SOCKET": systemd.env_name})
    assert n.enabled
    assert n.ready("idle; faults: none")
    assert n.status("ringing; faults: none")
    assert not n.status("ringing; faults: none")  # unchanged: not sent again
    assert n.watchdog()
    assert n.stopping()
    assert systemd.messages(timeout=2) == [
        "READY=1\nSTATUS=idle; faults: none",
        "STATUS=ringing; faults: none",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]
    n.close()


def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not n.ready()
    assert not n.watchdog()  # logged once, never raised


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "bogus"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


def test_watchdog_pings_at_half_the_interval(any_systemd: Systemd) -> None:
    systemd = any_systemd
    now = [100.0]
    w = Watchdog(Notifier(env={"NOTIFY_SOCKET": systemd.env_name}), 30.0, clock=lambda: now[0])
    sent = []
    for _ in range(80):  # 40 s of a loop turning twice a second
        sent.append(w.ping())
        now[0] += 0.5
    assert sent.count(True) == 3  # at 0, 15 and 30 s
    assert systemd.messages(timeout=2) == ["WATCHDOG=1"] * 3


def test_backlog() -> None:
    b = Backlog(limit_s=10)
    assert not any(b.stalled(0, t) for t in range(100))  # idle: blocked on an empty queue
    # Streaming: the queue fills for a second, then empties.
    assert not any(b.stalled((t * 7) % 50, 100 + t * 0.25) for t in range(400))
    # Wedged: only grows.
    results = [b.stalled(n, 300 + n * 0.5) for n in range(1, 40)]
    assert results[0] is False and results[-1] is True
    assert not b.stalled(0, 400)  # it drained: fine again


# --- the daemon's loop, through its own methods --------------------------------------------


class FakeRecorder:
    def __init__(self) -> None:
        self.alive, self.queued = True, 0

    def health(self) -> tuple[bool, int]:
        return self.alive, self.queued


def _daemon(systemd: Systemd, interval_s: float = 0.4) -> Any:
    """A Daemon with only what loop() and its systemd calls use; handle() is replaceable."""
    d: Any = Daemon.__new__(Daemon)
    d._stop = threading.Event()
    d.events = queue.SimpleQueue()
    d.handled = []
    d.handle = d.handled.append
    d.notifier = Notifier(env={"NOTIFY_SOCKET": systemd.env_name})
    d.watchdog = Watchdog(d.notifier, interval_s)
    d.recorder = FakeRecorder()
    d._backlogs = {d.recorder: Backlog(RECORDER_STALL_S)}
    d._backlogs_lock = threading.Lock()
    d._recorders_stalled = False
    d._systemd_status_at = 0.0
    d.flow = SimpleNamespace(state=SimpleNamespace(value="idle"))
    d.status = SimpleNamespace(snapshot=lambda: {
        "state": "idle", "sip": {"calls": 2}, "faults": [{"part": "mcu", "detail": "x"}]})
    return d


def _run_loop(d: Any, seconds: float) -> None:
    t = threading.Thread(target=Daemon.loop, args=(d,), daemon=True)
    t.start()
    time.sleep(seconds)
    d._stop.set()
    t.join(timeout=5)
    assert not t.is_alive()


def test_the_loop_pings_and_reports_its_state(systemd: Systemd) -> None:
    d = _daemon(systemd)
    _run_loop(d, 1.5)
    got = systemd.messages(timeout=2)
    assert got[0] == "STATUS=idle; 2 SIP calls; faults: mcu"  # no detail, nothing personal
    # Due every 0.2 s (half of 0.4 s); an idle loop turns every TICK_S (0.5 s).
    assert got.count("WATCHDOG=1") >= 3
    assert any(isinstance(e, ev.Tick) for e in d.handled)


def test_a_stuck_loop_stops_the_pings(systemd: Systemd) -> None:
    d = _daemon(systemd)
    stuck = threading.Event()

    def handle(event: ev.Event) -> None:
        if isinstance(event, StuckEvent):
            stuck.wait()  # a decision that never returns

    class StuckEvent(ev.Event):
        pass

    d.handle = handle
    t = threading.Thread(target=Daemon.loop, args=(d,), daemon=True)
    t.start()
    time.sleep(0.6)
    assert "WATCHDOG=1" in systemd.messages(timeout=2)
    d.events.put(StuckEvent())
    time.sleep(0.2)
    systemd.messages()  # whatever was in flight
    time.sleep(1.2)  # three watchdog intervals
    assert systemd.messages() == []  # systemd would kill and restart it now
    d._stop.set()
    stuck.set()
    t.join(timeout=5)


def test_a_dead_recorder_thread_stops_the_pings(systemd: Systemd) -> None:
    d = _daemon(systemd)
    d.recorder.alive = False
    _run_loop(d, 1.0)
    assert "WATCHDOG=1" not in systemd.messages(timeout=0.5)


def test_a_recorder_sitting_on_its_queue_stops_the_pings(systemd: Systemd) -> None:
    d = _daemon(systemd)
    sip = FakeRecorder()  # a SIP call's: watched too
    d._backlogs[sip] = Backlog(0.3)
    stop_growing = threading.Event()

    def grow() -> None:
        while not stop_growing.is_set():
            sip.queued += 5  # audio keeps coming; nothing takes it
            time.sleep(0.02)

    feeder = threading.Thread(target=grow, daemon=True)
    feeder.start()
    try:
        t = threading.Thread(target=Daemon.loop, args=(d,), daemon=True)
        t.start()
        time.sleep(0.8)  # past the 0.3 s stall limit
        systemd.messages()
        time.sleep(1.0)
        assert "WATCHDOG=1" not in systemd.messages()
        assert d._recorders_stalled
        sip.alive = False  # the call ended: its recorder is no longer watched
        time.sleep(0.8)
        assert "WATCHDOG=1" in systemd.messages()
        d._stop.set()
        t.join(timeout=5)
    finally:
        stop_growing.set()
        feeder.join()


def test_the_loop_without_systemd_sends_nothing() -> None:
    d: Any = Daemon.__new__(Daemon)
    d.notifier = Notifier(env={})
    d.watchdog = Watchdog(d.notifier, 0.4)
    d._tell_systemd()  # returns before touching anything else
