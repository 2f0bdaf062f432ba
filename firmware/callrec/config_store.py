"""The configuration file as the web UI changes it: read, edit, validate whole, write safely.

Every change goes the same way, for a key changed on a settings page as for a whole file
restored from a backup: the new text is validated as a whole with `config.parse` (the daemon
would refuse to start on a file that is not, and a restart is how a change applies), written
to a temporary file in the same directory, fsynced, renamed over the old one and the directory
fsynced (power can be cut at any instant: the file is the old one or the new one, never half
of each), under an fcntl lock (two browsers, or a page and a restore, never interleave), and
then the daemon is asked to apply it, which it does by restarting once no call is in progress.

The access log says who changed which keys, never the values: a controller's name or a
contact address is personal data, and a SIP peer's address is nobody's business there.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from callrec import config_edit, config_migrate
from callrec.audit import AuditError
from callrec.config import Config, ConfigError, parse
from callrec.storage.atomic_json import write_atomic

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024  # a configuration is a few kB; a bigger "restore" is not one

# How a saved change is applied (ApplyResult.when).
UNCHANGED = "unchanged"  # the file already said so: nothing written
NOW = "now"  # the daemon restarts within a second or two
AFTER_CALL = "after_call"  # a call (or a self-test) is in progress: it restarts after it
AT_RESTART = "at_restart"  # no daemon serves this page: at the next start of the service


class Journal(Protocol):
    """The access log (callrec.audit.AuditLog), as far as settings use it."""

    def record(self, actor: str, action: str, target: str = "", reason: str = "",
               details: dict[str, Any] | None = None) -> dict[str, Any]: ...


class SettingsError(ValueError):
    """A change refused; `key` ("section.key", or "" for the whole file) is the one at fault,
    the message says why in the configuration's words. Nothing was written."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ApplyResult:
    changed: tuple[str, ...]  # "section.key" (top-level keys bare), sorted
    when: str  # UNCHANGED, NOW, AFTER_CALL or AT_RESTART


def current_version() -> int:
    """The configuration schema version this code writes."""
    return config_migrate.CURRENT_VERSION


def migrate_text(text: str, source: str) -> str:
    """An older file's text brought to this version by config_migrate; a file newer than this
    code is refused there. SettingsError names config_version if so."""
    try:
        migrated, _ = config_migrate.migrate(text)
    except config_migrate.MigrationError as exc:
        key = "config_version" if "config_version" in str(exc) else ""
        raise SettingsError(f"{source}: {exc}", key) from None
    return str(migrated)


_KEY_IN_ERROR = re.compile(r"key '([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)'")
_SECTION_IN_ERROR = re.compile(r"'([A-Za-z0-9_]+)' must be a table|section or key '([^']+)'")


def error_key(message: str) -> str:
    """The "section.key" a ConfigError names ("" if none), to put its message by the field."""
    match = _KEY_IN_ERROR.search(message)
    if match:
        return match.group(1)
    match = _SECTION_IN_ERROR.search(message)
    return next((g for g in match.groups() if g), "") if match else ""


def explanation(message: str) -> str:
    """A ConfigError's message without the file name and key it starts with: what is wrong,
    for a page that shows it next to the field."""
    match = re.match(r".*?: key '[^']+'(?: is)?:? ?", message)
    if match and match.end() < len(message):
        return message[match.end():]
    return message.split(": ", 1)[-1]


def validate(text: str, source: str) -> Config:
    """The whole text as the daemon will read it, or SettingsError naming the key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source}: invalid TOML: {exc}") from None
    try:
        data = tomllib.loads(migrate_text(text, source))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source}: invalid TOML: {exc}") from None
    version = data.get("config_version", 1)
    newest = current_version()
    if isinstance(version, int) and not isinstance(version, bool) and version > newest:
        raise SettingsError(f"{source}: key 'config_version': {version} is newer than this "
                            f"firmware understands ({newest}); update the firmware first",
                            "config_version")
    try:
        return parse(data, source)
    except ConfigError as exc:
        raise SettingsError(str(exc), error_key(str(exc))) from None


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def changed_keys(old_text: str, new_text: str) -> tuple[str, ...]:
    """The keys whose value differs between two configuration texts (names only)."""
    try:
        old = _flatten(tomllib.loads(old_text))
    except tomllib.TOMLDecodeError:
        old = {}
    new = _flatten(tomllib.loads(new_text))
    return tuple(sorted(k for k in old.keys() | new.keys()
                        if k != "config_version" and old.get(k, ...) != new.get(k, ...)))


def write_atomic_text(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically (storage.atomic_json.write_atomic), keeping the old
    file's mode. A failure leaves the old file and no temp file."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o640
    write_atomic(path, text.encode("utf-8"), mode=mode)


class ConfigStore:
    """The configuration file of the running service (`Config.source`), for the web UI.

    `apply` asks the daemon to apply the file (it answers NOW or AFTER_CALL); None when no
    daemon serves the UI (the change then applies at the next start).
    """

    def __init__(self, path: Path, *, apply: Callable[[], str] | None = None,
                 audit: Journal | None = None) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._apply = apply
        self._audit = audit
        self._mutex = threading.Lock()  # fcntl locks are per process: threads need their own
        self._pending = False
        self._when = UNCHANGED

    # -- reading ----------------------------------------------------------------------------
    def current_text(self) -> str:
        """The file as it is now; SettingsError if it cannot be read."""
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise SettingsError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SettingsError(f"{self.path}: not UTF-8 text") from None

    def current(self) -> Config:
        """The file as the daemon would read it now; SettingsError if it would not start."""
        return validate(self.current_text(), str(self.path))

    # -- the state of the last change -------------------------------------------------------
    def pending(self) -> bool:
        """A saved change has not been applied yet (this process still runs the old one)."""
        return self._pending

    def status(self) -> dict[str, Any]:
        return {"pending": self._pending, "when": self._when if self._pending else UNCHANGED}

    # -- writing ----------------------------------------------------------------------------
    def update(self, changes: config_edit.Changes, who: str) -> ApplyResult:
        """Set keys ((section, key) -> value; section "" is the top level), keeping the rest
        of the file as written. SettingsError (nothing written) if the result is refused."""
        if not changes:  # nothing asked: the file is not even re-stamped
            return ApplyResult((), UNCHANGED)
        with self._locked():
            old = self.current_text()
            try:
                # An older file is brought to this version first: keys are edited as this
                # code knows them, and the version stamped is the one they are written for.
                migrated = migrate_text(old, str(self.path))
                new = config_edit.update(migrated, changes, current_version())
            except config_edit.ConfigEditError as exc:
                raise SettingsError(f"{self.path}: {exc}") from None
            return self._commit(old, new, who, "settings.change")

    def replace(self, text: str, who: str) -> ApplyResult:
        """Replace the whole file (a restored backup): validated first, version included."""
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise SettingsError(f"a configuration file is at most {MAX_BYTES // 1024} KiB")
        with self._locked():
            return self._commit(self.current_text_or_empty(), text, who, "settings.replace")

    def current_text_or_empty(self) -> str:
        try:
            return self.current_text()
        except SettingsError:
            return ""  # a damaged file can still be replaced by a good one

    def _commit(self, old: str, new: str, who: str, action: str) -> ApplyResult:
        if new == old:
            return ApplyResult((), UNCHANGED)
        validate(new, str(self.path))
        keys = changed_keys(old, new)
        write_atomic_text(self.path, new)
        log.info("configuration changed by the web UI (%d key(s)): %s", len(keys),
                 ", ".join(keys) or "layout only")
        if self._audit is not None:
            try:
                self._audit.record(who, action, self.path.name, "", {"keys": list(keys)})
            except (AuditError, OSError, ValueError) as exc:
                log.error("access log: %s not recorded: %s", action, exc)
        when = self._apply() if self._apply is not None else AT_RESTART
        self._pending, self._when = True, when
        return ApplyResult(keys, when)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock
