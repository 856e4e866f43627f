"""Writing a backup: one snapshot of every table and the blobs it references, into an
archive file or a stream."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import os
import shutil
import tarfile
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import django
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.python import Serializer as PythonSerializer
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from .. import blobstore
from ..models import Blob, BundleEntry, blob_storage_name
from ..progress import Progress, quiet
from ..storage_locks import gc_reader_lock, io_threads
from .tables import (
    ARCHIVE_PREFIX,
    ARCHIVE_SUFFIX,
    BATCH,
    EXCLUDED,
    FORMAT,
    MANIFEST,
    VERSION,
    BackupError,
    _label,
    backup_models,
)

# --- backup -------------------------------------------------------------------------------


class _Encoder(DjangoJSONEncoder):
    """Django's encoder, but times keep their microseconds (submission timestamps need them)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)


class _Serializer(PythonSerializer):
    """Natural keys only for content types and permissions, which ``migrate`` numbers
    differently on every install; plain primary keys everywhere else (no lookups on load)."""

    def _natural_for(self, field: models.Field) -> None:
        self.use_natural_foreign_keys = _label(field.remote_field.model) in EXCLUDED

    def handle_fk_field(self, obj: models.Model, field: models.Field) -> None:
        self._natural_for(field)
        super().handle_fk_field(obj, field)

    def handle_m2m_field(self, obj: models.Model, field: models.Field) -> None:
        self._natural_for(field)
        super().handle_m2m_field(obj, field)


@contextmanager
def snapshot(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """One consistent read of the whole database that does not stop writers."""
    connection = connections[using]
    if connection.in_atomic_block:
        # Called inside a transaction (a test, a caller's own atomic block): read within it.
        with gc_reader_lock():
            yield
        return
    # The lock comes first: a snapshot taken before it could name bytes that a collection
    # holding the lock at that moment goes on to remove.
    if connection.vendor == "postgresql":
        with gc_reader_lock(), transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if connection.vendor == "sqlite":
        # A deferred read transaction: with WAL it sees one snapshot from its first read
        # on and lets writers go on. (Django's own atomic() would BEGIN IMMEDIATE here and
        # hold the write lock for the whole backup.)
        with gc_reader_lock():
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("BEGIN DEFERRED")
                cursor.execute("SELECT count(*) FROM sqlite_master")
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("ROLLBACK")
        return
    with transaction.atomic(using=using):  # pragma: no cover - other databases
        yield


@dataclass
class BackupReport:
    path: Path | str
    tables: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    archive_bytes: int = 0


@contextmanager
def _open_archive_for_writing(path: Path, *, gzip: bool) -> Iterator[tarfile.TarFile]:
    # A backup holds every submission and the users table: readable by its owner only,
    # whatever the umask (fchmod also covers a stale file left by a killed backup).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if gzip:
            archive = tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6)
        else:
            archive = tarfile.open(fileobj=handle, mode="w")
        with archive:
            yield archive


def _add_file(archive: tarfile.TarFile, name: str, source: Path | IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(timezone.now().timestamp())
    info.mode = 0o600
    if isinstance(source, Path):
        with source.open("rb") as handle:
            archive.addfile(info, handle)
    else:
        archive.addfile(info, source)


def table_records(model: type[models.Model]) -> Iterator[dict[str, Any]]:
    """A table's rows as a backup holds them (blobs: only those a bundle references)."""
    queryset = model._base_manager.using(DEFAULT_DB_ALIAS).order_by("pk")
    if model is Blob:
        queryset = queryset.filter(pk__in=BundleEntry.objects.values("blob_id"))
    m2m = [
        f.name for f in model._meta.local_many_to_many if f.remote_field.through._meta.auto_created
    ]
    if m2m:
        queryset = queryset.prefetch_related(*m2m)
    chunk: list[models.Model] = []
    for obj in queryset.iterator(chunk_size=BATCH):
        chunk.append(obj)
        if len(chunk) >= BATCH:
            yield from _Serializer().serialize(chunk, use_natural_foreign_keys=True)
            chunk.clear()
    yield from _Serializer().serialize(chunk, use_natural_foreign_keys=True)


def encode_record(record: dict[str, Any]) -> bytes:
    return json.dumps(record, cls=_Encoder, sort_keys=True).encode() + b"\n"


def _dump_model(model: type[models.Model], target: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    rows = 0
    with target.open("wb") as out:
        for record in table_records(model):
            line = encode_record(record)
            digest.update(line)
            out.write(line)
            rows += 1
    return rows, digest.hexdigest()


def _missing(sha: str) -> BackupError:
    return BackupError(
        f"Blob {sha} is referenced but missing from storage; run verify_storage, restore "
        "the file, and back up again."
    )


def _download(sha: str, work: Path) -> Path:
    if not blobstore.exists(sha):
        raise _missing(sha)
    target = work / f"blob-{sha}"
    with blobstore.open_blob(sha) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, blobstore.CHUNK_SIZE)
    return target


def _blob_sources(blobs: list[tuple[str, int]], work: Path) -> Iterator[tuple[str, Path]]:
    """Each blob's bytes as a local file, in order: the file itself on local storage; from
    an object store, several downloaded at once into ``work`` ahead of the archive writer."""
    storage = blobstore.get_storage()
    if blobstore.is_local(storage):
        for sha, _ in blobs:
            path = Path(storage.path(blob_storage_name(sha)))
            if not path.is_file():
                raise _missing(sha)
            yield sha, path
        return
    threads = io_threads(storage)
    shas = iter(sha for sha, _ in blobs)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = deque(
            (sha, pool.submit(_download, sha, work)) for sha in itertools.islice(shas, 2 * threads)
        )
        while pending:
            sha, future = pending.popleft()
            yield sha, future.result()
            following = next(shas, None)
            if following is not None:
                pending.append((following, pool.submit(_download, following, work)))


def _applied_migrations() -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    recorder = MigrationRecorder(connections[DEFAULT_DB_ALIAS])
    for app, name in sorted(recorder.applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def _write_archive(
    archive_opener: Callable[[], tarfile.TarFile],
    *,
    work: Path,
    report: BackupReport,
    progress: Progress,
) -> None:
    """Dump every table into ``work``, then write the archive ``archive_opener`` opens."""
    with snapshot():
        taken_at = timezone.now()
        tables = []
        for model in backup_models():
            label = _label(model)
            name = f"db/{label}.jsonl"
            rows, sha = _dump_model(model, work / f"{label}.jsonl")
            tables.append({"model": label, "file": name, "rows": rows, "sha256": sha})
            report.tables[label] = rows
            progress(f"  {label}: {rows} row(s)")
        blobs = list(
            Blob.objects.filter(pk__in=BundleEntry.objects.values("blob_id"))
            .order_by("sha256")
            .values_list("sha256", "size")
        )
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": taken_at.isoformat(),
            "database": connections[DEFAULT_DB_ALIAS].vendor,
            "django": django.get_version(),
            "migrations": _applied_migrations(),
            "tables": tables,
            "blobs": {
                "count": len(blobs),
                "bytes": sum(size for _, size in blobs),
                "sha256": [sha for sha, _ in blobs],
            },
        }
        progress(f"Copying {len(blobs)} blob(s), {manifest['blobs']['bytes']} bytes...")
        with archive_opener() as archive:
            data = json.dumps(manifest, indent=1).encode()
            _add_file(archive, MANIFEST, io.BytesIO(data), len(data))
            for table in tables:
                source = work / f"{table['model']}.jsonl"
                _add_file(archive, table["file"], source, source.stat().st_size)
            for number, (sha, path) in enumerate(_blob_sources(blobs, work), start=1):
                size = path.stat().st_size
                _add_file(archive, blob_storage_name(sha), path, size)
                if not blobstore.is_local():
                    path.unlink()
                report.blobs += 1
                report.blob_bytes += size
                if number % 500 == 0:
                    progress(f"  {number}/{len(blobs)} blobs")


def archive_name(now: dt.datetime | None = None) -> str:
    """The file name a backup gets when only its directory or S3 prefix is given."""
    moment = now or timezone.now()
    return f"{ARCHIVE_PREFIX}{moment.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}{ARCHIVE_SUFFIX}"


def backup(*, out: Path | str, progress: Progress = quiet) -> BackupReport:
    """Write one archive of the whole service to ``out`` (see the module docstring).

    ``out`` naming an existing directory writes ``exchange-<UTC time>.tar.gz`` inside it.
    """
    out = Path(out)
    if out.is_dir():
        out = out / archive_name()
    if out.exists():
        raise BackupError(f"{out} already exists; choose a new file name.")
    if not out.parent.is_dir():
        raise BackupError(f"The directory {out.parent} does not exist.")
    report = BackupReport(path=out)
    work = Path(tempfile.mkdtemp(prefix="exchange-backup-", dir=out.parent))
    partial = out.with_name(out.name + ".partial")
    try:
        _write_archive(
            lambda: _open_archive_for_writing(partial, gzip=out.name.endswith((".gz", ".tgz"))),
            work=work,
            report=report,
            progress=progress,
        )
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.archive_bytes = out.stat().st_size
    return report


class _Counting:
    """A write-only stream that counts what passes through it to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.written = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()


def backup_to_stream(
    *, stream: IO[bytes], name: str = "-", progress: Progress = quiet
) -> BackupReport:
    """Write one gzip-compressed archive to a stream that need not seek (standard output, a
    pipe, an upload). The table files are spooled in the temporary directory meanwhile."""
    report = BackupReport(path=name)
    counting = _Counting(stream)
    work = Path(tempfile.mkdtemp(prefix="exchange-backup-"))
    try:
        _write_archive(
            # Stream mode: written front to back, never seeks back.
            lambda: tarfile.open(fileobj=counting, mode="w|gz"),  # type: ignore[arg-type]
            work=work,
            report=report,
            progress=progress,
        )
        counting.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.archive_bytes = counting.written
    return report
