"""What the daemon hands to the web layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from callrec.audit import AuditLog
from callrec.config import Config
from callrec.config_store import ConfigStore
from callrec.storage.recordings import RecordingStore
from callrec_web.sessions import SessionStore
from callrec_web.users import UserStore


class SelfTestRunner(Protocol):
    """The daemon's self-test (callrec.selftest_run.SelfTestService)."""

    def run(self) -> dict[str, Any]:
        """Run it (or join the run in progress): the report; raises LineBusy in a call."""
        ...

    def last(self) -> dict[str, Any] | None:
        """The last report, if any."""
        ...


@dataclass
class WebContext:
    config: Config
    store: RecordingStore
    users: UserStore
    status: Callable[[], dict[str, Any]]  # live line status snapshot (see linestatus.py)
    setup_code: Callable[[], str | None]  # the one-time first-start code, None once users exist
    https: bool = False  # served over TLS (directly or by a proxy): cookies get Secure
    audit: AuditLog | None = None  # the access log (the daemon's); None: nothing is logged
    selftest: SelfTestRunner | None = None  # None: no board here (the page says so)
    # The configuration file, for the settings pages and configuration backup/restore
    # (callrec.config_store.ConfigStore); None: no file to edit (the pages say so).
    settings: ConfigStore | None = None
    # The login sessions, when the daemon keeps them across its restarts (see sessions.py);
    # None: the app makes its own.
    sessions: SessionStore | None = None
