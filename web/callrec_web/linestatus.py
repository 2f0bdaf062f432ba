"""The daemon's live status, reduced to the fields the status page and API may show.

The technician sees status but must never see who is calling, so only whitelisted fields
of the snapshot (callrec.status.StatusBoard.snapshot) pass, whatever else the daemon adds:

    {"version", "running", "line", "state", "since", "recording", "not_recorded_reason",
     "call": {"direction", "ring_count", "answered", "started_at"?, "duration_s"?} | None,
     "faults": [{"part", "name", "detail"}],
     "board": {"backend", "mcu_connected", "mcu_version", "audio_open"},
     "last_call": {"outcome", "direction", "at"} | None, "updated",
     "clock": {"synchronised", "source", "detail"} | None, "config_pending": bool,
     "sip": {"line", "calls", "recording", "outcomes": {outcome: n},
             "messages": {"received", "sent", "dropped": {reason: n}},
             "media": {"forwarded", "prompt_packets", "ignored": {reason: n}}} | None,
     "web": {"url", "tls", "fingerprint", "warning"} | None}

Of the SIP line only counts pass: no address, no number, no call identifier.

`state_for_s` (seconds since `since`) is added here, from the appliance's clock, so the
page can say how long the line has been in its state without trusting the browser's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

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


def _faults(faults: object) -> list[dict[str, str]]:
    if not isinstance(faults, list):
        return []
    return [
        {
            "part": _text(f.get("part")) or "",
            "name": _text(f.get("name")) or "",
            "detail": _text(f.get("detail")) or "",
            "code": _text(f.get("code")) or "",
        }
        for f in faults[:_MAX_FAULTS]
        if isinstance(f, dict)
    ]


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
