"""An upload made of plain files (a page's file field), in the shape the plugin sends: a
manifest of every file and a tar.gz of their bytes, written to a temporary file (never held
in memory whole). The upload is then checked like any other (``stage_bundle``)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Iterable
from typing import IO

from .services import Upload

CHUNK = 1 << 20


def _sha256_and_size(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def upload_of_files(files: Iterable[tuple[str, IO[bytes]]]) -> Upload:
    """``(path, stream)`` pairs as one upload; the streams must be seekable."""
    manifest = []
    # Not closed here: the upload carries it to the service, and it goes when collected.
    archive = tempfile.TemporaryFile()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path, stream in files:
            sha256, size = _sha256_and_size(stream)
            manifest.append({"path": path, "size": size, "sha256": sha256})
            info = tarfile.TarInfo(path)
            info.size = size
            tar.addfile(info, stream)
    archive.seek(0)
    return Upload(manifest=json.dumps(manifest), archive=archive)
