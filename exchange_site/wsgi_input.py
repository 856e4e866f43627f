"""A faster request body under gunicorn.

gunicorn's ``wsgi.input`` answers ``read(n)`` by reading its body 1 KiB at a time, each time
copying what is buffered, from a socket read 8 KiB at a time: about 10 seconds of CPU for a
1 GiB upload on this project's machines, more than everything else the upload costs. For a
body of known length, ``FastInput`` asks gunicorn's length reader for ``n`` bytes at once,
with socket reads of up to 256 KiB. Anything else (another server, a chunked body, bytes
gunicorn has already buffered in its body object) is read as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

RECV_SIZE = 256 * 1024


class FastInput:
    """``wsgi.input`` over gunicorn's ``Body`` whose reader is a ``LengthReader``."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._reader = body.reader
        self._unreader = body.reader.unreader

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or self._body.buf.tell():
            return self._body.read(size)
        # Larger socket reads for this call only: gunicorn's own reads (the rest of a body
        # a view did not read, the next request's headers) keep theirs.
        before = self._unreader.mxchunk
        self._unreader.mxchunk = max(before, RECV_SIZE)
        try:
            return self._reader.read(size)
        finally:
            self._unreader.mxchunk = before

    def readline(self, size: int | None = None) -> bytes:
        return self._body.readline(size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._body.readlines(size)

    def __iter__(self) -> Any:
        return iter(self._body)


def _fast(body: Any) -> Any:
    try:
        from gunicorn.http.body import Body, LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:  # not under gunicorn
        return body
    if (
        type(body) is Body
        and type(body.reader) is LengthReader
        and type(body.reader.unreader) is SocketUnreader
    ):
        return FastInput(body)
    return body


def fast_input(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``app`` with gunicorn's request body read by ``FastInput``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _fast(environ["wsgi.input"])
        return app(environ, start_response)

    return wrapped
