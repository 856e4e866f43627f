"""Uploads and bundles: an uploader's manifest and archive are checked and their bytes
staged in the blob store outside any transaction (``stage_bundle``), then recorded as a
``Bundle`` inside the operation's transaction (``record_bundle``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.db import connection
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from .. import blobstore, collection_epoch
from ..archive import Limits, ManifestEntry, iter_archive, parse_manifest
from ..collection_epoch import Ticket
from ..exceptions import BadArchive, Conflict
from ..models import Blob, Bundle, BundleEntry
from ..prefetched import prefetch_rows
from ..prepared import Many, Prepared
from ..storage_checks import correct_blob_sizes
from ..storage_locks import gc_guard

logger = logging.getLogger(__name__)


@dataclass
class Upload:
    """What an uploader sends: a manifest of every file, and an archive (tar.gz) holding the
    files whose bytes the server does not already have within what the uploader may read."""

    manifest: str | bytes | list[Any]
    archive: IO[bytes] | None = None


# --- bundles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagedBundle:
    entries: list[ManifestEntry]
    # The size of each file's bytes: measured on the bytes received, or the stored blob's
    # own for a file referenced without bytes. Never a size the manifest merely claims.
    sizes: dict[str, int]
    # Hashes whose bytes this upload sent (and so measured).
    received: frozenset[str] = frozenset()
    # The record of collections read before any of these bytes were put or found: with no
    # collection since, recording asks storage nothing. None (imports): it always asks.
    ticket: Ticket | None = None

    @property
    def total_size(self) -> int:
        return sum(self.sizes[entry.sha256] for entry in self.entries)


def stage_bundle(
    *,
    upload: Upload,
    readable_shas: Readable | Iterable[str] | QuerySet[Any] | None = None,
    check_manifest: Callable[[list[ManifestEntry]], None] | None = None,
    keep_copies: bool = False,
) -> StagedBundle:
    """Check an upload and put its bytes in storage; no database rows are written.

    ``readable_shas`` are the hashes the uploader may reference without sending bytes (or,
    from ``readable_by``, the bundles that hold them, read together with the stored sizes); a
    file listed in the manifest is accepted without bytes only if its hash is among them and
    the manifest gives the stored file's own size. ``check_manifest`` may refuse the
    manifest before a byte is stored (a quota). ``keep_copies``: with an object store, the
    server also keeps its own copies of the small files (``courses.blob_cache``), for
    bundles whose files are read back through the service (feedback, fetched inline).

    The record of collections is read (the bundle's ticket, ``courses/collection_epoch.py``)
    with the stored sizes, before any byte is put.
    """
    limits = Limits.from_settings()
    entries = parse_manifest(upload.manifest, limits)
    if check_manifest is not None:
        check_manifest(entries)
    by_path = {entry.path: entry for entry in entries}
    wanted = {entry.sha256 for entry in entries}
    known, ticket = _known_shas(wanted, readable_shas)
    sizes: dict[str, int] = {}
    if upload.archive is not None:
        sizes = _stage_archive(upload.archive, by_path, limits, keep_copies=keep_copies)
    received = frozenset(sizes)
    for entry in entries:
        if entry.sha256 in received:
            continue
        if entry.sha256 not in known:
            raise BadArchive(
                f"File {entry.path!r} is listed in the manifest but its bytes are neither in "
                "the archive nor already stored where you may read them.",
                code="missing_file",
            )
        if entry.size != known[entry.sha256]:
            raise BadArchive(
                f"Manifest entry {entry.path!r} names a stored file of "
                f"{known[entry.sha256]} bytes with SHA-256 {entry.sha256}, but gives its size "
                f"as {entry.size} bytes; list it with its own size.",
                code="bad_manifest",
            )
        sizes[entry.sha256] = known[entry.sha256]
    return StagedBundle(entries=entries, sizes=sizes, received=received, ticket=ticket)


def _stage_archive(
    archive: Any, by_path: dict[str, ManifestEntry], limits: Limits, *, keep_copies: bool
) -> dict[str, int]:
    """Stage and check every member of the archive, then put them all in storage.

    Nothing is put before the whole archive has been read and checked: a client that hangs
    up mid-body, a member that breaks the manifest or a bomb leaves no bytes in storage
    (staged files are temporary files, removed on any failure). The puts then run together
    (several at a time on an object store); all are in place on return."""
    staged_files: list[blobstore.StagedFile] = []
    memory = blobstore.memory_budget()
    try:
        for path, size, stream in iter_archive(archive, limits):
            entry = by_path.get(path)
            if entry is None:
                raise BadArchive(f"Archive member {path!r} is not listed in the manifest.")
            if size != entry.size:
                raise BadArchive(
                    f"File {path!r} has {size} bytes in the archive but {entry.size} in "
                    "the manifest."
                )
            staged_files.append(
                blobstore.stage_checked(
                    stream, path=path, size=entry.size, sha256=entry.sha256, memory=memory
                )
            )
    except BaseException:
        for staged in staged_files:
            blobstore.discard(staged)
        raise
    sizes = {staged.sha256: staged.size for staged in staged_files}
    with blobstore.Putter(keep_copies=keep_copies) as putter:
        for number, staged in enumerate(staged_files):
            try:
                putter.add(staged)
            except BaseException:
                for rest in staged_files[number + 1 :]:
                    blobstore.discard(rest)
                raise
        putter.wait()
    return sizes


def _known_shas(
    wanted: set[str], readable_shas: Readable | Iterable[str] | QuerySet[Any] | None
) -> tuple[dict[str, int], Ticket]:
    """The stored size of each wanted hash the uploader may reference without bytes, and the
    record of collections read in the same statement (so a row found here had its bytes
    unless that record says a collection was running).

    ``readable_shas`` from ``readable_by`` is read as one prepared statement."""
    if readable_shas is None:
        return {}, collection_epoch.take_ticket()
    ordered = sorted(wanted)
    if isinstance(readable_shas, Readable):
        rows = readable_shas.read(ordered)
    else:
        rows = list(_known_query(ordered, readable_shas))
    blobs, ticket = collection_epoch.split(rows)
    return {sha: size for sha, size, _ in blobs}, ticket


def _known_query(wanted: list[str], readable: Any) -> QuerySet[Any]:
    return collection_epoch.with_record(
        Blob.objects.filter(sha256__in=wanted)
        .filter(sha256__in=readable)
        .annotate(known=collection_epoch.known_flag())
        .values_list("sha256", "size", "known")
    )


@dataclass(frozen=True)
class Readable:
    """What an uploader may reference without bytes, made by ``readable_by``."""

    known: Prepared[tuple[str, int, bool]]
    bundle_ids: list[int]
    values: tuple[Any, ...]

    def read(self, wanted: list[str]) -> list[tuple[str, int, bool]]:
        """The wanted hashes' stored rows among the readable ones, with the record of
        collections (``collection_epoch.with_record``)."""
        return self.known(wanted, self.bundle_ids, *self.values)


def readable_by(bundles: Callable[..., QuerySet[Any]], *kinds: type) -> Callable[..., Readable]:
    """For ``stage_bundle``'s ``readable_shas``: ``readable_by(query, int)(ids, value)`` is
    the files of the bundles ``ids`` and of those ``query(value)`` selects (a query of
    ``bundle_id`` values). Made once per module: the read of the stored sizes is then
    compiled once per thread and number of files (courses/prepared.py), not on every
    upload."""
    known: Prepared[tuple[str, int, bool]] = Prepared(
        lambda wanted, ids, *values: _known_query(wanted, readable_entries(ids, bundles(*values))),
        Many(str),
        Many(int),
        *kinds,
    )

    def readable(bundle_ids: Iterable[int | None], *values: Any) -> Readable:
        return Readable(known, [pk for pk in bundle_ids if pk is not None], values)

    return readable


def record_bundle(*, kind: str, staged: StagedBundle) -> Bundle:
    """The bundle's rows; call inside the transaction that records what owns it."""
    return record_bundles(kind=kind, staged=[staged])[0]


def record_bundles(*, kind: str, staged: Sequence[StagedBundle]) -> list[Bundle]:
    """The rows of bundles staged together (a batch of feedback): one read and one insert
    of their blob rows, one insert of the bundles and one of their files, whatever their
    number. Call inside the transaction that records what owns them.

    Storage is asked whether the bytes are there only when a collection may have removed
    some since the bundles' ticket was taken (``courses/collection_epoch.py``)."""
    sizes = {sha: size for part in staged for sha, size in part.sizes.items()}
    received = frozenset().union(*(part.received for part in staged))
    tickets = {part.ticket for part in staged}
    # Parts staged apart (with tickets of their own) are checked as if they had none.
    ticket = tickets.pop() if len(tickets) == 1 else None
    # Held until the transaction ends: gc_blobs cannot delete what these bundles reference.
    with gc_guard():
        # One read: each blob's row (its recorded size), whether a bundle references it, and
        # the record of collections.
        read, now = collection_epoch.split(_BLOB_ROWS(sorted(sizes)))
        rows = {sha: (size, bool(referenced)) for sha, size, referenced in read}
        # Bytes a collection may have removed since they were staged or found: those with no
        # row, and those whose row no bundle references (a collection's next candidates).
        # Their bytes must be in storage now; under the lock they then stay.
        unsure = sorted(sha for sha in sizes if not rows.get(sha, (0, False))[1])
        if unsure and collection_epoch.may_have_removed(ticket, now) and blobstore.missing(unsure):
            raise Conflict(
                "Some files of this upload were removed from storage while it was being "
                "recorded; send it again.",
                code="retry",
            )
    missing = [sha for sha in sizes if sha not in rows]
    if missing:
        Blob.objects.bulk_create(
            [Blob(sha256=sha, size=sizes[sha]) for sha in missing], ignore_conflicts=True
        )
    # Rows written before manifests were checked may hold a wrong size; only then the
    # correction (which locks and reads them again) runs.
    if any(sha in rows and rows[sha][0] != sizes[sha] for sha in received):
        _correct_sizes(StagedBundle(entries=[], sizes=sizes, received=received))
    bundles = [
        Bundle(kind=kind, file_count=len(part.entries), total_size=part.total_size)
        for part in staged
    ]
    create_all(bundles)
    blobs = {sha: Blob(sha256=sha, size=size) for sha, size in sizes.items()}
    entries = [
        [
            BundleEntry(bundle=bundle, path=entry.path, blob=blobs[entry.sha256])
            for entry in part.entries
        ]
        for bundle, part in zip(bundles, staged, strict=True)
    ]
    BundleEntry.objects.bulk_create([entry for rows_of in entries for entry in rows_of])
    # The answer lists these rows: handed on, not read back.
    for bundle, rows_of in zip(bundles, entries, strict=True):
        prefetch_rows(bundle, "entries", rows_of)
    return bundles


def _blob_rows_query(shas: list[str]) -> QuerySet[Any]:
    return collection_epoch.with_record(
        Blob.objects.filter(sha256__in=shas)
        .annotate(referenced=Exists(BundleEntry.objects.filter(blob_id=OuterRef("pk"))))
        .values_list("sha256", "size", "referenced")
    )


# Every upload reads it under the lock: compiled once per number of files.
_BLOB_ROWS: Prepared[tuple[str, int, bool]] = Prepared(_blob_rows_query, Many(str))


def create_all(rows: Sequence[Model]) -> None:
    """Insert new rows of one model, each getting its id: in one statement where the
    database hands the ids back (PostgreSQL, SQLite 3.35+), else one by one."""
    if len(rows) > 1 and connection.features.can_return_rows_from_bulk_insert:
        type(rows[0]).objects.bulk_create(rows)
    else:
        for row in rows:
            row.save(force_insert=True)


def _correct_sizes(staged: StagedBundle) -> None:
    """Bytes just received and measured are the truth: a row that says otherwise (written
    before manifests were checked) takes their size, and so do the bundles that list it."""
    measured = staged.received
    if not measured:
        return
    for sha in correct_blob_sizes({sha: staged.sizes[sha] for sha in measured}):
        logger.warning(
            "blob %s was recorded with a wrong size; corrected to %d", sha, staged.sizes[sha]
        )


def _shas_of(bundles: Iterable[int | None]) -> set[str]:
    ids = [pk for pk in bundles if pk is not None]
    return set(BundleEntry.objects.filter(bundle_id__in=ids).values_list("blob_id", flat=True))


def readable_entries(
    bundle_ids: Iterable[int | None], *bundle_queries: QuerySet[Any]
) -> QuerySet[BundleEntry]:
    """The hashes of the bundles given and of those the queries (of ``bundle_id`` values)
    select, as a query (no read of its own: ``readable_by`` makes it a subquery of the read
    of the stored sizes)."""
    where = Q(bundle_id__in=[pk for pk in bundle_ids if pk is not None])
    for query in bundle_queries:
        where |= Q(bundle_id__in=query)
    return BundleEntry.objects.filter(where).values("blob_id")
