"""Bundles as zip archives for people (the API's submission download, the pages' "download
all"), produced piece by piece as they are sent, never whole in memory."""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterable, Iterator

from . import blobstore
from .models import BundleEntry

ZIP_CHUNK = 1024 * 1024


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
