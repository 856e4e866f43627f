"""Backup and restore: one archive holding every table, every referenced blob and a manifest.

The archive is a tar file (gzip-compressed when its name ends in ``.gz`` or ``.tgz``):

- ``manifest.json`` first: format and version, source database, applied migrations, one
  entry per table (file, row count, SHA-256 of the file) in load order, and the blobs
  (count, bytes, their SHA-256s);
- ``db/<app>.<model>.jsonl``: the rows, one JSON object a line, in Django's database-neutral
  serialization with natural keys for content types and permissions;
- ``blobs/<aa>/<sha256>``: the bytes of every blob a bundle references.

Every installed model is dumped (found through the app registry, so new models are
included), except content types and permissions (``migrate`` makes those on the target) and
sessions (people log in again). The dump is one snapshot while the service keeps serving:
a REPEATABLE READ, READ ONLY transaction on PostgreSQL, a read transaction on SQLite (WAL).
Blobs are immutable and content-addressed, so copying those the snapshot references gives a
consistent archive; the garbage-collection lock is held (taken before the snapshot, on
every database) so ``gc_blobs`` removes nothing meanwhile.

Where the archive goes: a file (written as ``OUT.partial``, renamed when whole), a stream
that need not seek (``backup -``: standard output, so ``kubectl exec`` carries it out of a
pod whose disk is read-only), or an S3 key of the service's own endpoint, written as one
multipart upload that is completed only when the archive is whole. ``prune`` keeps the newest
N archives that the service named itself (``exchange-<UTC time>.tar.gz``).

``restore`` reads the archive once, front to back (so it reads standard input or an S3
object as well as a file): it checks the manifest, verifies every table file and
every blob against its SHA-256 (blobs are stored as they are verified), and only then loads
the rows in one transaction, checks the counts and resets PostgreSQL's sequences.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import django
from django.apps import apps
from django.core import serializers
from django.core.management.color import no_style
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.python import Serializer as PythonSerializer
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    connections,
    models,
    router,
    transaction,
)
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from . import blobstore
from .exceptions import Conflict, ExchangeError
from .models import Blob, BundleEntry, blob_storage_name
from .storage_checks import gc_reader_lock, io_threads

FORMAT = "nbgrader-exchange-backup"
VERSION = 1
MANIFEST = "manifest.json"
EXCLUDED = {"contenttypes.contenttype", "auth.permission", "sessions.session"}
BATCH = 1000
# Archives named by the service itself (a directory or an S3 prefix given): sortable by time.
ARCHIVE_PREFIX = "exchange-"
ARCHIVE_SUFFIX = ".tar.gz"
# S3 multipart parts: at least 5 MiB each (S3's minimum), held in memory one at a time.
S3_PART_SIZE = 16 * 1024 * 1024
Progress = Callable[[str], None]


class BackupError(ExchangeError):
    """A backup that cannot be written or an archive that cannot be restored."""

    status_code = 400
    code = "backup"


def _quiet(_: str) -> None:
    pass


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def backup_models() -> list[type[models.Model]]:
    """Every model whose rows a backup holds, parents before children (load order)."""
    chosen = [
        model
        for model in apps.get_models()
        if _label(model) not in EXCLUDED
        and model._meta.managed
        and not model._meta.proxy
        and router.allow_migrate_model(DEFAULT_DB_ALIAS, model)
    ]
    chosen.sort(key=_label)
    included = set(chosen)
    ordered: list[type[models.Model]] = []
    visiting: set[type[models.Model]] = set()

    def visit(model: type[models.Model]) -> None:
        if model in ordered or model in visiting:
            return
        visiting.add(model)
        for dep in _dependencies(model):
            if dep in included and dep is not model:
                visit(dep)
        visiting.discard(model)
        ordered.append(model)

    for model in chosen:
        visit(model)
    return ordered


def _dependencies(model: type[models.Model]) -> list[type[models.Model]]:
    deps = []
    for f in model._meta.get_fields():
        if (f.many_to_one or f.one_to_one or f.many_to_many) and f.concrete and f.related_model:
            deps.append(f.related_model._meta.concrete_model)
    return deps


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


def backup(*, out: Path | str, progress: Progress = _quiet) -> BackupReport:
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
    *, stream: IO[bytes], name: str = "-", progress: Progress = _quiet
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


# --- S3 targets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix/`` (a name is made up) or ``s3://bucket/key.tar.gz``."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise BackupError(f"{url} names no bucket: write s3://BUCKET/PREFIX/.")
    return S3Location(bucket=bucket, key=key)


def s3_client() -> Any:
    """The S3 client of the service's own storage settings (endpoint, region, keys)."""
    storage = blobstore.get_storage()
    connection = getattr(storage, "connection", None)
    if connection is None:
        raise BackupError(
            "Backups to s3:// use the service's S3 settings (EXCHANGE_STORAGE=s3 with "
            "EXCHANGE_S3_ENDPOINT_URL and its keys); this install keeps its files locally. "
            "Write the backup to '-' (standard output) or to a file instead."
        )
    return connection.meta.client


class _MultipartWriter:
    """A write-only stream into one S3 multipart upload. Nothing appears under the key until
    ``complete``; ``abort`` drops every part, so a failed backup leaves no object behind."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self.client = client
        self.location = location
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.upload_id = client.create_multipart_upload(
            Bucket=location.bucket, Key=location.key, ContentType="application/gzip"
        )["UploadId"]

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= S3_PART_SIZE:
            self._send(bytes(self.buffer[:S3_PART_SIZE]))
            del self.buffer[:S3_PART_SIZE]
        return len(data)

    def flush(self) -> None:
        pass

    def _send(self, body: bytes) -> None:
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self) -> None:
        if self.buffer or not self.parts:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        self.client.complete_multipart_upload(
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        self.client.abort_multipart_upload(
            Bucket=self.location.bucket, Key=self.location.key, UploadId=self.upload_id
        )


def backup_to_s3(*, url: str, progress: Progress = _quiet) -> BackupReport:
    """Stream one archive into an S3 bucket (see ``parse_s3_url``), never to local disk
    beyond the table files. The object exists only once the archive is complete."""
    location = parse_s3_url(url)
    if not location.key or location.key.endswith("/"):
        location = S3Location(location.bucket, location.key + archive_name())
    client = s3_client()
    try:
        client.head_object(Bucket=location.bucket, Key=location.key)
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise BackupError(f"Cannot use {location.url}: {exc}") from exc
    else:
        raise BackupError(f"{location.url} already exists; choose a new name.")
    try:
        writer = _MultipartWriter(client, location)
    except client.exceptions.ClientError as exc:
        raise BackupError(f"Cannot write to {location.url}: {exc}") from exc
    try:
        report = backup_to_stream(stream=writer, name=location.url, progress=progress)  # type: ignore[arg-type]
        writer.complete()
    except BaseException:
        writer.abort()
        raise
    return report


def prune(*, target: str, keep: int, progress: Progress = _quiet) -> list[str]:
    """Delete all but the newest ``keep`` archives named ``exchange-<time>.tar.gz`` in a
    directory or under an S3 prefix; returns what was deleted."""
    if keep < 1:
        raise BackupError("--keep must be at least 1.")
    if target.startswith("s3://"):
        location = parse_s3_url(target)
        # The prefix itself, or the "directory" of an archive named in full.
        prefix = location.key.rpartition("/")[0] + "/" if "/" in location.key else ""
        client = s3_client()
        names = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                rest = item["Key"][len(prefix) :]
                if _is_archive_name(rest):
                    names.append(item["Key"])
        doomed = sorted(names)[:-keep]
        for key in doomed:
            client.delete_object(Bucket=location.bucket, Key=key)
            progress(f"  deleted s3://{location.bucket}/{key}")
        return [f"s3://{location.bucket}/{key}" for key in doomed]
    directory = Path(target)
    if not directory.is_dir():
        directory = directory.parent
    archives = sorted(p for p in directory.iterdir() if _is_archive_name(p.name))
    doomed_paths = archives[:-keep]
    for path in doomed_paths:
        path.unlink()
        progress(f"  deleted {path}")
    return [str(path) for path in doomed_paths]


def _is_archive_name(name: str) -> bool:
    return (
        name.startswith(ARCHIVE_PREFIX)
        and name.endswith(ARCHIVE_SUFFIX)
        and "/" not in name
        and len(name) == len(archive_name(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)))
    )


# --- restore ------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    tables: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    created_at: str = ""
    source_database: str = ""
    cleared: dict[str, int] = field(default_factory=dict)


def existing_rows() -> dict[str, int]:
    """Rows already in the target, per model a backup restores (empty install: none)."""
    counts = {}
    for model in backup_models():
        count = model._base_manager.count()
        if count:
            counts[_label(model)] = count
    return counts


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    first = archive.next()
    if first is None or first.name != MANIFEST:
        raise BackupError("This is not an exchange backup: it does not start with manifest.json.")
    handle = archive.extractfile(first)
    assert handle is not None
    try:
        manifest = json.loads(handle.read())
    except ValueError as exc:
        raise BackupError("The backup's manifest.json is not valid JSON.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("This is not an exchange backup (its manifest names another format).")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"This backup has format version {manifest.get('version')}; this release "
            f"restores version {VERSION}."
        )
    return manifest


_SHA256 = re.compile(r"[0-9a-f]{64}")
_LABEL = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(manifest: dict[str, Any], known: set[str]) -> None:
    """Every name and number a manifest gives, checked before restore writes any file.

    Table file names come from the manifest, so a hostile one (``../../etc/x``) must be
    refused here: only ``db/<app>.<model>.jsonl`` of a model this release knows, SHA-256s
    of 64 hex digits, and counts that are whole numbers.
    """
    tables = manifest.get("tables")
    blobs = manifest.get("blobs")
    migrations = manifest.get("migrations", {})
    if (
        not isinstance(tables, list)
        or not isinstance(blobs, dict)
        or not isinstance(blobs.get("sha256"), list)
        or not isinstance(migrations, dict)
        or not all(
            isinstance(app, str)
            and isinstance(names, list)
            and all(isinstance(n, str) for n in names)
            for app, names in migrations.items()
        )
    ):
        raise BackupError(
            "The backup's manifest.json is damaged: it lacks its list of tables, blobs or "
            "migrations. Nothing was restored."
        )
    seen: set[str] = set()
    unknown = []
    for table in tables:
        if not isinstance(table, dict) or not isinstance(table.get("model"), str):
            raise BackupError("The backup's manifest.json lists a table without a model name.")
        label = table["model"]
        if not _LABEL.fullmatch(label):
            raise BackupError(
                f"The backup's manifest.json names a table {label[:100]!r}, which is not a "
                "model name (app.model). Nothing was restored."
            )
        if label not in known:
            unknown.append(label)
            continue
        if label in seen:
            raise BackupError(f"The backup's manifest.json lists table {label} twice.")
        seen.add(label)
        if table.get("file") != f"db/{label}.jsonl":
            raise BackupError(
                f"The backup's manifest.json gives table {label} the file "
                f"{str(table.get('file'))[:100]!r}; it must be db/{label}.jsonl."
            )
        if not isinstance(table.get("sha256"), str) or not _SHA256.fullmatch(table["sha256"]):
            raise BackupError(f"The backup's manifest.json has no valid SHA-256 for {label}.")
        if not _is_count(table.get("rows")):
            raise BackupError(f"The backup's manifest.json has no valid row count for {label}.")
    if unknown:
        raise BackupError(
            f"The backup holds tables this release does not know ({', '.join(unknown)}): "
            "restore with the release the backup was taken with."
        )
    bad = [
        str(sha)[:100]
        for sha in blobs["sha256"]
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha)
    ]
    if bad:
        raise BackupError(
            f"The backup's manifest.json lists {len(bad)} blob name(s) that are not SHA-256 "
            f"hashes (first: {bad[0]!r}). Nothing was restored."
        )


def _check_migrations(manifest: dict[str, Any]) -> None:
    applied = _applied_migrations()
    missing = [
        f"{app}.{name}"
        for app, names in manifest.get("migrations", {}).items()
        for name in names
        if name not in applied.get(app, [])
    ]
    if missing:
        raise BackupError(
            "The target database lacks migrations the backup was taken with "
            f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): run "
            "`manage.py migrate` with the same or a newer release first."
        )


def _hash_copy(source: IO[bytes], target: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(blobstore.CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        target.write(chunk)
    return digest.hexdigest(), size


def _clear(progress: Progress) -> dict[str, int]:
    cleared = {}
    for model in reversed(backup_models()):
        # Children first; _raw_delete skips cascades and signals, which an ordered wipe of
        # every table does not need.
        for m2m in model._meta.local_many_to_many:
            if m2m.remote_field.through._meta.auto_created:
                m2m.remote_field.through._base_manager.all()._raw_delete(DEFAULT_DB_ALIAS)
        count = model._base_manager.count()
        if count:
            model._base_manager.all()._raw_delete(DEFAULT_DB_ALIAS)
            cleared[_label(model)] = count
            progress(f"  cleared {_label(model)}: {count} row(s)")
    return cleared


def _load_table(model: type[models.Model], path: Path) -> int:
    """Insert the rows of one table file with their primary keys and timestamps as saved."""
    fields = [f for f in model._meta.local_concrete_fields]
    rows = 0
    with path.open("rb") as handle:
        while True:
            lines = [line for _, line in zip(range(BATCH), handle, strict=False)]
            if not lines:
                break
            records = [json.loads(line) for line in lines]
            objects = list(
                serializers.deserialize("python", records, handle_forward_references=False)
            )
            instances = [obj.object for obj in objects]
            if model._meta.parents:  # pragma: no cover - multi-table inheritance
                for obj in objects:
                    obj.save()
            else:
                # raw: keep auto_now / auto_now_add values as they were saved.
                model._base_manager._insert(
                    instances, fields=fields, raw=True, using=DEFAULT_DB_ALIAS
                )
            for obj in objects:
                for name, values in (obj.m2m_data or {}).items():
                    if values:
                        getattr(obj.object, name).set(values)
            rows += len(instances)
    return rows


def _reset_sequences(models_: list[type[models.Model]]) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    # The tables of many-to-many fields (a user's groups) have id sequences of their own.
    through = [
        f.remote_field.through
        for model in models_
        for f in model._meta.local_many_to_many
        if f.remote_field.through._meta.auto_created
    ]
    statements = connection.ops.sequence_reset_sql(no_style(), [*models_, *through])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _open_source(source: Path | str | None, stream: IO[bytes] | None) -> tarfile.TarFile:
    """The archive to read front to back: a file, an ``s3://`` object or a stream."""
    if stream is not None:
        name = "The archive on standard input"
        opener = lambda: tarfile.open(fileobj=stream, mode="r|*")  # noqa: E731
    elif str(source).startswith("s3://"):
        location = parse_s3_url(str(source))
        client = s3_client()
        try:
            body = client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        except client.exceptions.ClientError as exc:
            raise BackupError(f"Cannot read {location.url}: {exc}") from exc
        name = location.url
        opener = lambda: tarfile.open(fileobj=body, mode="r|*")  # noqa: E731
    else:
        path = Path(str(source))
        if not path.is_file():
            raise BackupError(f"{path} does not exist or is not a file.")
        name = str(path)
        opener = lambda: tarfile.open(path, "r:*")  # noqa: E731
    try:
        return opener()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{name} is not a readable backup archive ({exc}).") from exc


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """A member cut short or garbled in transit (a stream ends early) is a sentence too."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(
            f"The backup from {name} is damaged or cut short ({exc}): use another copy. "
            "Nothing was restored to the database."
        ) from exc


def restore(
    *,
    source: Path | str | None = None,
    stream: IO[bytes] | None = None,
    force: bool = False,
    progress: Progress = _quiet,
) -> RestoreReport:
    """Load an archive into this install (see the module docstring).

    The archive is a file, an ``s3://bucket/key`` of the service's S3 endpoint, or a
    ``stream`` read once from front to back (standard input). Refuses a target that already
    holds rows unless ``force``, which first deletes every row of every table the backup
    holds. Nothing is written to the database unless every checksum is right; blobs verified
    before a failure stay in storage as orphans that ``gc_blobs`` removes.
    """
    if (source is None) == (stream is None):
        raise ValueError("restore() takes a source or a stream")
    report = RestoreReport()
    try:
        present = existing_rows()
    except DatabaseError as exc:
        raise BackupError(
            "The target database has not been set up: run `manage.py migrate` first "
            f"({str(exc).strip().splitlines()[0]})."
        ) from exc
    if present and not force:
        listing = ", ".join(f"{label} ({count})" for label, count in sorted(present.items()))
        raise Conflict(
            f"The target is not empty: {listing}. Restore into a new, migrated database, "
            "or pass --force to delete those rows first.",
            code="not_empty",
        )
    by_label = {_label(model): model for model in backup_models()}
    work: Path | None = None
    try:
        archive = _open_source(source, stream)
        with archive, _reading("standard input" if stream is not None else str(source)):
            manifest = _read_manifest(archive)
            check_manifest(manifest, set(by_label))
            _check_migrations(manifest)
            report.created_at = str(manifest.get("created_at", ""))
            report.source_database = str(manifest.get("database", ""))
            tables = {table["file"]: table for table in manifest["tables"]}
            # Only now, with every name checked, does the restore write anything.
            work = Path(tempfile.mkdtemp(prefix="exchange-restore-"))
            expected_blobs = set(manifest["blobs"]["sha256"])
            seen_tables: set[str] = set()
            seen_blobs: set[str] = set()
            progress(f"Verifying and storing {len(expected_blobs)} blob(s)...")
            with _Puts() as puts:
                for member in archive:
                    if not member.isfile() or member.name == MANIFEST:
                        continue
                    handle = archive.extractfile(member)
                    assert handle is not None
                    if member.name in tables:
                        table = tables[member.name]
                        with (work / f"{table['model']}.jsonl").open("wb") as out:
                            sha, _ = _hash_copy(handle, out)
                        if sha != table["sha256"]:
                            raise BackupError(
                                f"{member.name} in the backup is damaged: its SHA-256 is {sha}, "
                                f"the manifest says {table['sha256']}. Nothing was restored."
                            )
                        seen_tables.add(member.name)
                    elif member.name.startswith("blobs/"):
                        sha = member.name.rsplit("/", 1)[-1]
                        if sha not in expected_blobs or member.name != blob_storage_name(sha):
                            raise BackupError(f"The backup holds an unexpected file {member.name}.")
                        staged = blobstore.stage(handle)
                        if staged.sha256 != sha or staged.size != member.size:
                            blobstore.discard(staged)
                            raise BackupError(
                                f"Blob {sha} in the backup is damaged: its {staged.size} bytes "
                                f"hash to {staged.sha256}. Nothing was restored to the database."
                            )
                        puts.submit(staged)
                        seen_blobs.add(sha)
                        report.blobs += 1
                        report.blob_bytes += member.size
                        if report.blobs % 500 == 0:
                            progress(f"  {report.blobs}/{len(expected_blobs)} blobs")
                    else:
                        raise BackupError(f"The backup holds an unexpected file {member.name}.")
        if set(tables) - seen_tables or expected_blobs - seen_blobs:
            lost = sorted(set(tables) - seen_tables) + sorted(expected_blobs - seen_blobs)
            raise BackupError(
                f"The backup is incomplete: {len(lost)} file(s) listed in its manifest are "
                f"missing (first: {lost[0]}). Nothing was restored."
            )
        progress("Loading the database...")
        with transaction.atomic():
            if force:
                report.cleared = _clear(progress)
            for table in manifest["tables"]:
                model = by_label[table["model"]]
                rows = _load_table(model, work / f"{table['model']}.jsonl")
                if rows != table["rows"]:
                    raise BackupError(
                        f"{table['file']} holds {rows} row(s), the manifest says "
                        f"{table['rows']}. Nothing was restored."
                    )
                report.tables[table["model"]] = rows
                progress(f"  {table['model']}: {rows} row(s)")
            _reset_sequences([by_label[t["model"]] for t in manifest["tables"]])
            _check_blob_rows(expected_blobs)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return report


class _Puts:
    """Blobs verified from the archive, put into storage in the background (several at once
    on an object store); leaving the block waits for every put and raises the first error."""

    def __init__(self) -> None:
        self.threads = io_threads(blobstore.get_storage())
        self.pool = ThreadPoolExecutor(max_workers=self.threads)
        self.pending: deque[Future[None]] = deque()

    def submit(self, staged: blobstore.StagedFile) -> None:
        self.pending.append(self.pool.submit(blobstore.put, staged))
        while len(self.pending) > 2 * self.threads:
            self.pending.popleft().result()

    def __enter__(self) -> _Puts:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True)


def _check_blob_rows(expected: set[str]) -> None:
    referenced = set(BundleEntry.objects.values_list("blob_id", flat=True).distinct())
    if referenced - expected:
        raise BackupError(
            f"The backup's rows reference {len(referenced - expected)} blob(s) that it does "
            "not hold. Nothing was restored."
        )


def describe(report: BackupReport | RestoreReport) -> str:
    rows = sum(report.tables.values())
    return (
        f"{rows} row(s) in {len(report.tables)} table(s), {report.blobs} blob(s) "
        f"({report.blob_bytes} bytes)"
    )
