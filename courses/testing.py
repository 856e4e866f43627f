"""Helpers for tests of every interface: build uploads as the plugin does."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping

from .services import Upload


def manifest_of(files: Mapping[str, bytes]) -> list[dict]:
    return [
        {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, data in sorted(files.items())
    ]


def tar_gz(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_upload(files: Mapping[str, bytes], *, omit: Iterable[str] = ()) -> Upload:
    """An upload of ``files``; paths in ``omit`` are listed but not sent (the server has them)."""
    skip = set(omit)
    sent = {path: data for path, data in files.items() if path not in skip}
    return Upload(manifest=json.dumps(manifest_of(files)), archive=io.BytesIO(tar_gz(sent)))
