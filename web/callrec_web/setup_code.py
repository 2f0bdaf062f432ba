"""The one-time first-start code: proof that whoever creates the first account is at the box.

There is no default password. Until an account exists, a random code is kept in a file only
the service user can read (the console / status display shows it); whoever opens /setup must
type it. The code is replaced after `ttl_s`, and the file is removed once an account exists.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from callrec.storage.atomic_json import write_atomic
from callrec_web.users import UserStore

# No 0/O, 1/I/L: the code is read off a small screen and typed on a phone.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_GROUPS = 3
_GROUP_LEN = 4


def new_code() -> str:
    """A random code like 'K7QM-2XHD-9RTW' (about 59 bits)."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    return "-".join(chars[i : i + _GROUP_LEN] for i in range(0, len(chars), _GROUP_LEN))


class FirstStartCode:
    """Callable for WebContext.setup_code: the current code, or None once users exist."""

    def __init__(
        self,
        users: UserStore,
        path: Path,
        ttl_s: float = 24 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self.path = Path(path)
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._code: str | None = None
        self._made = 0.0

    def __call__(self) -> str | None:
        return self.refresh()

    def refresh(self) -> str | None:
        """Make or renew the code (and its file) while setup is open; remove it after."""
        with self._lock:
            if self.users.has_users():
                self._code = None
                self.path.unlink(missing_ok=True)
                return None
            now = self._clock()
            if self._code is None or now - self._made >= self.ttl_s:
                self._code, self._made = new_code(), now
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(self.path, (self._code + "\n").encode())
            return self._code
