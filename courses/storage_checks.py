"""Storage checks and garbage collection: is every referenced blob there and intact, and
which bytes and rows does nothing reference any more.

``verify_storage`` reads; ``gc_blobs`` deletes unreferenced blobs (row and bytes) and stale
upload temporary files older than a grace period. ``gc_guard`` is the lock that keeps a
collection and an upload that references existing bytes from crossing: uploads hold it
shared while they record a bundle, a collection holds it exclusively while it deletes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from . import blobstore
from .exceptions import Unavailable
from .models import Blob, BundleEntry, blob_storage_name

Progress = Callable[[str], None]
# Arbitrary constant naming the collection lock among PostgreSQL advisory locks.
GC_LOCK_KEY = 7_307_211_042
DEFAULT_GRACE = dt.timedelta(hours=24)
BATCH = 100
GC_LOCK_WAIT_SECONDS = 600
IO_THREADS = 8


@contextmanager
def gc_guard(*, exclusive: bool = False) -> Iterator[None]:
    """Inside a transaction: hold the collection lock (PostgreSQL advisory, transaction-scoped).

    Uploads and backups hold it shared; a collection takes it exclusively but only by trying
    (never queueing: a queued exclusive request would hold up every upload behind it while a
    long backup runs). SQLite needs nothing: its write transactions run one at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if not exclusive:
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [GC_LOCK_KEY])
            else:
                deadline = time.monotonic() + GC_LOCK_WAIT_SECONDS
                while True:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [GC_LOCK_KEY])
                    if cursor.fetchone()[0]:
                        break
                    if time.monotonic() > deadline:
                        raise Unavailable(
                            "A backup or uploads held the storage lock for "
                            f"{GC_LOCK_WAIT_SECONDS} seconds; run gc_blobs again later."
                        )
                    time.sleep(0.2)
    yield


def io_threads(storage: object) -> int:
    """How many blobs to read or write at once: several for an object store, one on disk."""
    return 1 if blobstore.is_local(storage) else IO_THREADS  # type: ignore[arg-type]


def _quiet(_: str) -> None:
    pass


def hash_blob(sha256: str) -> tuple[str, int]:
    """The SHA-256 and size of a stored blob's bytes, read from storage."""
    digest = hashlib.sha256()
    size = 0
    for chunk in blobstore.iter_blob(sha256):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class StorageReport:
    """What ``verify_storage`` found. Only ``missing`` and ``corrupt`` are damage."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    # (sha256, what is wrong)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    # Bytes in storage without a Blob row (e.g. left by an upload that failed).
    orphan_files: list[str] = field(default_factory=list)
    # Blob rows that no bundle references (e.g. after a re-release).
    unreferenced_rows: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def verify_storage(*, quick: bool = False, progress: Progress = _quiet) -> StorageReport:
    """Check every referenced blob: present, and (unless ``quick``: size only) the SHA-256 of
    its bytes equal to its name. Also list orphan files and unreferenced rows."""
    report = StorageReport()
    referenced = sorted(set(BundleEntry.objects.values_list("blob_id", flat=True)))
    sizes = dict(Blob.objects.values_list("sha256", "size"))
    storage = blobstore.get_storage()
    total = len(referenced)
    progress(f"Checking {total} referenced blob(s){' (sizes only)' if quick else ''}...")

    def check(sha: str) -> tuple[str, str | None]:
        """(sha, None) when intact, else what is wrong ("missing" or a sentence)."""
        if not blobstore.exists(sha):
            return sha, "missing"
        if quick:
            size = storage.size(blob_storage_name(sha))
            if size != sizes[sha]:
                return sha, f"{size} bytes, the database says {sizes[sha]}"
            return sha, None
        actual, size = hash_blob(sha)
        return sha, None if actual == sha else f"its {size} bytes hash to {actual}"

    # Object stores answer one request at a time per connection: read several at once.
    with ThreadPoolExecutor(max_workers=io_threads(storage)) as pool:
        for number, (sha, problem) in enumerate(pool.map(check, referenced), start=1):
            report.checked += 1
            if problem == "missing":
                report.missing.append(sha)
            elif problem is not None:
                report.corrupt.append((sha, problem))
            if number % 1000 == 0:
                progress(f"  {number}/{total} checked")
    stored = set(blobstore.iter_stored_shas())
    report.orphan_files = sorted(stored - sizes.keys())
    report.unreferenced_rows = sorted(sizes.keys() - set(referenced))
    return report


@dataclass
class GcReport:
    """What ``gc_blobs`` deleted (or, with ``dry_run``, would delete)."""

    rows: list[str] = field(default_factory=list)  # unreferenced blobs: row and bytes
    files: list[str] = field(default_factory=list)  # orphan bytes without a row
    temp_files: list[str] = field(default_factory=list)  # stale upload temporary files
    bytes_freed: int = 0
    kept_recent: int = 0  # candidates younger than the grace period
    dry_run: bool = False


def _modified(name: str) -> dt.datetime | None:
    """When a stored file was last written, or None when it is gone."""
    storage = blobstore.get_storage()
    if not storage.exists(name):
        return None
    return storage.get_modified_time(name)


def _size(name: str) -> int:
    try:
        return blobstore.get_storage().size(name)
    except Exception:  # gone meanwhile: nothing to free
        return 0


def gc_blobs(
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: Progress = _quiet,
) -> GcReport:
    """Delete blobs no bundle references and whose row and bytes are older than ``grace``,
    orphan bytes older than ``grace``, and upload temporary files older than ``grace``."""
    report = GcReport(dry_run=dry_run)
    cutoff = timezone.now() - grace

    def old_enough(sha: str) -> bool:
        modified = _modified(blob_storage_name(sha))
        return modified is None or modified < cutoff

    candidates = list(
        Blob.objects.filter(created_at__lt=cutoff)
        .exclude(sha256__in=BundleEntry.objects.values("blob_id"))
        .order_by("sha256")
        .values_list("sha256", flat=True)
    )
    report.kept_recent += (
        Blob.objects.filter(created_at__gte=cutoff)
        .exclude(sha256__in=BundleEntry.objects.values("blob_id"))
        .count()
    )
    progress(f"{len(candidates)} unreferenced blob(s) older than the grace period.")
    for start in range(0, len(candidates), BATCH):
        batch = candidates[start : start + BATCH]
        with transaction.atomic():
            with gc_guard(exclusive=True):
                # A fresh read under the lock: an upload that committed meanwhile wins.
                still = set(
                    Blob.objects.filter(sha256__in=batch)
                    .exclude(sha256__in=BundleEntry.objects.values("blob_id"))
                    .values_list("sha256", flat=True)
                )
                doomed = []
                for sha in sorted(still):
                    if old_enough(sha):
                        doomed.append(sha)
                    else:
                        report.kept_recent += 1
                for sha in doomed:
                    report.bytes_freed += _size(blob_storage_name(sha))
                    if not dry_run:
                        blobstore.delete(sha)
                report.rows.extend(doomed)
                if not dry_run:
                    Blob.objects.filter(sha256__in=doomed).delete()
        progress(f"  {min(start + BATCH, len(candidates))}/{len(candidates)} considered")
    known = set(Blob.objects.values_list("sha256", flat=True))
    orphans = [sha for sha in blobstore.iter_stored_shas() if sha not in known]
    progress(f"{len(orphans)} orphan file(s) without a database row.")
    for sha in orphans:
        if not old_enough(sha):
            report.kept_recent += 1
            continue
        with transaction.atomic(), gc_guard(exclusive=True):
            if Blob.objects.filter(sha256=sha).exists():
                continue  # an upload recorded it meanwhile
            report.bytes_freed += _size(blob_storage_name(sha))
            if not dry_run:
                blobstore.delete(sha)
            report.files.append(sha)
    report.temp_files = _stale_temp_files(cutoff, dry_run=dry_run)
    return report


def _stale_temp_files(cutoff: dt.datetime, *, dry_run: bool) -> list[str]:
    """Upload temporary files (``tmp/`` of local storage) left by a killed process."""
    storage = blobstore.get_storage()
    if not blobstore.is_local(storage):
        return []
    directory = Path(storage.location) / "tmp"
    if not directory.is_dir():
        return []
    limit = cutoff.timestamp()
    stale = []
    for path in sorted(directory.iterdir()):
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                stale.append(f"tmp/{path.name}")
                if not dry_run:
                    path.unlink()
        except FileNotFoundError:  # finished meanwhile
            continue
    return stale


def parse_age(text: str) -> dt.timedelta:
    """``30m``, ``24h``, ``7d``, ``90s`` or a number of seconds, as a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in units else "s"
    number = value[:-1] if value[-1:] in units else value
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an age: use a number with s, m, h or d (e.g. 24h)."
        ) from None
    if amount < 0:
        raise ValueError(f"{text!r} is not an age: it is negative.")
    return dt.timedelta(seconds=amount * units[unit])
