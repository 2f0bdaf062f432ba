"""The daemon's recent log records, kept in memory for the diagnostics bundle.

The daemon logs to the journal, which the web layer cannot read without shelling out
(journalctl) or being in the systemd-journal group; a technician downloading a bundle from
the web page needs the last few minutes of log all the same. So `callrec run` installs this
handler next to the journal's: the last records as formatted lines, bounded both in count
and in characters, so that a storm of long tracebacks cannot grow the daemon's memory
(its budget on a Pi Zero is 60 MB; the worst case here is MAX_CHARS characters).

Nothing is written to disk: the ring dies with the process, as it should (logs hold no
personal data by rule, and the bundle scrubs anything number-like again on its way out).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

CAPACITY = 2000  # records
MAX_CHARS = 1_000_000  # all records together: about 1 MB of text at worst
MAX_RECORD_CHARS = 4000  # one record, traceback included (its end is kept: the error)
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogRing(logging.Handler):
    """The last `capacity` log records as text lines, oldest first."""

    def __init__(self, capacity: int = CAPACITY, max_chars: int = MAX_CHARS) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(_FORMAT))
        self._lines: deque[str] = deque()
        self._chars = 0
        self._capacity, self._max_chars = capacity, max_chars
        self._ring_lock = threading.Lock()
        self.dropped = 0  # records pushed out since start

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad format string must not take the caller down
            line = f"{record.levelname} {record.name}: (unformattable message)"
        if len(line) > MAX_RECORD_CHARS:
            half = MAX_RECORD_CHARS // 2
            line = f"{line[:half]}\n[... {len(line) - 2 * half} characters cut ...]\n" \
                   f"{line[-half:]}"
        with self._ring_lock:
            self._lines.append(line)
            self._chars += len(line)
            while self._lines and (len(self._lines) > self._capacity
                                   or self._chars > self._max_chars):
                self._chars -= len(self._lines.popleft())
                self.dropped += 1

    def lines(self) -> list[str]:
        """A copy of the records kept, oldest first."""
        with self._ring_lock:
            return list(self._lines)


_installed: LogRing | None = None
_install_lock = threading.Lock()


def install(capacity: int = CAPACITY) -> LogRing:
    """Attach one ring to the root logger (again: the same one); returns it."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = LogRing(capacity)
            logging.getLogger().addHandler(_installed)
        return _installed


def installed() -> LogRing | None:
    """The ring `callrec run` installed in this process, if any."""
    return _installed
