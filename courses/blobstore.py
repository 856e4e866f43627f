"""Content-addressed file bytes in Django's storage backend (local disk or S3).

Bytes are hashed while they stream to a temporary file (bounded memory), checked against
what the manifest promised, then put under ``blobs/<aa>/<sha256>``. The database row of a
blob is written later, in the transaction that records its bundle: bytes stored by a
request that then fails are orphans that ``verify_storage`` lists and ``gc_blobs`` removes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from .exceptions import BadArchive
from .filemodes import PRIVATE_FILE, make_private_dir
from .models import blob_storage_name, preview_storage_names

CHUNK_SIZE = 1024 * 1024


def get_storage() -> Storage:
    return storages["default"]


def is_local(storage: Storage | None = None) -> bool:
    return isinstance(storage or get_storage(), FileSystemStorage)


@dataclass(frozen=True)
class StagedFile:
    """Bytes hashed into a temporary file, not yet in storage."""

    temp_path: Path
    sha256: str
    size: int


def _temp_dir(storage: Storage) -> str | None:
    if isinstance(storage, FileSystemStorage):
        # Same filesystem as the blobs, so putting a file in place is an atomic rename.
        directory = Path(storage.location) / "tmp"
        make_private_dir(directory)
        return str(directory)
    return settings.FILE_UPLOAD_TEMP_DIR


def stage(stream: IO[bytes]) -> StagedFile:
    """Copy a stream to a temporary file, hashing it on the way."""
    storage = get_storage()
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="upload-", dir=_temp_dir(storage))
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return StagedFile(temp_path=Path(name), sha256=digest.hexdigest(), size=size)


def discard(staged: StagedFile) -> None:
    staged.temp_path.unlink(missing_ok=True)


def put(staged: StagedFile) -> None:
    """Move staged bytes to their blob name; a blob already there is kept as it is."""
    storage = get_storage()
    name = blob_storage_name(staged.sha256)
    try:
        if isinstance(storage, FileSystemStorage):
            target = Path(storage.path(name))
            if target.exists():
                # Fresh again, so a garbage collection running now (which spares files newer
                # than its grace period) cannot remove bytes this upload is about to reference.
                os.utime(target)
                return
            make_private_dir(target.parent)
            os.chmod(staged.temp_path, PRIVATE_FILE)
            os.replace(staged.temp_path, target)
            return
        if storage.exists(name):
            return
        with open(staged.temp_path, "rb") as handle:
            storage.save(name, File(handle))
    finally:
        discard(staged)


def store_stream(stream: IO[bytes], *, path: str, size: int, sha256: str) -> None:
    """Store a stream that must have the given size and hash; BadArchive if it does not."""
    staged = stage(stream)
    if staged.sha256 != sha256 or staged.size != size:
        discard(staged)
        raise BadArchive(
            f"File {path!r} does not match the manifest: it has {staged.size} bytes and "
            f"SHA-256 {staged.sha256}, the manifest says {size} bytes and {sha256}."
        )
    put(staged)


def store_bytes(data: bytes) -> tuple[str, int]:
    """Store small bytes (tests, restore); returns (sha256, size)."""
    import io

    staged = stage(io.BytesIO(data))
    sha, size = staged.sha256, staged.size
    put(staged)
    return sha, size


def open_blob(sha256: str) -> IO[bytes]:
    return get_storage().open(blob_storage_name(sha256), "rb")


def iter_blob(sha256: str) -> Iterator[bytes]:
    with open_blob(sha256) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def exists(sha256: str) -> bool:
    return get_storage().exists(blob_storage_name(sha256))


def delete(sha256: str) -> None:
    storage = get_storage()
    storage.delete(blob_storage_name(sha256))
    # A notebook's rendered preview holds the same content: it goes with the bytes.
    for name in preview_storage_names(sha256):
        storage.delete(name)


def iter_stored_shas() -> Iterator[str]:
    """Every blob name present in storage (for verify and gc)."""
    storage = get_storage()
    try:
        prefixes, _ = storage.listdir("blobs")
    except FileNotFoundError:
        return
    for prefix in sorted(prefixes):
        _, files = storage.listdir(f"blobs/{prefix}")
        yield from sorted(files)
