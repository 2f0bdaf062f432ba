"""Handing state to the next process across a restart in place (os.execv, same PID).

A configuration saved from the web UI is applied by re-executing the daemon (cli.py). What
must survive that, and only that (the web UI's login sessions, so that saving a setting does not
log everyone out), is written to an anonymous in-memory file (memfd) that the new process
inherits: its number travels in an environment variable. Nothing touches the SD card, no other
account can read it, and the new process reads it once and closes it.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_PREFIX = "CALLREC_HANDOVER_"
MAX_BYTES = 4 * 1024 * 1024  # far above what we hand over; bounds a corrupted descriptor


def pass_on(name: str, data: bytes) -> None:
    """Make `data` readable by the process this one is about to exec as `take(name)`."""
    fd = os.memfd_create(f"callrec-{name}", 0)  # no MFD_CLOEXEC: it must cross the exec
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        os.set_inheritable(fd, True)
    except OSError:
        os.close(fd)
        raise
    os.environ[_PREFIX + name.upper()] = str(fd)


def take(name: str) -> bytes | None:
    """What the previous process passed on as `name`, once; None if it passed nothing."""
    value = os.environ.pop(_PREFIX + name.upper(), None)
    if value is None:
        return None
    try:
        fd = int(value)
    except ValueError:
        log.warning("handover %s: not a descriptor number, ignored", name)
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > MAX_BYTES:
                log.warning("handover %s: larger than %d bytes, ignored", name, MAX_BYTES)
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        log.warning("handover %s: cannot be read (%s), ignored", name, exc.strerror)
        return None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
