"""The lean path for ``POST files/archive``: several signed files in one streamed tar.

A fetch, collect or feedback fetch of small files would otherwise be one request per file,
and with small files the cost is the request, not the bytes. The client posts the signed
tokens it already holds from the manifests (``{"tokens": [...]}``); each token proves the
caller may read its blob and names it, so, as for ``files/{signed}``, the answer needs no
session, CSRF check, user, DRF or database (``SignedFileMiddleware`` routes the request
here). The answer is an uncompressed tar (the files are mostly compressed notebooks or data
already) whose members are named by SHA-256, streamed from the storage with an exact
``Content-Length`` so a cut answer is seen as cut. Offered with local storage only: with S3
the bytes never pass through the service (the manifest then has no ``archive_url``).
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Iterator

from django.core.files.storage import FileSystemStorage
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from courses import blobstore
from courses.dependencies import RETRY_AFTER_SECONDS, as_unavailable
from courses.exceptions import BadRequest, ExchangeError, NotFound, TooLarge
from courses.models import blob_storage_name

from .downloads import read_signed

# The caps of one request: enough for a whole class's small files in a few requests, small
# enough that one request cannot hold a worker thread for long or ask for the whole store.
MAX_TOKENS = 1000
MAX_BYTES = 64 * 1024 * 1024
MAX_BODY = 512 * 1024
CHUNK = 256 * 1024
BLOCK = tarfile.BLOCKSIZE
GONE = "The file behind this link is no longer stored."


def offered(storage: object | None = None) -> bool:
    """Whether the archive path is offered: local storage only (S3 keeps presigned URLs)."""
    return isinstance(storage or blobstore.get_storage(), FileSystemStorage)


def _tokens(request: HttpRequest) -> list[str]:
    """The tokens the body lists, checked for form and caps before any is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise TooLarge(f"The list of files is too long: at most {MAX_TOKENS} files per request.")
    try:
        payload = json.loads(request.read(MAX_BODY + 1) or b"null")
    except (ValueError, UnicodeDecodeError):
        payload = None
    tokens = payload.get("tokens") if isinstance(payload, dict) else None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise BadRequest(
            'The body must be JSON {"tokens": [...]}: the signed tokens of the files wanted.'
        )
    if len(tokens) > MAX_TOKENS:
        raise TooLarge(f"Too many files: at most {MAX_TOKENS} per request.")
    return tokens


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time())
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _members(paths: list[tuple[str, str, int]]) -> Iterator[bytes]:
    for sha256, path, size in paths:
        yield _header(sha256, size)
        sent = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(min(CHUNK, size - sent)):
                sent += len(chunk)
                yield chunk
        if sent != size:
            # Changed under us (blobs are immutable, so only a damaged store): cut the answer
            # so the client sees a broken download rather than a wrong file.
            raise OSError(f"blob {sha256} changed size while being sent")
        if size % BLOCK:
            yield b"\0" * (BLOCK - size % BLOCK)
    yield b"\0" * (2 * BLOCK)


def serve_archive(request: HttpRequest) -> HttpResponse:
    """A streamed tar of the blobs the posted tokens name; the API's JSON error otherwise."""
    try:
        storage = blobstore.get_storage()
        if not offered(storage):
            raise NotFound("Archives are not offered with this storage; use each file's URL.")
        assert isinstance(storage, FileSystemStorage)
        paths: dict[str, tuple[str, str, int]] = {}
        total = 0
        for token in _tokens(request):
            sha256, _name = read_signed(token)
            if sha256 in paths:
                continue
            path = storage.path(blob_storage_name(sha256))
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                raise NotFound(GONE) from None
            total += size
            if total > MAX_BYTES:
                raise TooLarge(
                    f"The files asked for are too large for one archive (at most "
                    f"{MAX_BYTES // (1024 * 1024)} MiB); ask for fewer, or use each file's URL."
                )
            paths[sha256] = (sha256, path, size)
    except ExchangeError as exc:
        return JsonResponse({"error": exc.code, "detail": exc.detail}, status=exc.status_code)
    except Exception as exc:
        unavailable = as_unavailable(exc)
        if unavailable is None:
            raise
        return JsonResponse(
            {"error": unavailable.code, "detail": unavailable.detail},
            status=unavailable.status_code,
            headers={"Retry-After": str(unavailable.retry_after or RETRY_AFTER_SECONDS)},
        )
    length = sum(BLOCK + -(-size // BLOCK) * BLOCK for _, _, size in paths.values()) + 2 * BLOCK
    response = StreamingHttpResponse(
        _members(list(paths.values())), content_type="application/x-tar"
    )
    response["Content-Length"] = str(length)
    response["Cache-Control"] = "private, max-age=0"
    return response
