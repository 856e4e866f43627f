"""How file bytes leave the service through the API: a short-lived URL per blob (zips for
people are ``courses.zips``).

``blob_url`` is the one place that decides where a client downloads a file from: with S3
storage a presigned URL (the bytes never pass through the service), otherwise a URL of
``files/<signed>`` carrying a ``django.core.signing`` token that expires after
EXCHANGE_SIGNED_URL_SECONDS.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterable

from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import content_disposition_header

from courses import blob_cache, blobstore
from courses.exceptions import ExchangeError, NotFound
from courses.models import blob_storage_name

SIGNING_SALT = "api.files"
# The last path segment of ``files/archive``: never a token (tokens hold a ':').
ARCHIVE = "archive"
# ``?inline=true``: files up to this size come in the answer itself, as long as the
# answer's inlined bytes stay under the total; the rest keep their URLs. With S3 the server
# keeps copies of the files it may send so (``courses.blob_cache``), so the two are one size.
INLINE_FILE_BYTES = blob_cache.MAX_FILE_BYTES
INLINE_TOTAL_BYTES = 4 * 1024 * 1024


class LinkExpired(ExchangeError):
    status_code = 403
    code = "link_expired"


def _presigns(storage: object) -> bool:
    # An S3 storage exists only once its module is loaded: on local storage, asking must
    # not load boto3 and botocore (about 20 MB in every worker).
    s3 = sys.modules.get("storages.backends.s3")
    return s3 is not None and isinstance(storage, s3.S3Storage)


def blob_url(request: HttpRequest, *, sha256: str, path: str) -> str:
    """A short-lived URL that downloads the blob, offered under the file's name."""
    name = posixpath.basename(path) or "file"
    storage = blobstore.get_storage()
    if _presigns(storage):
        return storage.url(  # type: ignore[call-arg]
            blob_storage_name(sha256),
            parameters={"ResponseContentDisposition": content_disposition_header(True, name) or ""},
            expire=settings.EXCHANGE_SIGNED_URL_SECONDS,
        )
    signed = signing.dumps([sha256, name], salt=SIGNING_SALT)
    return request.build_absolute_uri(reverse("api:file", args=[signed]))


def blob_links(
    request: HttpRequest, *, sha256: str, path: str, size: int | None = None
) -> dict[str, str]:
    """``url`` (as ``blob_url``), and the ``token`` and the ``archive_url`` to post it to so
    several small files come in one answer (api/signed_archive.py): with local storage for
    every file, with S3 for files up to INLINE_FILE_BYTES of known ``size`` (their bytes
    pass through the service, as inline ones do; larger ones keep to presigned URLs)."""
    name = posixpath.basename(path) or "file"
    storage = blobstore.get_storage()
    archive = reverse("api:file", args=[ARCHIVE])
    if _presigns(storage) or not isinstance(storage, FileSystemStorage):
        links = {"url": blob_url(request, sha256=sha256, path=path)}
        if size is not None and size <= INLINE_FILE_BYTES:
            links["token"] = signing.dumps([sha256, name, size], salt=SIGNING_SALT)
            links["archive_url"] = request.build_absolute_uri(archive)
        return links
    signed = signing.dumps([sha256, name], salt=SIGNING_SALT)
    return {
        "url": request.build_absolute_uri(reverse("api:file", args=[signed])),
        "token": signed,
        "archive_url": request.build_absolute_uri(archive),
    }


def inline_contents(entries: Iterable[tuple[str, int]]) -> dict[str, bytes]:
    """The bytes of the small files among ``entries`` (``(sha256, size)``), by hash: each up
    to INLINE_FILE_BYTES, together up to INLINE_TOTAL_BYTES, each blob once. A student's
    feedback then comes in one answer instead of a listing and a download per file. With
    S3 too: one plain GET per file (``courses.s3_requests``) costs the service less than
    the presigned URLs it replaces cost the service and the client together."""
    chosen: dict[str, int] = {}
    total = 0
    for sha256, size in entries:
        if sha256 in chosen or size > INLINE_FILE_BYTES or total + size > INLINE_TOTAL_BYTES:
            continue
        chosen[sha256] = size
        total += size
    read = blobstore.read_small(chosen)
    # A blob whose length is not its recorded size is not offered inline (the client checks
    # the hash anyway; its URL answers as for any damaged blob).
    return {sha256: data for sha256, data in read.items() if len(data) == chosen[sha256]}


def read_signed(signed: str) -> tuple[str, str]:
    """The blob hash and file name a signed token names; NotFound or LinkExpired if not valid."""
    sha256, name, _size = read_signed_with_size(signed)
    return sha256, name


def read_signed_with_size(signed: str) -> tuple[str, str, int | None]:
    """``read_signed``, and the blob's size when the token carries it (S3 archive tokens)."""
    try:
        value = signing.loads(
            signed, salt=SIGNING_SALT, max_age=settings.EXCHANGE_SIGNED_URL_SECONDS
        )
        sha256, name, *rest = value
        size = int(rest[0]) if rest else None
        if len(rest) > 1:
            raise ValueError("too many fields")
    except signing.SignatureExpired as exc:
        raise LinkExpired(
            "This download link has expired; ask the service for the file again."
        ) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise NotFound("This download link is not valid.") from exc
    return str(sha256), str(name), size
