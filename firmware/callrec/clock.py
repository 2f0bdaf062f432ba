"""Whether the system clock can be trusted: one reading for the daemon, retention and self-test.

A Raspberry Pi has no battery clock. Until it has been set from the network after a boot, its
time is whatever the last shutdown saved (fake-hwclock), or 1970: days or years off. Three
places care: every recording says whether its start and end times came from a synchronised
clock (`recording_fields`), retention applies its age rule and the access log prunes old
months only with one (a clock years ahead would erase everything), and the self-test and the
status page show it.

Where the answer comes from, without a shell-out:

1. systemd-timesyncd's flag file `/run/systemd/timesync/synchronized` (created at its first
   synchronisation since boot; /run is emptied at every boot): synchronised.
2. Otherwise the kernel's NTP state from adjtimex(2), read without changing anything: the
   clock counts as synchronised while the maximum error an NTP client keeps up to date is
   below 16 s, the rule `timedatectl` uses ("System clock synchronized"). It also covers
   chrony and ntpd, whichever client sets the clock, and is the answer while timesyncd has
   not synchronised yet (its flag is absent: the kernel says 16 s, unsynchronised).
3. adjtimex unavailable (not Linux, not glibc): unknown, treated as not synchronised.

`CALLREC_CLOCK=synchronised|unsynchronised` in the environment overrides all of this: the
line simulator's tests set it so that they do not depend on the machine they run on. The
source then says so wherever the state is shown.

`clock_state()` caches its answer for a few seconds: it is asked at the start of every
recording and at every tick of the daemon's loop.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
OVERRIDE_ENV = "CALLREC_CLOCK"
# The kernel's maximum error saturates at 16 s (NTP_PHASE_LIMIT) when no NTP client keeps it
# down; systemd's timedated counts the clock as synchronised below that, and so do we.
MAX_ERROR_UNSYNC_US = 16_000_000
CACHE_S = 5.0

TIMESYNCD = "NTP (systemd-timesyncd)"
KERNEL = "NTP (kernel clock state)"
OVERRIDE = f"set by {OVERRIDE_ENV}"
UNKNOWN = "unknown"

# In a recording's metadata when its clock was not synchronised at its start.
CLOCK_NOTE = ("The start and end times come from the appliance's clock, which had not been "
              "synchronised with a time server since it was switched on: they may be wrong.")


@dataclass(frozen=True)
class ClockState:
    synchronised: bool
    source: str  # who said so: TIMESYNCD, KERNEL, OVERRIDE or UNKNOWN
    detail: str = ""  # for people: why it is (not) synchronised

    @property
    def known(self) -> bool:
        return self.source != UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        return {"synchronised": self.synchronised, "source": self.source, "detail": self.detail}


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): the fields up to status, then room for the rest.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("_rest", ctypes.c_byte * 256)]


_libc: Any = None


def kernel_max_error_us() -> int | None:
    """adjtimex(2) with no change asked (modes 0): the kernel's maximum error estimate in
    microseconds, None if the call is not available."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        tx = _Timex()
        state = _libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return int(tx.maxerror)


def read_clock_state(
    flag: Path = TIMESYNC_FLAG,
    max_error_us: Callable[[], int | None] = kernel_max_error_us,
    environ: dict[str, str] | None = None,
) -> ClockState:
    """The clock's state now (uncached; the self-test uses this)."""
    override = (os.environ if environ is None else environ).get(OVERRIDE_ENV, "").strip()
    if override in ("synchronised", "unsynchronised"):
        return ClockState(override == "synchronised", OVERRIDE,
                          f"{OVERRIDE_ENV}={override} (simulator or test)")
    if flag.exists():
        return ClockState(True, TIMESYNCD, "systemd-timesyncd synchronised it since boot")
    error = max_error_us()
    if error is None:
        return ClockState(False, UNKNOWN, "neither timesyncd's flag nor adjtimex(2) available")
    if error < MAX_ERROR_UNSYNC_US:
        return ClockState(True, KERNEL, "an NTP client keeps the kernel's maximum error "
                          "under 16 s")
    return ClockState(False, KERNEL, "no time server has set the clock since boot "
                      "(kernel maximum error 16 s)")


class CachedClock:
    """`read()` at most once every `ttl_s`; thread-safe (web, daemon and recorder threads)."""

    def __init__(self, read: Callable[[], ClockState] = read_clock_state, ttl_s: float = CACHE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read, self._ttl, self._monotonic = read, ttl_s, monotonic
        self._lock = threading.Lock()
        self._state: ClockState | None = None
        self._at = 0.0

    def __call__(self) -> ClockState:
        with self._lock:
            now = self._monotonic()
            if self._state is None or now - self._at >= self._ttl:
                self._state, self._at = self._read(), now
            return self._state


_cached = CachedClock()


def clock_state() -> ClockState:
    """The clock's state, at most a few seconds old."""
    return _cached()


def recording_fields(state: ClockState) -> dict[str, Any]:
    """What a recording's metadata says about the clock at its start."""
    if state.synchronised:
        return {"clock_synchronised": True}
    return {"clock_synchronised": False, "clock_note": CLOCK_NOTE}
