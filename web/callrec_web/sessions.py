"""Server-side login sessions, in memory: the cookie holds only a random id.

A restart logs everyone out, which is acceptable on an appliance and keeps no session secrets
on the SD card; except the restart that applies a saved configuration, which hands the
sessions to the new process in memory (`export`/`restore`, callrec.handover), so that saving
a setting does not log anyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

MAX_SESSIONS = 256  # an appliance has a handful of users; bounds memory if that goes wrong


@dataclass
class Session:
    id: str
    user: str
    csrf: str
    created: float
    last_seen: float
    flash: list[str] = field(default_factory=list)


class SessionStore:
    """Sessions with an idle timeout and an absolute lifetime, both in seconds."""

    def __init__(self, idle_s: float, max_s: float, clock: Clock = time.monotonic) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen >= self.idle_s or now - s.created >= self.max_s

    def create(self, user: str) -> Session:
        """A new session with fresh 256-bit id and CSRF token (call at every login)."""
        now = self._clock()
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            for sid in [k for k, v in self._sessions.items() if self._expired(v, now)]:
                del self._sessions[sid]
            while len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda v: v.last_seen)
                del self._sessions[oldest.id]
            self._sessions[s.id] = s
        return s

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session for `sid`, or None; `touch` counts this as activity."""
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if self._expired(s, now):
                del self._sessions[sid]
                return None
            if touch:
                s.last_seen = now
            return s

    def export(self) -> list[dict[str, object]]:
        """The live sessions as plain values, for the next process (no flash messages)."""
        now = self._clock()
        with self._lock:
            return [{"id": s.id, "user": s.user, "csrf": s.csrf, "created": s.created,
                     "last_seen": s.last_seen}
                    for s in self._sessions.values() if not self._expired(s, now)]

    def restore(self, items: object) -> int:
        """Take back what `export` gave (same monotonic clock: the same boot); malformed
        entries are dropped. Returns how many sessions are live again."""
        if not isinstance(items, list):
            return 0
        now = self._clock()
        restored = 0
        with self._lock:
            for item in items[:MAX_SESSIONS]:
                if not isinstance(item, dict):
                    continue
                sid, user, csrf = item.get("id"), item.get("user"), item.get("csrf")
                created, seen = item.get("created"), item.get("last_seen")
                if not (isinstance(sid, str) and isinstance(user, str) and isinstance(csrf, str)
                        and isinstance(created, float) and isinstance(seen, float)):
                    continue
                s = Session(sid, user, csrf, created, seen)
                if not self._expired(s, now) and seen <= now:
                    self._sessions[sid] = s
                    restored += 1
        return restored

    def destroy(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def destroy_user(self, user: str, *, keep: str | None = None) -> None:
        """End every session of `user` (password changed, account deleted), except `keep`."""
        with self._lock:
            for sid in [k for k, v in self._sessions.items() if v.user == user and k != keep]:
                del self._sessions[sid]
