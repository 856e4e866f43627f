"""Content-addressed file bytes in Django's storage backend (local disk or S3).

Bytes are hashed while they stream to a temporary file (bounded memory), checked against
what the manifest promised, then put under ``blobs/<aa>/<sha256>``. The database row of a
blob is written later, in the transaction that records its bundle: an upload puts its bytes
only once its whole archive has been checked, and bytes stored by a request that fails after
that (a failed put, a killed process) are orphans that ``verify_storage`` lists and
``gc_blobs`` removes.

With an object store, an upload's small files (up to ``MEMORY_STAGE_BYTES``, at most
``MEMORY_STAGE_BUDGET`` bytes of them per upload) are staged in memory instead: no file is
made for them, and nothing is left behind if the process is killed.

Temporary files live in one staging directory (``tmp/`` of local storage, or
``<EXCHANGE_UPLOAD_TEMP_DIR>/exchange-staging`` with an object store) where ``gc_blobs``
finds those a killed process left. An upload holds an ``flock`` on each of its temporary
files until it is moved into place or discarded, so a collection never takes one in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from . import blob_cache
from .exceptions import BadArchive
from .filemodes import PRIVATE_FILE, make_private_dir
from .models import blob_storage_name, preview_storage_names

CHUNK_SIZE = 1024 * 1024
QUARANTINE = "gc-quarantine"
# An object store answers one request at a time per connection: an upload's blobs are put
# (and checked) this many at a time.
IO_THREADS = 8
# Blobs up to this size go to an object store in one plain PUT (see ``_s3_put``).
S3_SINGLE_PUT_BYTES = 1024 * 1024
# With an object store, an upload's files up to this size are staged in memory, up to the
# budget per upload (an archive may hold thousands of small files); the others on disk.
# Making a file and reading it back cost more than the bytes (bench/RESULTS.md).
MEMORY_STAGE_BYTES = S3_SINGLE_PUT_BYTES
MEMORY_STAGE_BUDGET = 8 * 1024 * 1024


def get_storage() -> Storage:
    return storages["default"]


def is_local(storage: Storage | None = None) -> bool:
    return isinstance(storage or get_storage(), FileSystemStorage)


@dataclass
class StagedFile:
    """Bytes hashed into a temporary file (``temp_path``) or kept in memory (``data``), not
    yet in storage. ``lock_fd`` holds the file's ``flock`` (so ``gc_blobs`` leaves it
    alone) until ``put`` or ``discard``."""

    temp_path: Path | None
    sha256: str
    size: int
    lock_fd: int | None = field(default=None, repr=False, compare=False)
    data: bytes | None = field(default=None, repr=False, compare=False)

    def open(self) -> IO[bytes]:
        """The staged bytes from their start."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.temp_path is not None
        return open(self.temp_path, "rb")

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def staging_dir(storage: Storage | None = None) -> Path:
    """Where uploads spool their files while they are checked."""
    storage = storage or get_storage()
    if isinstance(storage, FileSystemStorage):
        # Same filesystem as the blobs, so putting a file in place is an atomic rename.
        return Path(storage.location) / "tmp"
    return Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir()) / "exchange-staging"


def staging_label() -> str:
    """How ``gc_blobs`` names the staging directory in what it prints."""
    return "tmp" if is_local() else str(staging_dir())


class MemoryBudget:
    """How many more bytes one upload may stage in memory (``memory_budget``)."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, size: int) -> bool:
        """Whether a file of ``size`` bytes is staged in memory (counted if so)."""
        if size > MEMORY_STAGE_BYTES or size > self.left:
            return False
        self.left -= size
        return True


def memory_budget() -> MemoryBudget | None:
    """An upload's budget for staging small files in memory: with an object store only
    (on local disk a staged file becomes the blob by a rename)."""
    return None if is_local() else MemoryBudget(MEMORY_STAGE_BUDGET)


def stage(stream: IO[bytes]) -> StagedFile:
    """Copy a stream to a temporary file, hashing it on the way."""
    directory = staging_dir()
    make_private_dir(directory)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    # Held until the file is put in place or discarded: gc_blobs spares locked files.
    lock_fd = os.dup(fd)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        with os.fdopen(fd, "wb") as out:
            sha256, size = hash_copy(stream, out)
    except BaseException:
        os.unlink(name)
        os.close(lock_fd)
        raise
    return StagedFile(temp_path=Path(name), sha256=sha256, size=size, lock_fd=lock_fd)


def hash_copy(source: IO[bytes], target: IO[bytes] | None = None) -> tuple[str, int]:
    """Read ``source`` to its end in chunks (bounded memory), writing each to ``target``
    when one is given; returns the bytes' SHA-256 (hex) and size."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return digest.hexdigest(), size


def stage_in_memory(stream: IO[bytes], size: int) -> StagedFile:
    """Read a stream that should hold ``size`` bytes into memory, hashing it: at most one
    byte more is read, so a longer stream shows in the size (``stage_checked`` refuses it)."""
    chunks = []
    left = size + 1
    while left > 0 and (chunk := stream.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    return StagedFile(
        temp_path=None, sha256=hashlib.sha256(data).hexdigest(), size=len(data), data=data
    )


def discard(staged: StagedFile) -> None:
    if staged.temp_path is not None:
        staged.temp_path.unlink(missing_ok=True)
    staged.data = None
    staged.release()


def put(staged: StagedFile) -> None:
    """Move staged bytes to their blob name; a blob already there is kept as it is."""
    storage = get_storage()
    name = blob_storage_name(staged.sha256)
    try:
        if isinstance(storage, FileSystemStorage) and staged.temp_path is not None:
            target = Path(storage.path(name))
            if target.exists():
                # Fresh again, so a garbage collection running now (which spares files newer
                # than its grace period) leaves bytes this upload is about to reference;
                # recording the bundle checks again under the collection lock.
                try:
                    os.utime(target)
                    return
                except FileNotFoundError:
                    pass  # collected just now: put these bytes in its place
            make_private_dir(target.parent)
            os.chmod(staged.temp_path, PRIVATE_FILE)
            os.replace(staged.temp_path, target)
            return
        if storage.exists(name):
            return
        with staged.open() as handle:
            storage.save(name, File(handle))
    finally:
        discard(staged)


def stage_checked(
    stream: IO[bytes], *, path: str, size: int, sha256: str, memory: MemoryBudget | None = None
) -> StagedFile:
    """Stage a stream that must have the given size and hash; BadArchive if it does not.
    In memory if ``memory`` has room for ``size`` bytes."""
    in_memory = memory is not None and memory.take(size)
    staged = stage_in_memory(stream, size) if in_memory else stage(stream)
    if staged.sha256 != sha256 or staged.size != size:
        discard(staged)
        raise BadArchive(
            f"File {path!r} does not match the manifest: it has {staged.size} bytes and "
            f"SHA-256 {staged.sha256}, the manifest says {size} bytes and {sha256}."
        )
    return staged


def store_stream(stream: IO[bytes], *, path: str, size: int, sha256: str) -> int:
    """Store a stream that must have the given size and hash; BadArchive if it does not.
    Returns the size measured on the bytes."""
    staged = stage_checked(stream, path=path, size=size, sha256=sha256)
    put(staged)
    return staged.size


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _io_pool() -> ThreadPoolExecutor:
    """The process's threads for object store round trips. They (and the connection each
    thread's storage client keeps) live as long as the process, not one request; a forked
    worker makes its own."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="blobstore")
            _pool_pid = os.getpid()
        return _pool


class Putter:
    """Puts an upload's checked, staged files in storage: at once on local disk (a
    rename), on an object store several at a time (with ``keep_copies``, the small ones'
    bytes are also kept on the server's disk, ``blob_cache``). ``wait`` returns once all
    are in place and raises the first failure. Leaving the ``with`` block on an error waits
    for the puts handed over: their bytes stay as orphans for ``gc_blobs``, as a failed
    upload's always did, and no temporary file is left."""

    def __init__(self, *, keep_copies: bool = False) -> None:
        self._storage = get_storage()
        self._keep_copies = keep_copies
        # The calling thread's client (boto3 clients are thread-safe, its resource is not):
        # the I/O threads share its connection pool instead of each opening their own.
        self._client = _s3_client(self._storage)
        self._pending: list[tuple[Future[None], StagedFile]] = []

    def __enter__(self) -> Putter:
        return self

    def add(self, staged: StagedFile) -> None:
        if self._client is None:
            put(staged)
        else:
            future = _io_pool().submit(
                _s3_put, self._storage, self._client, staged, keep_copy=self._keep_copies
            )
            self._pending.append((future, staged))

    def wait(self) -> None:
        for future, _ in self._pending:
            future.result()

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            return
        # Each put removes its temporary file, failed or not; the files checked before the
        # failure are stored, as when they were put one after another (orphans for gc_blobs).
        for future, _ in self._pending:
            future.exception()  # waits; the error that ends the upload is raised already


def store_bytes(data: bytes) -> tuple[str, int]:
    """Store small bytes (tests, restore); returns (sha256, size)."""
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


def read_small(shas: Iterable[str], *, keep: bool = True) -> dict[str, bytes]:
    """The whole bytes of each blob (callers keep to small ones), by hash; a blob that
    cannot be read is left out (its caller offers it another way). With an object store,
    the server's copies first (``blob_cache``), then one plain GET per other blob, several
    at once, whose answers are copied in turn (unless not to ``keep``: a collect's
    submissions, read once, would push out the copies that are read again)."""
    shas = list(dict.fromkeys(shas))
    storage = get_storage()
    client = _s3_client(storage)
    if client is not None:
        from .s3_requests import read

        found = {sha: data for sha in shas if (data := blob_cache.get(sha)) is not None}
        asked = [sha for sha in shas if sha not in found]
        got = _io_pool().map(lambda sha: read(storage, client, name=blob_storage_name(sha)), asked)
        for sha, data in zip(asked, got, strict=True):
            if data is not None:
                found[sha] = data
                if keep:
                    blob_cache.add(sha, data)
        return {sha: found[sha] for sha in shas if sha in found}
    found: dict[str, bytes] = {}
    for sha256 in shas:
        try:
            with open_blob(sha256) as handle:
                found[sha256] = handle.read()
        except OSError:
            pass
    return found


def exists(sha256: str) -> bool:
    storage = get_storage()
    client = _s3_client(storage)
    if client is None:
        return storage.exists(blob_storage_name(sha256))
    return _s3_exists(storage, client, sha256)


def _s3_client(storage: Storage) -> Any:
    """The boto3 client of an S3 storage (this thread's), or None for any other storage."""
    if is_local(storage) or not hasattr(storage, "bucket_name"):
        return None
    return storage.connection.meta.client  # type: ignore[attr-defined]


def _s3_exists(storage: Storage, client: Any, sha256: str) -> bool:
    """``storage.exists`` through a given client (any thread), one plain HEAD."""
    # Imported only with an object store configured (a local server never loads boto).
    from . import s3_requests

    return s3_requests.exists(storage, client, name=blob_storage_name(sha256))


def _multipart_threshold(storage: Storage) -> int:
    """The size above which the storage's transfers go in parts (s3transfer's setting)."""
    config = getattr(storage, "transfer_config", None)
    return int(getattr(config, "multipart_threshold", S3_SINGLE_PUT_BYTES))


def _s3_put(storage: Storage, client: Any, staged: StagedFile, *, keep_copy: bool = False) -> None:
    """``put`` on an object store through a given client (any thread): the bytes are
    uploaded with the parameters ``storage.save`` would use.

    A small blob is one PUT, whether or not it is there already: the same name always
    holds the same bytes, and asking first (a HEAD) would cost as much as sending them,
    while s3transfer's machinery (and boto3's, see ``s3_requests``) costs more CPU than the
    request. A larger one is asked for first and sent only if it is missing. Up to the
    storage's multipart threshold (8 MiB by default) the PUT is streamed from the staged
    file on the lean path, a quarter of s3transfer's CPU; above it s3transfer sends the
    parts in parallel. ``keep_copy``: a small blob's bytes are also kept on the
    server's disk (``blob_cache``)."""
    from . import s3_requests

    try:
        key = s3_requests.object_key(storage, blob_storage_name(staged.sha256))
        small = staged.size <= S3_SINGLE_PUT_BYTES
        if not small and _s3_exists(storage, client, staged.sha256):
            return
        with staged.open() as handle:
            params = storage._get_write_parameters(key, File(handle))  # type: ignore[attr-defined]
            if small or staged.size <= _multipart_threshold(storage):
                s3_requests.put(
                    storage,
                    client,
                    key=key,
                    body=handle if staged.data is None else staged.data,
                    sha256=staged.sha256,
                    params=params,
                    size=staged.size,
                )
                if keep_copy:  # small ones only (blob_cache's own limit)
                    if staged.temp_path is None:
                        blob_cache.add(staged.sha256, cast(bytes, staged.data))
                    else:
                        blob_cache.add_file(staged.sha256, staged.temp_path, staged.size)
                return
            client.upload_fileobj(
                handle,
                storage.bucket_name,  # type: ignore[attr-defined]
                key,
                ExtraArgs=params,
                Config=storage.transfer_config,  # type: ignore[attr-defined]
            )
    finally:
        discard(staged)


def missing(shas: Iterable[str]) -> list[str]:
    """The hashes among ``shas`` whose bytes are not in storage, in the order given; an
    object store is asked about several at once."""
    shas = list(shas)
    storage = get_storage()
    client = _s3_client(storage)
    if client is None or len(shas) < 2:
        found = [exists(sha) for sha in shas]
    else:
        found = list(_io_pool().map(lambda sha: _s3_exists(storage, client, sha), shas))
    return [sha for sha, present in zip(shas, found, strict=True) if not present]


def delete(sha256: str) -> None:
    storage = get_storage()
    blob_cache.discard(sha256)
    storage.delete(blob_storage_name(sha256))
    # A notebook's rendered preview holds the same content: it goes with the bytes.
    for name in preview_storage_names(sha256):
        storage.delete(name)


def _quarantine_name(sha256: str) -> str:
    return f"{QUARANTINE}/{sha256}"


def _s3_move(storage: Storage, source: str, target: str) -> None:
    """Copy an object inside the bucket (server side), then delete the source."""
    bucket = storage.bucket  # type: ignore[attr-defined]
    key = storage._normalize_name  # type: ignore[attr-defined]
    bucket.copy({"Bucket": bucket.name, "Key": key(source)}, key(target))
    storage.delete(source)


def _move(source: str, target: str) -> bool:
    """Move stored bytes from one name to another; False when the source is gone."""
    storage = get_storage()
    if isinstance(storage, FileSystemStorage):
        destination = Path(storage.path(target))
        make_private_dir(destination.parent)
        try:
            os.replace(storage.path(source), destination)
        except FileNotFoundError:
            return False
        return True
    if not storage.exists(source):
        return False
    _s3_move(storage, source, target)
    return True


def quarantine(sha256: str) -> bool:
    """Move a blob's bytes aside (``gc_blobs``' first step of removing them); False when
    they were not there."""
    blob_cache.discard(sha256)
    return _move(blob_storage_name(sha256), _quarantine_name(sha256))


def unquarantine(sha256: str) -> None:
    """Put bytes moved aside back under their blob name."""
    _move(_quarantine_name(sha256), blob_storage_name(sha256))


def drop_quarantined(sha256: str) -> None:
    """Remove bytes moved aside for good, with the notebook preview rendered from them."""
    storage = get_storage()
    storage.delete(_quarantine_name(sha256))
    for name in preview_storage_names(sha256):
        storage.delete(name)


def iter_quarantined() -> Iterator[str]:
    """Blobs a collection moved aside and did not finish removing (it was killed)."""
    try:
        _, files = get_storage().listdir(QUARANTINE)
    except FileNotFoundError:
        return
    yield from sorted(files)


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
