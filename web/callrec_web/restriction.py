"""Restricted recordings (GDPR art. 18) on the recording routes.

A restricted recording is kept but not used: nobody plays, downloads or exports it, and its
details stay hidden, except the privacy officer (permission subjects.manage), who must state
why each time (the reason goes to the access log as recording.restricted_access). The
recording routes of pages.py and api.py call these; the subjects routes set and lift it.
"""

from __future__ import annotations

from typing import Any

from bottle import request

from callrec_web import permissions as p
from callrec_web.access import WebError, audit, principal

__all__ = ["REFUSED", "access_reason", "check_access", "masked", "may_see"]

REFUSED = ("this recording is restricted (GDPR art. 18): only the privacy officer can play, "
           "download or export it, with a stated reason")
_HIDDEN = ("caller_number", "caller_name", "called_number", "notes", "restriction")


def may_see(meta: dict[str, Any]) -> bool:
    """Whether the caller may see a recording's details (all but restricted ones, unless
    they are the privacy officer)."""
    who = principal()
    return not meta.get("restricted") or (who is not None and who.can(p.SUBJECTS_MANAGE))


def access_reason() -> str:
    """The reason given with this request (?reason= or a form field), stripped."""
    try:
        raw = request.query.getunicode("reason", default="") or ""
    except UnicodeError:
        raw = ""
    return raw.strip()[:1000]


def check_access(rt: Any, meta: dict[str, Any], *, log_it: bool, purpose: str) -> None:
    """Refuse (403, with the reason why) the audio of a restricted recording unless the
    caller is the privacy officer and stated a reason; log that access when `log_it`."""
    if not meta.get("restricted"):
        return
    who = principal()
    if who is None or not who.can(p.SUBJECTS_MANAGE):
        raise WebError(403, "restricted", REFUSED)
    reason = access_reason()
    if not reason:
        raise WebError(403, "restricted_reason", "a restricted recording is accessed only "
                       "with a stated reason (?reason=...)")
    if log_it:
        audit(rt, "recording.restricted_access", str(meta.get("id", "")), reason=reason,
              details={"for": purpose}, required=True)


def masked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A list of recordings with the details of restricted ones hidden from whoever may not
    see them (the row stays: the recording exists, and is marked restricted)."""
    return [row if may_see(row) else {k: v for k, v in row.items() if k not in _HIDDEN}
            for row in rows]
