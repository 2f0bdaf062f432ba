"""Sending files and recordings: whole or one byte range (so audio players can seek).

Bottle's static_file leaks an open file on a 416 answer and sets caching headers that do not
fit personal data, so this small replacement is used instead. A recording is sent from an
`AudioSource` (its audio decrypted chunk by chunk, only the chunks a range touches).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import bottle
from bottle import HTTPResponse

from callrec.storage.recordings import AudioSource

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


class _SourceBody:
    """A response body read from an AudioSource; the server calls close() when done (or
    when the client went away), which closes the source."""

    def __init__(self, source: AudioSource, offset: int, length: int) -> None:
        self.source, self.offset, self.end = source, offset, offset + length

    def __iter__(self) -> Iterator[bytes]:
        offset = self.offset
        while offset < self.end:
            data = self.source.read_range(offset, min(self.end, offset + CHUNK))
            if not data:
                return
            offset += len(data)
            yield data

    def close(self) -> None:
        self.source.close()


def send_source(
    source: AudioSource, *, disposition: str | None = None, cache_control: str = "no-store"
) -> HTTPResponse:
    """An HTTPResponse (200, 206 or 416) for an open AudioSource; the source is closed when
    the body has been sent, or at once if there is no body."""
    bodies: list[_SourceBody] = []

    def body_of(offset: int, length: int) -> _SourceBody:
        bodies.append(_SourceBody(source, offset, length))
        return bodies[-1]

    try:
        response = _respond(
            source.size(), source.content_type, body_of, disposition, cache_control
        )
    except BaseException:
        source.close()
        raise
    if not bodies:  # HEAD or 416
        source.close()
    return response


def send_file(
    path: Path,
    content_type: str,
    *,
    disposition: str | None = None,
    cache_control: str = "no-store",
) -> HTTPResponse:
    """An HTTPResponse for `path` (200, 206 or 416), or raise FileNotFoundError."""
    return _respond(
        os.stat(path).st_size,
        content_type,
        lambda offset, length: _chunks(path, offset, length),
        disposition,
        cache_control,
    )


def _respond(
    size: int,
    content_type: str,
    body_of: Callable[[int, int], Iterable[bytes]],
    disposition: str | None,
    cache_control: str,
) -> HTTPResponse:
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
    headers["Cache-Control"] = cache_control
    if disposition:
        headers["Content-Disposition"] = disposition
    wanted = byte_range(bottle.request.get_header("Range"), size)
    if wanted is False:
        return HTTPResponse(status=416, **headers, **{"Content-Range": f"bytes */{size}"})
    head = bottle.request.method == "HEAD"
    if wanted is None:
        body = [] if head else body_of(0, size)
        return HTTPResponse(body, status=200, **headers, **{"Content-Length": str(size)})
    start, end = wanted  # type: ignore[misc]
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    body = [] if head else body_of(start, end - start)
    return HTTPResponse(body, status=206, **headers)
