"""How file bytes leave the service: a short-lived URL per blob, and zips for people.

``blob_url`` is the one place that decides where a client downloads a file from: with S3
storage a presigned URL (the bytes never pass through the service), otherwise a URL of
``files/<signed>`` carrying a ``django.core.signing`` token that expires after
EXCHANGE_SIGNED_URL_SECONDS.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import content_disposition_header

from courses import blobstore
from courses.exceptions import ExchangeError, NotFound
from courses.models import BundleEntry, blob_storage_name

SIGNING_SALT = "api.files"
ZIP_CHUNK = 1024 * 1024


class LinkExpired(ExchangeError):
    status_code = 403
    code = "link_expired"


def _presigns(storage: object) -> bool:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages[s3] is a requirement
        return False
    return isinstance(storage, S3Storage)


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


def read_signed(signed: str) -> tuple[str, str]:
    """The blob hash and file name a signed token names; NotFound or LinkExpired if not valid."""
    try:
        sha256, name = signing.loads(
            signed, salt=SIGNING_SALT, max_age=settings.EXCHANGE_SIGNED_URL_SECONDS
        )
    except signing.SignatureExpired as exc:
        raise LinkExpired(
            "This download link has expired; ask the service for the file again."
        ) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise NotFound("This download link is not valid.") from exc
    return str(sha256), str(name)


class _ZipSink:
    """A write-only file for zipfile that hands written bytes on instead of keeping them."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def iter_zip(entries: Iterable[BundleEntry], *, root: str = "") -> Iterator[bytes]:
    """A zip of the entries' files, produced piece by piece as it is sent (never whole in
    memory); each file under ``root/`` when a root is given."""
    return iter_zip_members(
        (posixpath.join(root, entry.path) if root else entry.path, entry) for entry in entries
    )


def iter_zip_members(members: Iterable[tuple[str, BundleEntry]]) -> Iterator[bytes]:
    """A zip of files from any bundles, each under the name given with it (the web pages
    put every student's latest submission under ``<student>/``)."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for name, entry in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = entry.blob.size
            with archive.open(info, mode="w") as member, blobstore.open_blob(entry.blob_id) as src:
                while chunk := src.read(ZIP_CHUNK):
                    member.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
