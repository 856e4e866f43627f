"""Small blobs' bytes kept on the server's own disk when the blobs live in an object store.

With S3 storage each small file a student fetches inline (their feedback or the release's
notebooks, ``?inline=true``) would be one GET to the object store: 1.5-2 ms of the
service's CPU and about 1 ms of SeaweedFS's on the benchmarks' machine
(bench/RESULTS.md), and a round trip to a hosted store. Blobs are named by their SHA-256
and never change, so a copy is never stale: the service keeps the small files of the
releases and feedback it stores, and the small blobs it reads for an inline answer, in a
directory of its own (``<EXCHANGE_UPLOAD_TEMP_DIR>/exchange-blob-cache``, shared by the
workers of one server), and reads them from there first. Submissions are not copied, when
stored or when a collect reads them (``read_small(keep=False)``): each is read once, and a
class's submissions (hundreds of MB) would push out the copies that are read again.

- A copy is served only if its bytes still hash to its name; any other copy is removed
  and the store is asked, so a damaged or altered file on the server's disk never reaches
  a client.
- The directory is kept to about EXCHANGE_BLOB_CACHE_BYTES (0 turns the cache off): at
  its first copy, and whenever it has added an eighth of that since it last looked, a
  process removes the copies used least recently until three quarters are left. With two
  worker processes adding at once, the directory stays within the size, give or take a
  file each.
- Removing a blob (``gc_blobs``) removes this server's copy. Another replica's copy of
  bytes no bundle references any more is never asked for and ages out.
- With local storage there is no cache: the blobs are on this disk already.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from django.conf import settings

from .filemodes import make_private_dir

# Files up to this size are kept; the API sends files up to the same size inline
# (``api.downloads.INLINE_FILE_BYTES``).
MAX_FILE_BYTES = 256 * 1024
# A cache is trimmed down to this share of its size, so trimming is not done at every add.
TRIM_TO = 0.75

_lock = threading.Lock()
# Bytes this process copied since it last trimmed; None until its first copy, which trims
# (a process started by a restart does not know what the directory holds).
_added_since_trim: int | None = None


def directory() -> Path:
    return Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir()) / "exchange-blob-cache"


def _capacity() -> int:
    return settings.EXCHANGE_BLOB_CACHE_BYTES


def _path(sha256: str) -> Path:
    return directory() / sha256


def get(sha256: str) -> bytes | None:
    """The blob's bytes if this server has a sound copy of them, else None."""
    if not _capacity():
        return None
    path = _path(sha256)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # used now: trimmed last
    except OSError:
        pass
    return data


def _new_copy(sha256: str, size: int) -> Path | None:
    """Where a new copy of the blob goes, its directory made; None when none is to be made
    (the cache off, the blob too large, a copy there already). OSError if the directory
    cannot be made."""
    if not _capacity() or size > MAX_FILE_BYTES:
        return None
    target = _path(sha256)
    if target.exists():
        return None
    make_private_dir(target.parent)
    return target


def add(sha256: str, data: bytes) -> None:
    """Keep a copy of a small blob's bytes (they are checked when read back)."""
    try:
        target = _new_copy(sha256, len(data))
        if target is None:
            return
        fd, name = tempfile.mkstemp(prefix=".new-", dir=target.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(name, target)
        except BaseException:
            os.unlink(name)
            raise
    except OSError:
        return  # a full or read-only disk: the store still has the bytes
    _added(len(data))


def add_file(sha256: str, source: Path, size: int) -> None:
    """Keep a copy of a small blob whose bytes are the file ``source`` (an upload's staged
    file, checked against ``sha256``, which its owner removes afterwards): the copy is a
    second name for that file (a hard link), so keeping it makes no new file. Making a file
    costs the kernel far more than naming one (0.3-1 ms against 0.02 ms on the benchmarks'
    machine, bench/RESULTS.md). Where no link can be made (another file system), the bytes
    are written anew."""
    try:
        target = _new_copy(sha256, size)
        if target is None:
            return
        os.link(source, target)
    except FileExistsError:
        return  # kept by another upload at the same moment
    except OSError:
        try:
            data = source.read_bytes()
        except OSError:
            return
        add(sha256, data)
        return
    _added(size)


def _added(size: int) -> None:
    """Count a copy made; trim the directory when an eighth of its size was added since
    this process last looked (or at its first copy)."""
    global _added_since_trim
    with _lock:
        added = size + (_added_since_trim or 0)
        due = _added_since_trim is None or added > _capacity() // 8
        _added_since_trim = 0 if due else added
    if due:
        trim()


def discard(sha256: str) -> None:
    """Forget this server's copy of a blob (its bytes are being removed from the store)."""
    _path(sha256).unlink(missing_ok=True)


def trim() -> int:
    """Remove the least recently used copies while the cache is over TRIM_TO of its size;
    returns the bytes removed."""
    copies: list[tuple[float, int, str]] = []
    total = 0
    try:
        with os.scandir(directory()) as entries:
            for entry in entries:
                try:
                    stat = entry.stat()
                except OSError:
                    continue
                copies.append((stat.st_mtime, stat.st_size, entry.path))
                total += stat.st_size
    except OSError:
        return 0
    keep = int(_capacity() * TRIM_TO)
    removed = 0
    for _, size, path in sorted(copies):
        if total - removed <= keep:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        removed += size
    return removed
