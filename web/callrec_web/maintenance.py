"""Settings > Backup and Settings > Diagnostics (technician and administrator, settings.manage).

Backup: the configuration (and, encrypted with a typed passphrase, the do-not-record list) as
a download (callrec.config_backup). Restore: an upload validated completely, then a preview
of what would change, then, once confirmed, the list's missing entries added and the file
replaced through the configuration store (ctx.settings), which writes it atomically and has
the daemon apply it when no call is in progress. The validated backup waits for the
confirmation in this process's memory only, bound to the session that uploaded it, for
PENDING_S at most: it is never written anywhere, and the confirmation needs no second upload.

Diagnostics: the bundle of callrec.diagnostics, as a download (page form, or the API with a
token for tools). Backup, restore and bundle are in the access log, never a value.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bottle
from bottle import HTTPResponse, request

from callrec import __version__, config_backup, diagnostics, logring
from callrec.config_backup import Backup, BackupError, Preview
from callrec.config_store import SettingsError
from callrec.privacy.donotrecord import DoNotRecord, DoNotRecordError, sealer_for
from callrec.selftest_run import load_report
from callrec_web import permissions as p
from callrec_web import uilang
from callrec_web.access import Runtime, WebError, audit, form, principal, see_other
from callrec_web.linestatus import snapshot
from callrec_web.pages import render
from callrec_web.translate import Translator

log = logging.getLogger(__name__)

BACKUP = "/settings/backup"
DIAGNOSTICS = "/settings/diagnostics"
PENDING_S = 15 * 60  # a preview left open longer is uploaded again


def _(text: str, /, **values: object) -> tuple[str, dict[str, object]]:
    """Marks an English text for translation; it is translated in the request's language
    when shown (`say`), as the templates' `_` does."""
    return text, values


# What the page says for each reason a backup cannot be made or restored.
BUILD_ERRORS = {
    "need_passphrase": _("A backup with the do-not-record list needs a passphrase: the list "
                         "is personal data."),
    "short_passphrase": _("The passphrase must have at least {n} characters.",
                          n=config_backup.PASSPHRASE_MIN),
    "too_large": _("The backup would be larger than the restore page accepts ({kib} KiB).",
                   kib=config_backup.MAX_ARCHIVE_BYTES // 1024),
    "bad_config": _("This box's configuration file is not valid: fix it on the settings "
                    "pages before backing it up."),
    "mismatch": _("The two passphrases differ."),
    "unreadable": _("The configuration file or the do-not-record list cannot be read."),
}
RESTORE_ERRORS = {
    "too_large": _("This file is too large to be a callrec configuration backup."),
    "not_backup": _("This file is not a callrec configuration backup."),
    "need_passphrase": _("This backup is encrypted: type its passphrase."),
    "wrong_passphrase": _("Wrong passphrase for this backup."),
    "damaged": _("The backup file is damaged, incomplete or was changed."),
    "newer_format": _("This backup was made by a newer version of callrec: update this box "
                      "first."),
    "newer_config": _("The configuration in this backup was written for a newer version of "
                      "callrec: update this box first."),
    "bad_config": _("The configuration in this backup is not valid."),
    "bad_list": _("The do-not-record list in this backup is damaged."),
    "no_file": _("Choose the backup file to restore."),
    "expired": _("This preview has expired or was already used: upload the backup again."),
    "changed": _("The configuration changed since the preview: upload the backup again to "
                 "see what it would change now."),
    "refused": _("The configuration store refused the restored file."),
    "unavailable": _("No configuration file is being served here: nothing can be restored."),
    "list_unreadable": _("This box's do-not-record list cannot be read: repair it before "
                         "restoring."),
}
WHEN = {
    "now": _("The recorder is applying it now."),
    "after_call": _("A call is in progress: the recorder applies it when the call ends."),
    "at_restart": _("It applies at the next start of the recorder."),
    "unchanged": _("The configuration was already identical."),
}


@dataclass
class _Pending:
    backup: Backup
    preview: Preview
    owner: str  # the session (or token user) that uploaded it
    current_sha: str  # the configuration text the preview was computed against
    at: float


class PendingRestores:
    """Validated backups waiting for their confirmation: in memory, one per session."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def put(self, item: _Pending) -> str:
        key = secrets.token_urlsafe(18)
        with self._lock:
            self._expire()
            for old in [k for k, v in self._items.items() if v.owner == item.owner]:
                del self._items[old]
            self._items[key] = item
        return key

    def take(self, key: str, owner: str) -> _Pending | None:
        with self._lock:
            self._expire()
            item = self._items.get(key)
            if item is None or item.owner != owner:
                return None
            return self._items.pop(key)

    def drop(self, owner: str) -> None:
        with self._lock:
            for old in [k for k, v in self._items.items() if v.owner == owner]:
                del self._items[old]

    def _expire(self) -> None:
        now = self._clock()
        for old in [k for k, v in self._items.items() if now - v.at > PENDING_S]:
            del self._items[old]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _multipart_text(name: str, max_len: int) -> str:
    """A text field of a multipart form. Bottle decodes these as UTF-8 already (unlike
    urlencoded fields, which access.form re-decodes), so the value is taken as it is."""
    try:
        value = request.forms.get(name)
    except Exception:
        raise WebError(400, "bad_form", "malformed form data") from None
    if value is None:
        return ""
    if len(value) > max_len:
        raise WebError(400, "bad_form", f"field {name} is too long")
    return str(value)


def _download(data: bytes, name: str, kind: str) -> HTTPResponse:
    return HTTPResponse(data, status=200, **{
        "Content-Type": kind,
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(len(data)),
        "Cache-Control": "no-store",
    })


def install(app: bottle.Bottle, rt: Runtime) -> None:
    """Add the backup and diagnostics pages (and /api/v1/diagnostics) to `app`."""
    ctx = rt.ctx
    pending = PendingRestores()

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=p.SETTINGS_MANAGE)
            return fn

        return add

    def say(message: tuple[str, dict[str, object]]) -> str:
        text, values = message
        return Translator(uilang.current(rt.views.lang))(text, **values)

    def owner() -> str:
        who = principal()
        if who is None:  # the guard lets no one through without one
            raise WebError(401, "login_required", "authentication required")
        return f"session:{who.session.id}" if who.session is not None else f"user:{who.name}"

    def list_path() -> Any:
        config = ctx.config
        return config.privacy.do_not_record_path(config.data_dir)

    def load_list() -> DoNotRecord:
        return DoNotRecord.load(list_path(), sealer_for(ctx.store.keys))

    def current_text() -> str:
        if ctx.settings is None:
            raise SettingsError("no configuration file")
        return ctx.settings.current_text()

    def page(status: int = 200, *, build_errors: dict[str, str] | None = None,
             restore_error: str = "", restore_detail: str = "", done: str = "") -> str:
        return render(rt, "backup.tpl", status, build_errors=build_errors or {},
                      restore_error=restore_error, restore_detail=restore_detail, done=done,
                      available=ctx.settings is not None,
                      passphrase_min=config_backup.PASSPHRASE_MIN,
                      max_kib=config_backup.MAX_ARCHIVE_BYTES // 1024)

    # -- backup ------------------------------------------------------------------------------
    @route(BACKUP, "GET")
    def show() -> str:
        done = request.query.get("restored", "")
        return page(done=say(WHEN[done]) if done in WHEN else "")

    @route(BACKUP, "POST")
    def create() -> str | HTTPResponse:
        include = form("include_list", 8) == "1"
        phrase = form("passphrase", config_backup.PASSPHRASE_MAX)
        again = form("confirm", config_backup.PASSPHRASE_MAX)
        if phrase and phrase != again:
            return page(400, build_errors={"confirm": say(BUILD_ERRORS["mismatch"])})
        try:
            text = current_text()
            entries = load_list().entries() if include else None
        except (SettingsError, DoNotRecordError, OSError) as exc:
            log.error("configuration backup: %s", exc)
            return page(500, build_errors={"form": say(BUILD_ERRORS["unreadable"])})
        now = datetime.now(UTC)
        try:
            data = config_backup.build(text, now=now, version=__version__,
                                       do_not_record=entries, passphrase=phrase or None)
        except BackupError as exc:
            field = "passphrase" if exc.code in ("need_passphrase", "short_passphrase") \
                else "form"
            return page(400, build_errors={field: say(BUILD_ERRORS.get(exc.code,
                                                                        BUILD_ERRORS["bad_config"]))})
        # A backup with the list is an export of personal data: never unlogged.
        audit(rt, "settings.backup", config_backup.CONFIG_MEMBER,
              details={"list_included": include, "list_entries": len(entries or []),
                       "encrypted": bool(phrase)}, required=include)
        return _download(data, config_backup.file_name(now), "application/octet-stream")

    # -- restore -----------------------------------------------------------------------------
    def refuse(code: str, detail: str = "", status: int = 400) -> str:
        audit(rt, "settings.restore_refused", config_backup.CONFIG_MEMBER,
              details={"why": code})
        return page(status, restore_error=say(RESTORE_ERRORS.get(code, RESTORE_ERRORS["damaged"])),
                    restore_detail=detail)

    @route(BACKUP + "/restore", "POST")
    def upload() -> str:
        if ctx.settings is None:
            return refuse("unavailable", status=503)
        try:
            upload = request.files.get("archive")
        except Exception:
            raise WebError(400, "bad_form", "malformed form data") from None
        if upload is None:
            return refuse("no_file")
        blob = upload.file.read(config_backup.MAX_ARCHIVE_BYTES + 1)
        if not blob:
            return refuse("no_file")
        try:
            backup = config_backup.read(blob, _multipart_text("passphrase",
                                                              config_backup.PASSPHRASE_MAX))
        except BackupError as exc:
            # The configuration's own error is worth showing (it names the key); the
            # others are said fully by the page's text.
            return refuse(exc.code, exc.detail if exc.code == "bad_config" else "")
        try:
            text = current_text()
            here = load_list().entries() if backup.do_not_record is not None else None
        except SettingsError:
            text, here = "", None  # a damaged file can still be replaced by a good one
        except DoNotRecordError:
            return refuse("list_unreadable", status=500)
        preview = config_backup.preview(text, backup, here)
        key = pending.put(_Pending(backup, preview, owner(), _sha(text), time.monotonic()))
        return render(rt, "backup_preview.tpl", preview=preview, key=key,
                      encrypted=backup.encrypted)

    @route(BACKUP + "/apply", "POST")
    def apply() -> str | HTTPResponse:
        item = pending.take(form("restore", 64), owner())
        if item is None:
            return refuse("expired", status=409)
        if ctx.settings is None:
            return refuse("unavailable", status=503)
        text = ctx.settings.current_text_or_empty()
        if _sha(text) != item.current_sha:
            return refuse("changed", status=409)
        who = principal()
        name = who.name if who is not None else "?"
        added = 0
        if item.backup.do_not_record is not None:
            # First, and adding only: an objection restored early never records anyone;
            # one that is on this box and not in the backup stays (withdrawing one is a
            # decision for the do-not-record page, with its reason, not a side effect).
            try:
                lst = load_list()
                for entry in config_backup.plan_list(lst.entries(), item.backup.do_not_record).add:
                    lst.add(entry.value, entry.kind, entry.reason)
                    added += 1
            except (DoNotRecordError, OSError) as exc:
                log.error("restore: the do-not-record list: %s", exc)
                return refuse("list_unreadable", status=500)
        try:
            result = ctx.settings.replace(item.backup.config_text, name)
        except SettingsError as exc:
            return refuse("refused", str(exc))
        audit(rt, "settings.restore", config_backup.CONFIG_MEMBER, details={
            "keys_changed": len(result.changed), "list_added": added,
            "encrypted": item.backup.encrypted,
            "backup_made": str(item.backup.manifest.get("created_at", ""))})
        return see_other(f"{BACKUP}?restored={result.when}")

    @route(BACKUP + "/cancel", "POST")
    def cancel() -> HTTPResponse:
        pending.drop(owner())
        return see_other(BACKUP)

    # -- diagnostics -------------------------------------------------------------------------
    def bundle() -> HTTPResponse:
        try:
            raw = ctx.status()
        except Exception:
            log.exception("diagnostics: status snapshot failed")
            raw = {}
        status = snapshot(lambda: raw)
        ring = logring.installed()
        logs = {"daemon.log": diagnostics.Log(
            "\n".join(ring.lines()) + "\n" if ring is not None else None,
            f"the last {len(ring.lines())} records of this process"
            + (f" ({ring.dropped} older ones dropped)" if ring.dropped else "")
            if ring is not None else "no log ring in this process (not started by callrec run)")}
        logs["install.log"] = diagnostics.Log(*diagnostics.read_log_tail(diagnostics.INSTALL_LOG))
        report = ctx.selftest.last() if ctx.selftest is not None else None
        if report is None:
            kept = load_report(ctx.config)
            report = kept.as_dict() if kept is not None else None
        now = datetime.now(UTC)
        data = diagnostics.build(diagnostics.Inputs(
            created_at=now, made_by="the web UI", config=ctx.config,
            versions=diagnostics.collect_versions(ctx.config, status), status=status,
            storage=raw.get("storage") if isinstance(raw.get("storage"), dict) else None,
            selftest=report, logs=logs))
        audit(rt, "settings.diagnostics", "", details={"bytes": len(data)})
        return _download(data, diagnostics.bundle_name(now), "application/zip")

    @route(DIAGNOSTICS, "GET")
    def diagnostics_page() -> str:
        report = ctx.selftest.last() if ctx.selftest is not None else None
        return render(rt, "diagnostics.tpl", report=report,
                      has_ring=logring.installed() is not None)

    @route(DIAGNOSTICS, "POST")
    def diagnostics_download() -> HTTPResponse:
        return bundle()

    @route("/api/v1/diagnostics", "GET")
    def api_diagnostics() -> HTTPResponse:
        return bundle()
