"""Login throttling: after a few failures, each key waits longer, up to a ceiling.

Keys are the client address and the username, so neither one password-guessing client nor a
botnet against one account gets more than a few guesses per quarter of an hour. A blocked
attempt is refused before the password is checked, which also spares the CPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass
class _Entry:
    failures: int
    last: float
    blocked_until: float


class LoginThrottle:
    """Counts failures per key; `retry_after` says how long a key must still wait."""

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay_s: float = 30.0,
        max_delay_s: float = 900.0,
        clock: Clock = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until every key may try again; 0 when the attempt may go ahead."""
        now = self._clock()
        with self._lock:
            waits = [e.blocked_until - now for k in keys if (e := self._entries.get(k))]
        return max([0.0, *waits])

    def failure(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            self._forget_old(now)
            for key in keys:
                e = self._entries.setdefault(key, _Entry(0, now, 0.0))
                if now - e.last > self.max_delay_s and now >= e.blocked_until:
                    e.failures = 0  # quiet for the longest delay: start again from zero
                e.failures += 1
                e.last = now
                over = e.failures - self.free_failures
                if over >= 0:
                    delay = min(self.base_delay_s * 2**over, self.max_delay_s)
                    e.blocked_until = now + delay

    def success(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def _forget_old(self, now: float) -> None:
        # Memory bound only; the reset of quiet keys is done per key in failure().
        if len(self._entries) < 64:
            return
        stale = [
            k
            for k, e in self._entries.items()
            if now - e.last > self.max_delay_s and now >= e.blocked_until
        ]
        for k in stale:
            del self._entries[k]
        while len(self._entries) >= self._max_keys:
            del self._entries[min(self._entries, key=lambda k: self._entries[k].last)]
