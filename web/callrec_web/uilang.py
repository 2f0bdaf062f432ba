"""The staff UI's language for one request: ?lang= (remembered in a cookie), else the cookie,
else the configured default ([web] language).

The choice itself is plain code (`choose`, `switch_links`); reading the request and setting the
cookie are the two small edges below them.
"""

from __future__ import annotations

from urllib.parse import urlencode

import bottle

LANGUAGES = ("en", "fr")
# Each language named in itself, so that someone who cannot read the current one finds theirs.
NAMES = {"en": "English", "fr": "Français"}
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
_ENVIRON_KEY = "callrec.ui_lang"


def choose(asked: str | None, remembered: str | None, default: str) -> tuple[str, bool]:
    """(language, whether to remember it): a known ?lang= wins and is remembered."""
    if asked in LANGUAGES:
        return str(asked), asked != remembered
    if remembered in LANGUAGES:
        return str(remembered), False
    return (default if default in LANGUAGES else "en"), False


def switch_links(
    path: str, query: list[tuple[str, str]], current: str
) -> list[tuple[str, str, str, bool]]:
    """(code, name, href, is current) per language: this page again, its query kept, lang set."""
    kept = [(key, value) for key, value in query if key != "lang"]
    return [
        (code, NAMES[code], f"{path}?{urlencode([*kept, ('lang', code)])}", code == current)
        for code in LANGUAGES
    ]


def current(default: str) -> str:
    """This request's language, without setting anything (also outside a request: default)."""
    try:
        chosen = bottle.request.environ.get(_ENVIRON_KEY)
        if chosen:
            return str(chosen)
        request = bottle.request
        return choose(request.query.get("lang"), request.get_cookie(COOKIE), default)[0]
    except RuntimeError:  # no request (a template rendered by a test or a tool)
        return default if default in LANGUAGES else "en"


def for_request(default: str, https: bool) -> str:
    """This request's language; a new choice made with ?lang= is kept for a year in a cookie."""
    request = bottle.request
    lang, remember = choose(request.query.get("lang"), request.get_cookie(COOKIE), default)
    if remember:
        bottle.response.set_cookie(
            COOKIE,
            lang,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=https,
        )
    request.environ[_ENVIRON_KEY] = lang
    return lang


def links_for_request(lang: str) -> list[tuple[str, str, str, bool]]:
    """The switch of this page. After a form was sent (POST), the links lead to the same address
    without the form's data when a page answers there, else to the home page."""
    request = bottle.request
    if request.method == "GET":
        return switch_links(request.path, list(request.query.allitems()), lang)
    path = request.path
    try:
        request.app.router.match({"PATH_INFO": path, "REQUEST_METHOD": "GET"})
    except bottle.HTTPError:  # no page at this address, only the form's action
        path = "/"
    return switch_links(path, [], lang)
