"""The daemon's live status, reduced to the fields the status page and API may show.

The technician sees status but must never see who is calling, so only whitelisted fields
of the snapshot (callrec.status.StatusBoard.snapshot) pass, whatever else the daemon adds:

    {"version", "running", "line", "state", "since", "recording", "not_recorded_reason",
     "call": {"direction", "ring_count", "answered", "started_at"?, "duration_s"?} | None,
     "faults": [{"part", "name", "detail", "code", "detail_t"?}],
     "board": {"backend", "mcu_connected", "mcu_version", "audio_open"},
     "last_call": {"outcome", "direction", "at"} | None, "updated",
     "clock": {"synchronised", "source", "detail"} | None, "config_pending": bool,
     "sip": {"line", "calls", "recording", "outcomes": {outcome: n},
             "messages": {"received", "sent", "dropped": {reason: n}},
             "media": {"forwarded", "prompt_packets", "ignored": {reason: n}}} | None,
     "web": {"url", "tls", "fingerprint", "warning"} | None}

Of the SIP line only counts pass: no address, no number, no call identifier.

A fault's `detail_t`, when the daemon gave one, is its detail as a phrase (callrec.phrase) for
the page to translate; the names, reasons and counter names below are marked here so that the
page can translate them with `_()` (anything else shows as the daemon wrote it).

`state_for_s` (seconds since `since`) is added here, from the appliance's clock, so the
page can say how long the line has been in its state without trusting the browser's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from callrec_web.translate import N_

log = logging.getLogger(__name__)

# Why a call in progress is not recorded: the fixed texts of callrec.callflow (the status's
# not_recorded_reason), translated where shown. Another reason (an announcement's playback
# error) shows as it is.
NOT_RECORDED_REASONS = (
    N_("incoming calls are not recorded on this line"),
    N_("outgoing calls are not recorded on this line"),
    N_("this line is never recorded"),
    N_("kept private (privacy button)"),
    N_("kept private (privacy prefix)"),
    N_("the caller is on the do-not-record list"),
    N_("the called number is on the do-not-record list"),
    N_("the caller refused the recording"),
    N_("announcement interrupted: mcu failed"),
    N_("announcement interrupted: audio failed"),
)
# The SIP counters' names as the page writes them (the key, "_" as a space): call outcomes,
# why a signalling message was dropped (sip/transport.py), why a media packet was ignored
# (sip/relay.py IGNORE_REASONS).
COUNTER_NAMES = (
    N_("recorded"), N_("unanswered"), N_("abandoned"), N_("not recorded"),
    N_("ended during announcement"),
    N_("oversize"), N_("stranger"), N_("rate"), N_("malformed"), N_("queue full"),
    N_("not rtp"), N_("no destination"), N_("announcement"), N_("send error"),
)
_MAX_PHRASE_DEPTH = 4

_MAX_TEXT = 300
_MAX_FAULTS = 20


def _text(value: object) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _seconds_since(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, round((now - moment).total_seconds(), 1))


def _call(call: object, now: datetime) -> dict[str, Any] | None:
    if not isinstance(call, dict):
        return None
    direction = call.get("direction")
    started_at = _text(call.get("started_at"))
    duration_s = _number(call.get("duration_s"))
    return {
        "direction": direction if direction in ("in", "out") else None,
        "answered": _flag(call.get("answered")),
        "ring_count": _number(call.get("ring_count")),
        "started_at": started_at,
        "duration_s": duration_s if duration_s is not None else _seconds_since(started_at, now),
    }


def _phrase(value: object, depth: int = 0) -> dict[str, Any] | None:
    """A well-formed phrase (text, values of strings, numbers or phrases), else None."""
    if depth > _MAX_PHRASE_DEPTH or not isinstance(value, dict):
        return None
    text, values = _text(value.get("text")), value.get("values")
    if text is None or not isinstance(values, dict):
        return None
    kept: dict[str, Any] = {}
    for name, v in list(values.items())[:10]:
        if isinstance(v, dict):
            nested = _phrase(v, depth + 1)
            if nested is None:
                return None
            kept[str(name)[:40]] = nested
        elif isinstance(v, str):
            kept[str(name)[:40]] = v[:_MAX_TEXT]
        elif _number(v) is not None:
            kept[str(name)[:40]] = v
        else:
            return None
    return {"text": text, "values": kept}


def _faults(faults: object) -> list[dict[str, Any]]:
    if not isinstance(faults, list):
        return []
    out: list[dict[str, Any]] = []
    for f in faults[:_MAX_FAULTS]:
        if not isinstance(f, dict):
            continue
        fault: dict[str, Any] = {
            "part": _text(f.get("part")) or "",
            "name": _text(f.get("name")) or "",
            "detail": _text(f.get("detail")) or "",
            "code": _text(f.get("code")) or "",
        }
        detail_t = _phrase(f.get("detail_t"))
        if detail_t is not None:
            fault["detail_t"] = detail_t
        out.append(fault)
    return out


def _counts(value: object, limit: int = 30) -> dict[str, int]:
    """A {name: count} mapping of known shape (names are the daemon's own words)."""
    if not isinstance(value, dict):
        return {}
    return {str(k)[:40]: int(v) for k, v in list(value.items())[:limit]
            if isinstance(v, int) and not isinstance(v, bool)}


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sip(sip: object) -> dict[str, Any] | None:
    if not isinstance(sip, dict):
        return None
    transport, relay = _dict(sip.get("transport")), _dict(sip.get("relay"))
    return {
        "line": _text(sip.get("line")),
        "calls": _number(sip.get("calls")),
        "recording": _number(sip.get("recording")),
        "outcomes": _counts(sip.get("outcomes")),
        "messages": {"received": _number(transport.get("received")),
                     "sent": _number(transport.get("sent")),
                     "dropped": _counts(transport.get("dropped"))},
        "media": {"forwarded": _number(relay.get("forwarded")),
                  "prompt_packets": _number(relay.get("prompt_packets")),
                  "ignored": _counts(relay.get("ignored"))},
    }


def _web(web: object) -> dict[str, Any] | None:
    """How the UI is served (callrec_web.transport): no personal data, shown to every role."""
    if not isinstance(web, dict):
        return None
    return {"url": _text(web.get("url")), "tls": _flag(web.get("tls")),
            "fingerprint": _text(web.get("fingerprint")), "warning": _text(web.get("warning"))}


def _clock(clock: object) -> dict[str, Any] | None:
    if not isinstance(clock, dict) or not isinstance(clock.get("synchronised"), bool):
        return None
    return {"synchronised": clock["synchronised"], "source": _text(clock.get("source")),
            "detail": _text(clock.get("detail"))}


def sanitize(raw: object, now: datetime | None = None) -> dict[str, Any]:
    """Keep the known, well-typed fields of a snapshot; drop everything else."""
    snap = raw if isinstance(raw, dict) else {}
    now = now or datetime.now(UTC)
    raw_board = snap.get("board")
    board: dict[str, Any] = raw_board if isinstance(raw_board, dict) else {}
    last = snap.get("last_call") if isinstance(snap.get("last_call"), dict) else None
    since = _text(snap.get("since"))
    return {
        "version": _text(snap.get("version")),
        "running": _flag(snap.get("running")),
        "line": _text(snap.get("line")),
        "state": _text(snap.get("state")) or "unknown",
        "since": since,
        "state_for_s": _seconds_since(since, now),
        "recording": snap.get("recording") is True,
        "not_recorded_reason": _text(snap.get("not_recorded_reason")),
        "call": _call(snap.get("call"), now),
        "faults": _faults(snap.get("faults")),
        "board": {
            "backend": _text(board.get("backend")),
            "mcu_connected": _flag(board.get("mcu_connected")),
            "mcu_version": _text(board.get("mcu_version")),
            "audio_open": _flag(board.get("audio_open")),
        },
        "last_call": None
        if last is None
        else {
            "outcome": _text(last.get("outcome")),
            "direction": _text(last.get("direction")),
            "at": _text(last.get("at")),
        },
        "updated": _text(snap.get("updated")),
        "clock": _clock(snap.get("clock")),
        # A saved configuration change waits for the call to end (config_store.py).
        "config_pending": snap.get("config_pending") is True,
        "sip": _sip(snap.get("sip")),
        "web": _web(snap.get("web")),
    }


def snapshot(source: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The sanitized snapshot, or an 'unknown' one with a fault if the daemon cannot answer."""
    try:
        return sanitize(source())
    except Exception:
        log.exception("status snapshot failed")
        snap = sanitize({})
        snap["faults"] = [{"part": "web", "name": "", "detail": "", "code": "daemon_unreachable"}]
        return snap


def shown(snap: dict[str, Any], _: Callable[..., str],
          t: Callable[..., str]) -> dict[str, Any]:
    """The status's sentences in the language of `_` (and `t`, the catalog's), as the status
    page shows them: fault lines, the not-recorded reason, and the SIP counters' names. The
    page renders them, and its script takes them from /api/v1/status?lang= at each refresh, so
    a French page stays French."""
    from callrec_web.phrases import say

    faults = []
    for f in snap["faults"]:
        detail = say(_, f.get("detail_t"), f["detail"]) if f["detail"] else t(f["code"])
        # French puts a space before the colon: the separator is translated too.
        faults.append(_("{part}: {detail}", part=_(f["name"]), detail=detail) if f["name"]
                      else detail)
    reason = snap.get("not_recorded_reason")
    sip = snap.get("sip") or {}
    names = {*(sip.get("outcomes") or {}), *((sip.get("messages") or {}).get("dropped") or {}),
             *((sip.get("media") or {}).get("ignored") or {})}
    return {"faults": faults, "reason": _(reason) if reason else "",
            "counters": {name: _(name.replace("_", " ")) for name in sorted(names)}}
