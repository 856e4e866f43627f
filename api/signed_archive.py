"""The lean path for ``POST files/archive``: several signed files in one streamed tar.

A fetch, collect or feedback fetch of small files would otherwise be one request per file,
and with small files the cost is the request, not the bytes. The client posts the signed
tokens it already holds from the manifests (``{"tokens": [...]}``); each token proves the
caller may read its blob and names it, so, as for ``files/{signed}``, the answer needs no
session, CSRF check, user, DRF or database (``SignedFileMiddleware`` routes the request
here). The answer is an uncompressed tar (the files are mostly compressed notebooks or data
already) whose members are named by SHA-256, streamed from the storage with an exact
``Content-Length`` so a cut answer is seen as cut.

With S3 the manifests offer tokens for files up to ``INLINE_FILE_BYTES`` only, and those
tokens carry the blob's size: the bytes come from the server's copies or one plain GET
each (``blobstore.read_small``, several at once, a group of at most ``S3_GROUP_BYTES`` in
memory at a time) instead of one presigned GET per file from the client. Larger files keep
their presigned URLs: their bytes never pass through the service.
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

from .downloads import INLINE_FILE_BYTES, read_signed, read_signed_with_size

# The caps of one request: enough for a whole class's small files in a few requests, small
# enough that one request cannot hold a worker thread for long or ask for the whole store.
MAX_TOKENS = 1000
MAX_BYTES = 64 * 1024 * 1024
MAX_BODY = 512 * 1024
CHUNK = 256 * 1024
BLOCK = tarfile.BLOCKSIZE
GONE = "The file behind this link is no longer stored."


# With S3: how many files' bytes are held at once while the archive is sent.
S3_GROUP_FILES = 16
S3_GROUP_BYTES = 4 * 1024 * 1024


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


def _too_large() -> TooLarge:
    return TooLarge(
        f"The files asked for are too large for one archive (at most "
        f"{MAX_BYTES // (1024 * 1024)} MiB); ask for fewer, or use each file's URL."
    )


def _local(storage: FileSystemStorage, tokens: list[str]) -> list[tuple[str, str, int]]:
    """Each blob's (hash, path, size) on local storage, each once; NotFound if one is gone."""
    paths: dict[str, tuple[str, str, int]] = {}
    total = 0
    for token in tokens:
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
            raise _too_large()
        paths[sha256] = (sha256, path, size)
    return list(paths.values())


def _s3_groups(tokens: list[str]) -> list[list[tuple[str, int]]]:
    """Each blob's (hash, size) from the S3 tokens, each once, in groups read together."""
    sizes: dict[str, int] = {}
    for token in tokens:
        sha256, _name, size = read_signed_with_size(token)
        if size is None or size > INLINE_FILE_BYTES:
            # Tokens of this storage's manifests always carry a small size.
            raise NotFound("This download link is not valid for an archive; use its URL.")
        sizes.setdefault(sha256, size)
    if sum(sizes.values()) > MAX_BYTES:
        raise _too_large()
    groups: list[list[tuple[str, int]]] = [[]]
    for sha256, size in sizes.items():
        group = groups[-1]
        if group and (
            len(group) >= S3_GROUP_FILES or sum(s for _, s in group) + size > S3_GROUP_BYTES
        ):
            group = []
            groups.append(group)
        group.append((sha256, size))
    return groups


def _read_group(group: list[tuple[str, int]]) -> dict[str, bytes]:
    """The group's bytes, each its recorded size; NotFound if one cannot be read so."""
    found = blobstore.read_small([sha256 for sha256, _ in group], keep=False)
    for sha256, size in group:
        data = found.get(sha256)
        if data is None or len(data) != size:
            raise NotFound(GONE)
    return found


def _s3_members(groups: list[list[tuple[str, int]]], first: dict[str, bytes]) -> Iterator[bytes]:
    for number, group in enumerate(groups):
        # A blob gone after the answer began cuts it short: the client sees a broken archive.
        found = first if number == 0 else _read_group(group)
        for sha256, size in group:
            yield _header(sha256, size)
            yield found[sha256]
            if size % BLOCK:
                yield b"\0" * (BLOCK - size % BLOCK)
    yield b"\0" * (2 * BLOCK)


def serve_archive(request: HttpRequest) -> HttpResponse:
    """A streamed tar of the blobs the posted tokens name; the API's JSON error otherwise."""
    try:
        storage = blobstore.get_storage()
        tokens = _tokens(request)
        if isinstance(storage, FileSystemStorage):
            paths = _local(storage, tokens)
            sizes = [size for _, _, size in paths]
            members = _members(paths)
        else:
            groups = _s3_groups(tokens)
            sizes = [size for group in groups for _, size in group]
            # The first group before answering, so that a file gone is a 404, not a cut.
            members = _s3_members(groups, _read_group(groups[0]))
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
    length = sum(BLOCK + -(-size // BLOCK) * BLOCK for size in sizes) + 2 * BLOCK
    response = StreamingHttpResponse(members, content_type="application/x-tar")
    response["Content-Length"] = str(length)
    response["Cache-Control"] = "private, max-age=0"
    return response
