"""Sending files: whole or one byte range (so audio players can seek).

Bottle's static_file leaks an open file on a 416 answer and sets caching headers that do not
fit personal data, so this small replacement is used instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import bottle
from bottle import HTTPResponse

CHUNK = 64 * 1024


def _chunks(path: Path, offset: int, length: int) -> Iterator[bytes]:
    # Opened on the first read and closed when the server closes the iterator.
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data


def byte_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """(start, end-exclusive) for a single satisfiable range; None: send all; False: 416."""
    if not header or not header.strip().lower().startswith("bytes="):
        return None  # absent or not a byte range: ignore it, as RFC 9110 allows
    if "," in header:
        return None  # several ranges: simpler to send the whole file
    ranges = list(bottle.parse_range_header(header, size))
    return ranges[0] if ranges else False


def send_file(
    path: Path,
    content_type: str,
    *,
    disposition: str | None = None,
    cache_control: str = "no-store",
) -> HTTPResponse:
    """An HTTPResponse for `path` (200, 206 or 416), or raise FileNotFoundError."""
    size = os.stat(path).st_size
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
    headers["Cache-Control"] = cache_control
    if disposition:
        headers["Content-Disposition"] = disposition
    wanted = byte_range(bottle.request.get_header("Range"), size)
    if wanted is False:
        return HTTPResponse(status=416, **headers, **{"Content-Range": f"bytes */{size}"})
    head = bottle.request.method == "HEAD"
    if wanted is None:
        body = [] if head else _chunks(path, 0, size)
        return HTTPResponse(body, status=200, **headers, **{"Content-Length": str(size)})
    start, end = wanted  # type: ignore[misc]
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    body = [] if head else _chunks(path, start, end - start)
    return HTTPResponse(body, status=206, **headers)
