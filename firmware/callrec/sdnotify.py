"""Telling systemd how the daemon is: readiness, a status line, watchdog pings, stopping.

The sd_notify(3) protocol without libsystemd: one datagram of "KEY=value" lines to the
AF_UNIX socket named by $NOTIFY_SOCKET (a name starting with "@" is in the abstract namespace).
Without $NOTIFY_SOCKET (a terminal, the tests, `install.sh --dev --run`) every call does
nothing. A lost datagram is never an error: the daemon goes on; at worst systemd restarts it.

The watchdog (WatchdogSec= in the unit, $WATCHDOG_USEC here) is fed only from the daemon's
decision loop, and only while the recorders keep up (`Backlog`): a hung loop or a wedged
recorder stops the pings, and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 1.0  # a busy PID 1 may make us wait a moment; never block the loop for long


def socket_address(name: str) -> str | bytes:
    """$NOTIFY_SOCKET as an address for sendto(): "@name" is abstract (a leading NUL)."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog timeout in seconds, or None when there is none for this process.

    $WATCHDOG_USEC is the timeout; $WATCHDOG_PID, when set, names the process it is meant for
    (a child that inherited the environment must not feed it)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1e6


class Notifier:
    """Sends notifications to $NOTIFY_SOCKET; does nothing when it is unset."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        name = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = socket_address(name) if name else None
        self._sock: socket.socket | None = None
        self._status = ""
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send "KEY=value" lines as one datagram; True if it was sent."""
        if self.address is None or not lines:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(SEND_TIMEOUT_S)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._warned:  # once: a journal full of these would help nobody
                log.warning("cannot notify systemd (%s): %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """Start-up is complete (the web UI answers); systemd's start job ends here."""
        if status:
            self._status = status
            return self.notify("READY=1", f"STATUS={status}")
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """The line `systemctl status` shows; sent only when it changed."""
        if text == self._status:
            return False
        self._status = text
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        self._status = status
        return self.notify("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """Paces WATCHDOG=1: at most one ping per half interval (what sd_watchdog_enabled(3)
    recommends), so a loop that turns many times a second sends a datagram every ~15 s."""

    def __init__(
        self,
        notifier: Notifier,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.interval_s = interval_s if interval_s is not None else watchdog_interval()
        self._clock = clock
        self._next = 0.0

    @property
    def enabled(self) -> bool:
        return self.notifier.enabled and self.interval_s is not None

    def ping(self) -> bool:
        """Feed the watchdog if half the interval has passed since the last ping."""
        if not self.enabled:
            return False
        assert self.interval_s is not None
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self.interval_s / 2
        return self.notifier.watchdog()


class Backlog:
    """Whether a worker thread drains its queue: stalled once work has waited `limit_s`
    seconds without the queue ever shrinking or emptying.

    The recorder blocks on its queue when idle (no work: not stalled) and, while streaming,
    sleeps up to a second between writes and then empties its queue: its backlog falls to
    zero about once a second. A thread stuck in a write, a sync or a probe of a dying disk
    lets the queue only grow."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._last = 0
        self._progress_at: float | None = None

    def stalled(self, backlog: int, now: float) -> bool:
        if backlog == 0 or backlog < self._last or self._progress_at is None:
            self._progress_at = now
        self._last = backlog
        return now - self._progress_at > self.limit_s
