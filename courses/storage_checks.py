"""Storage checks and garbage collection: is every referenced blob there and intact, and
which bytes and rows does nothing reference any more.

``verify_storage`` reads; ``gc_blobs`` deletes ownerless bundles, unreferenced blobs (rows
first, then bytes) and stale upload temporary files older than a grace period.

The collection lock (``courses/storage_locks.py``) keeps a collection, uploads and backups
from crossing. The invariant gc keeps: a blob row exists only while its bytes are at their
name. Rows are deleted and committed first; bytes are then removed one by one under the
exclusive lock, each only if no row came back meanwhile (an upload records a row again only
after seeing the bytes under the shared lock). A removal is a move to ``gc-quarantine/``
bracketed by two database round trips: if the second fails (the connection and with it the
lock were lost, so an upload may have recorded the blob meanwhile), the bytes are moved
back. Leftovers of a killed collection are put back (row present) or deleted (no row) by the
next one. Collections run one at a time and mark themselves running, so an upload asks
storage about its bytes only if one may have run since it began (``collection_epoch.py``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from . import blobstore
from .collection_epoch import collection_run
from .models import Assignment, Blob, Bundle, BundleEntry, Feedback, Submission, blob_storage_name
from .progress import Progress, quiet
from .storage_locks import _collecting, gc_guard, io_threads

DEFAULT_GRACE = dt.timedelta(hours=24)
# Unreferenced blobs examined per turn of the exclusive lock: uploads wait while it is held.
BLOBS_PER_LOCK = 100


def hash_blob(sha256: str) -> tuple[str, int]:
    """The SHA-256 and size of a stored blob's bytes, read from storage."""
    with blobstore.open_blob(sha256) as handle:
        return blobstore.hash_copy(handle)


def ownerless_bundles() -> QuerySet[Bundle]:
    """Bundles that no assignment (as its release), submission or feedback holds."""
    return Bundle.objects.exclude(
        Exists(Assignment.objects.filter(release=OuterRef("pk")))
        | Exists(Submission.objects.filter(bundle=OuterRef("pk")))
        | Exists(Feedback.objects.filter(bundle=OuterRef("pk")))
    )


@dataclass
class StorageReport:
    """What ``verify_storage`` found. ``missing``, ``corrupt`` and ``wrong_sizes`` are
    damage; ``repaired`` lists the rows a repair corrected (no longer damage)."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    # (sha256, what is wrong)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    # (sha256, recorded size, size of its bytes): intact bytes, a row whose size lies.
    wrong_sizes: list[tuple[str, int, int]] = field(default_factory=list)
    repaired: list[tuple[str, int, int]] = field(default_factory=list)
    # Bytes in storage without a Blob row (e.g. left by an upload that failed).
    orphan_files: list[str] = field(default_factory=list)
    # Blob rows that no bundle references (e.g. after gc_blobs removed a replaced release).
    unreferenced_rows: list[str] = field(default_factory=list)
    # Bundles no release, submission or feedback holds (gc_blobs removes them).
    ownerless_bundles: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt and not self.wrong_sizes


def verify_storage(
    *, quick: bool = False, repair: bool = False, progress: Progress = quiet
) -> StorageReport:
    """Check every referenced blob: present, and (unless ``quick``: size only) the SHA-256 of
    its bytes equal to its name and their size equal to its row's. Also list orphan files,
    unreferenced rows and ownerless bundles.

    The scan runs while the service works: a blob found missing is checked again under the
    collection lock, and reported only if it is still referenced and still missing (a
    collection may have removed it after the scan's list was read, once nothing referenced it).

    With ``repair`` (full check only), rows whose bytes are intact but whose recorded size
    is not theirs take the size of their bytes, and so do the totals of bundles listing them.
    Damaged or missing bytes are never "repaired": they come back from a backup.
    """
    if repair and quick:
        raise ValueError("A repair needs the full check: it trusts only bytes it has hashed.")
    report = StorageReport()
    referenced = dict(
        Blob.objects.filter(Exists(BundleEntry.objects.filter(blob=OuterRef("pk"))))
        .order_by("sha256")
        .values_list("sha256", "size")
    )
    storage = blobstore.get_storage()
    total = len(referenced)
    progress(f"Checking {total} referenced blob(s){' (sizes only)' if quick else ''}...")

    def check(sha: str) -> tuple[str, str | int | None]:
        """(sha, None) when intact; else what is wrong: "missing", a sentence, or the size
        of intact bytes whose row records another."""
        try:
            if quick:
                size = storage.size(blob_storage_name(sha))
                if size != referenced[sha]:
                    return sha, f"{size} bytes, the database says {referenced[sha]}"
                return sha, None
            actual, size = hash_blob(sha)
        except FileNotFoundError:
            return sha, "missing"
        if actual != sha:
            return sha, f"its {size} bytes hash to {actual}"
        return sha, None if size == referenced[sha] else size

    suspects: list[str] = []
    # Object stores answer one request at a time per connection: read several at once.
    with ThreadPoolExecutor(max_workers=io_threads(storage)) as pool:
        for number, (sha, problem) in enumerate(pool.map(check, referenced), start=1):
            report.checked += 1
            if problem == "missing":
                suspects.append(sha)
            elif isinstance(problem, int):
                report.wrong_sizes.append((sha, referenced[sha], problem))
            elif problem is not None:
                report.corrupt.append((sha, problem))
            if number % 1000 == 0:
                progress(f"  {number}/{total} checked")
    report.missing = _still_missing(suspects)
    known = set(Blob.objects.values_list("sha256", flat=True))
    stored = set(blobstore.iter_stored_shas())
    report.orphan_files = sorted(stored - known)
    report.unreferenced_rows = sorted(
        Blob.objects.exclude(Exists(BundleEntry.objects.filter(blob=OuterRef("pk")))).values_list(
            "sha256", flat=True
        )
    )
    report.ownerless_bundles = sorted(ownerless_bundles().values_list("pk", flat=True))
    if repair and report.wrong_sizes:
        with transaction.atomic():
            corrected = set(correct_blob_sizes({sha: size for sha, _, size in report.wrong_sizes}))
        report.repaired = [item for item in report.wrong_sizes if item[0] in corrected]
        report.wrong_sizes = [item for item in report.wrong_sizes if item[0] not in corrected]
    return report


def _still_missing(suspects: list[str]) -> list[str]:
    """Of blobs found missing, those still referenced and still missing under the lock."""
    if not suspects:
        return []
    with transaction.atomic(), gc_guard():
        referenced = set(
            BundleEntry.objects.filter(blob_id__in=suspects).values_list("blob_id", flat=True)
        )
        return sorted(sha for sha in referenced if not blobstore.exists(sha))


def correct_blob_sizes(measured: Mapping[str, int]) -> list[str]:
    """Give blob rows the sizes measured on their bytes, and the bundles that list them the
    totals that follow; returns the hashes whose rows changed. Call inside a transaction."""
    wrong = [
        sha
        for sha, recorded in Blob.objects.select_for_update()
        .filter(sha256__in=list(measured))
        .values_list("sha256", "size")
        if recorded != measured[sha]
    ]
    for sha in wrong:
        Blob.objects.filter(sha256=sha).update(size=measured[sha])
    bundles = Bundle.objects.filter(entries__blob_id__in=wrong).distinct().values_list("pk")
    for (pk,) in bundles:
        total = BundleEntry.objects.filter(bundle_id=pk).aggregate(total=Sum("blob__size"))
        Bundle.objects.filter(pk=pk).update(total_size=total["total"] or 0)
    return wrong


@dataclass
class GcReport:
    """What ``gc_blobs`` deleted (or, with ``dry_run``, would delete)."""

    rows: list[str] = field(default_factory=list)  # unreferenced blobs: row and bytes
    files: list[str] = field(default_factory=list)  # orphan bytes without a row
    temp_files: list[str] = field(default_factory=list)  # stale upload temporary files
    bundles: list[int] = field(default_factory=list)  # ownerless bundles
    restored: list[str] = field(default_factory=list)  # put back from a killed collection
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


def _alive() -> None:
    """One database round trip: it succeeds only while this transaction (and so the
    collection lock it holds) is alive."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _remove_bytes(sha: str) -> bool:
    """Under the exclusive lock: remove a blob's bytes unless a row names it again.
    True when removed (or already gone)."""
    if Blob.objects.filter(sha256=sha).exists():
        return False  # an upload recorded it meanwhile, after seeing its bytes
    if not blobstore.quarantine(sha):
        return True
    try:
        _alive()
    except BaseException:
        # The lock may have gone with the connection while the bytes moved, and an upload
        # may have recorded them meanwhile: put them back and stop.
        blobstore.unquarantine(sha)
        raise
    blobstore.drop_quarantined(sha)
    return True


def _settle_quarantine(report: GcReport, *, dry_run: bool) -> None:
    """Bytes a killed collection left in quarantine: back to their name if a row names
    them, else removed."""
    leftovers = list(blobstore.iter_quarantined())
    if not leftovers or dry_run:
        return
    with _collecting():
        rows = set(Blob.objects.filter(sha256__in=leftovers).values_list("sha256", flat=True))
        for sha in leftovers:
            if sha in rows:
                blobstore.unquarantine(sha)
                report.restored.append(sha)
            else:
                blobstore.drop_quarantined(sha)


def _collect_bundles(now: dt.datetime, cutoff: dt.datetime, report: GcReport) -> None:
    """Ownerless bundles: stamped when first seen, deleted once ownerless past the grace.

    A bundle gets its owner in the transaction that creates it and never another, so a
    committed ownerless bundle stays ownerless: no lock is needed.
    """
    ownerless = ownerless_bundles()
    if not report.dry_run:
        ownerless.filter(ownerless_since__isnull=True).update(ownerless_since=now)
        doomed = ownerless.filter(ownerless_since__lte=cutoff)
    else:
        stamped = Q(ownerless_since__isnull=True) if now <= cutoff else Q(pk__in=[])
        doomed = ownerless.filter(Q(ownerless_since__lte=cutoff) | stamped)
    report.bundles = sorted(doomed.values_list("pk", flat=True))
    report.kept_recent += ownerless.count() - len(report.bundles)
    if not report.dry_run and report.bundles:
        Bundle.objects.filter(pk__in=report.bundles).delete()


def gc_blobs(
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: Progress = quiet,
) -> GcReport:
    """Delete ownerless bundles, blobs no bundle references, orphan bytes and upload
    temporary files, each only when older than ``grace``.

    One collection runs at a time, recorded as running from before its first deletion to
    after its last, so uploads that began before it ended confirm their bytes
    (``courses/collection_epoch.py``); a dry run deletes and records nothing."""
    with nullcontext() if dry_run else collection_run():
        return _collect(grace=grace, dry_run=dry_run, progress=progress)


def _collect(*, grace: dt.timedelta, dry_run: bool, progress: Progress) -> GcReport:
    report = GcReport(dry_run=dry_run)
    now = timezone.now()
    cutoff = now - grace

    def old_enough(sha: str) -> bool:
        modified = _modified(blob_storage_name(sha))
        return modified is None or modified < cutoff

    _settle_quarantine(report, dry_run=dry_run)
    _collect_bundles(now, cutoff, report)
    if report.bundles:
        progress(
            f"{len(report.bundles)} ownerless bundle(s) {'would go' if dry_run else 'deleted'}."
        )
    unreferenced = Blob.objects.exclude(Exists(BundleEntry.objects.filter(blob=OuterRef("pk"))))
    candidates = list(
        unreferenced.filter(created_at__lt=cutoff)
        .order_by("sha256")
        .values_list("sha256", flat=True)
    )
    report.kept_recent += unreferenced.filter(created_at__gte=cutoff).count()
    progress(f"{len(candidates)} unreferenced blob(s) older than the grace period.")
    for start in range(0, len(candidates), BLOBS_PER_LOCK):
        batch = candidates[start : start + BLOBS_PER_LOCK]
        # Rows first, committed: from then on no row names these bytes, and an upload that
        # wants them again records a row only after finding the bytes under the lock.
        with _collecting():
            # A fresh read under the lock: an upload that committed meanwhile wins.
            still = sorted(unreferenced.filter(sha256__in=batch).values_list("sha256", flat=True))
            doomed = []
            for sha in still:
                if old_enough(sha):
                    doomed.append(sha)
                else:
                    report.kept_recent += 1
            sizes = {sha: _size(blob_storage_name(sha)) for sha in doomed}
            if not dry_run:
                Blob.objects.filter(sha256__in=doomed).delete()
        if not dry_run and doomed:
            with _collecting():
                for sha in doomed:
                    if _remove_bytes(sha):
                        report.rows.append(sha)
                        report.bytes_freed += sizes[sha]
        elif dry_run:
            report.rows.extend(doomed)
            report.bytes_freed += sum(sizes.values())
        progress(f"  {min(start + BLOBS_PER_LOCK, len(candidates))}/{len(candidates)} considered")
    known = set(Blob.objects.values_list("sha256", flat=True))
    orphans = [sha for sha in blobstore.iter_stored_shas() if sha not in known]
    progress(f"{len(orphans)} orphan file(s) without a database row.")
    for sha in orphans:
        if not old_enough(sha):
            report.kept_recent += 1
            continue
        with _collecting():
            size = _size(blob_storage_name(sha))
            if dry_run:
                if Blob.objects.filter(sha256=sha).exists():
                    continue
            elif not _remove_bytes(sha):
                continue  # an upload recorded it meanwhile
            report.bytes_freed += size
            report.files.append(sha)
    report.temp_files = _stale_temp_files(cutoff, dry_run=dry_run)
    return report


def _stale_temp_files(cutoff: dt.datetime, *, dry_run: bool) -> list[str]:
    """Upload temporary files left by a killed process (local ``tmp/`` or, with an object
    store, the staging directory under ``EXCHANGE_UPLOAD_TEMP_DIR``). A file an upload still
    holds (it keeps an ``flock`` on it) is spared whatever its age."""
    directory = blobstore.staging_dir()
    if not directory.is_dir():
        return []
    limit = cutoff.timestamp()
    stale = []
    for path in sorted(directory.iterdir()):
        try:
            if not path.is_file() or path.stat().st_mtime >= limit:
                continue
            with open(path, "rb") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # an upload in progress holds it
                stale.append(f"{blobstore.staging_label()}/{path.name}")
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
