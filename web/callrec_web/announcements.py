"""Settings > Announcements: the consent prompts' versions, per direction and language.

GET /settings/announcements shows, per (direction, language), the active version (since when,
made active by whom, its duration) with a preview, the other versions with "make active",
and the upload form. An upload is converted by callrec.prompt_upload in a confined child
process (this layer never decodes audio nor runs a command itself) and stored as a new,
inactive version; making a version active is a second, confirmed step. The daemon takes the
new prompt into use between calls. Every change goes to the access log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import bottle
from bottle import request

from callrec.prompt_audio import MAX_SECONDS, MIN_SECONDS, PromptAudioError
from callrec.prompt_library import (
    DIRECTIONS,
    LANGUAGES,
    LibraryError,
    PromptLibrary,
    played_languages,
    slot,
    versions_of,
)
from callrec.prompt_upload import MAX_UPLOAD_BYTES, convert
from callrec_web import permissions as p
from callrec_web import uilang
from callrec_web.access import Runtime, WebError, audit, form, principal, see_other
from callrec_web.files import send_file
from callrec_web.pages import render
from callrec_web.translate import Translator

log = logging.getLogger(__name__)

PAGE = "/settings/announcements"
UPLOAD = PAGE + "/upload"
ACTIVATE = PAGE + "/activate"
FILE_FIELD = "audio"


def error_text(_: Translator, exc: PromptAudioError) -> str:
    """The refusal of an upload in words the technician can act on."""
    v = exc.values
    formats = _("Upload a WAV, FLAC, Ogg (Vorbis or Opus) or MP3 file.")
    texts: dict[str, Callable[[], str]] = {
        "not_audio": lambda: _("This file is not audio that can be read.") + " " + formats,
        "unsupported": lambda: _("This audio format ({format}) is not accepted.",
                                 format=v.get("format", "?")) + " " + formats,
        "damaged": lambda: _("The file could not be decoded: it may be damaged or "
                             "incomplete."),
        "too_big": lambda: _("The file is larger than {limit} MB.",
                             limit=f"{v.get('limit_mb', MAX_UPLOAD_BYTES / 2**20):.0f}"),
        "too_much_data": lambda: _("The file holds too much audio data (many channels or a "
                                   "very high sample rate): export it in mono."),
        "bad_rate": lambda: _("Its sample rate ({rate} Hz) is not supported: use 8 to 192 kHz.",
                              rate=f"{v.get('rate', 0):.0f}"),
        "too_short": lambda: _("Without its silences the announcement lasts {seconds} s; it "
                               "must last at least {limit} s.",
                               seconds=f"{v.get('seconds', 0):.1f}", limit=f"{MIN_SECONDS:g}"),
        "too_long": lambda: _("The announcement lasts {seconds} s; it must last at most "
                              "{limit} s.", seconds=f"{v.get('seconds', 0):.1f}",
                              limit=f"{MAX_SECONDS:g}"),
        "silent": lambda: _("The file is silent: there is nothing to announce."),
        "clipped": lambda: _("The recording is distorted ({percent} % of it is clipped at full "
                             "scale): record it again at a lower level.",
                             percent=f"{v.get('percent', 0):.0f}"),
    }
    return texts.get(exc.code, texts["damaged"])()


def close_upload_files() -> None:
    """after_request hook: Bottle spools a large upload (and the body) to temporary files it
    never closes; close them at the end of the request, refused or not."""
    if request.path != UPLOAD:
        return
    post = request.environ.get("bottle.request.post")
    for value in post.values() if post is not None else ():
        if isinstance(value, bottle.FileUpload):
            value.file.close()
    body = request.environ.get("bottle.request.body")
    if body is not None:
        body.close()


def install(app: bottle.Bottle, rt: Runtime) -> None:
    app.add_hook("after_request", close_upload_files)

    def route(path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            app.route(path, method, fn, perm=p.SETTINGS_MANAGE)
            return fn

        return add

    def library() -> PromptLibrary:
        config = rt.ctx.config
        return PromptLibrary(config.announcement, config.board.sample_rate)

    def tr() -> Translator:
        return Translator(uilang.current(rt.views.lang))

    def page(status: int = 200, errors: dict[str, str] | None = None,
             chosen: dict[str, str] | None = None) -> str:
        lib = library()
        problem = ""
        try:
            lib.sync_installed()  # the installer's files show as version 1 from the start
            state = lib.state()
        except (OSError, LibraryError) as exc:
            log.error("prompt library: %s", exc)
            _ = tr()
            problem = _("The prompt library cannot be read: {error}", error=str(exc))
            state = {"versions": {}, "active": {}, "history": []}
        config = rt.ctx.config.announcement
        slots = []
        for direction in DIRECTIONS:
            played = played_languages(config, direction)
            for lang in LANGUAGES:
                name = slot(direction, lang)
                versions = versions_of(state, name)
                active = state["active"].get(name)
                slots.append({
                    "direction": direction, "language": lang, "played": lang in played,
                    "key": name.replace("/", "-"), "versions": versions, "active": active,
                    "history": [h for h in state["history"] if h["slot"] == name][-5:][::-1],
                })
        return render(rt, "announcements.tpl", status, slots=slots, errors=errors or {},
                      chosen=chosen or {}, problem=problem,
                      played={d: played_languages(config, d) for d in DIRECTIONS},
                      max_mb=MAX_UPLOAD_BYTES // 2**20, min_s=MIN_SECONDS, max_s=MAX_SECONDS)

    @route(PAGE, "GET")
    def show() -> str:
        return page()

    @route(UPLOAD, "POST")
    def upload() -> str | bottle.HTTPResponse:
        _ = tr()
        direction, lang = form("direction", 8), form("language", 8)
        errors: dict[str, str] = {}
        if direction not in DIRECTIONS:
            errors["direction"] = _("Choose the calls this announcement is for.")
        if lang not in LANGUAGES:
            errors["language"] = _("Choose the language it is spoken in.")
        upload = request.files.get(FILE_FIELD)
        if upload is None or not upload.raw_filename:
            errors[FILE_FIELD] = _("Choose an audio file.")
        chosen = {"direction": direction, "language": lang}
        if errors:
            return page(400, errors, chosen)
        data = upload.file.read(MAX_UPLOAD_BYTES + 1)
        lib = library()
        try:
            converted = convert(data, lib.root)
        except PromptAudioError as exc:
            log.info("announcement upload refused: %s", exc.code)
            return page(400, {FILE_FIELD: error_text(_, exc)}, chosen)
        who = principal()
        by = who.name if who else "?"
        try:
            meta = lib.add_upload(
                converted.wav, direction, lang, by=by, label=str(upload.raw_filename),
                details={"seconds": round(converted.seconds, 3),
                         "rms_dbfs": converted.rms_dbfs, "peak_dbfs": converted.peak_dbfs,
                         "gain_db": converted.gain_db, "format": converted.source_format})
        except (OSError, LibraryError) as exc:
            converted.wav.unlink(missing_ok=True)
            log.error("announcement upload not stored: %s", exc)
            raise WebError(500, "http_500", "the prompt could not be stored") from None
        log.info("announcement version %s uploaded (%.1f s, sha256 %s)", meta["id"],
                 meta["seconds"], meta["sha256"][:16])
        audit(rt, "config.change", f"announcement {meta['id']}",
              details={"change": "announcement.upload", "version": meta["id"],
                       "sha256": meta["sha256"]})
        if who is not None and who.session is not None:
            who.session.flash.append(_("Version {version} stored. Listen to it, then make it "
                                       "active.", version=meta["id"]))
        return see_other(f"{PAGE}#{meta['slot'].replace('/', '-')}")

    @route(ACTIVATE, "POST")
    def make_active() -> str | bottle.HTTPResponse:
        _ = tr()
        version_id = form("version", 32)
        lib = library()
        try:
            version = lib.version(version_id)
        except LibraryError:
            return page(404, {"activate": _("This version does not exist.")})
        if form("confirm", 8) != "yes":
            return page(400, {"activate": _("Confirm that this version becomes the one "
                                            "played.")})
        who = principal()
        try:
            record = lib.activate(version_id, who.name if who else "?")
        except (OSError, LibraryError, ValueError) as exc:
            log.error("announcement %s not activated: %s", version_id, exc)
            return page(409, {"activate": _("This version cannot be played: {error}",
                                            error=str(exc))})
        log.info("announcement version %s made active for %s", version_id, version["slot"])
        audit(rt, "config.change", f"announcement {version_id}",
              details={"change": "announcement.activate", "version": version_id,
                       "slot": version["slot"], "sha256": version["sha256"],
                       "since": record["since"]})
        if who is not None and who.session is not None:
            who.session.flash.append(_("Version {version} is now active; calls in progress "
                                       "keep the announcement they started with.",
                                       version=version_id))
        return see_other(f"{PAGE}#{version['slot'].replace('/', '-')}")

    @route(PAGE + "/audio/<version_id>", "GET")
    def audio(version_id: str) -> bottle.HTTPResponse:
        lib = library()
        try:
            lib.version(version_id)
            path = lib.audio_path(version_id)
            return send_file(path, "audio/wav", cache_control="private, max-age=3600")
        except (LibraryError, FileNotFoundError):
            raise WebError(404, "not_found", "no such prompt version") from None
