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

The parts: ``tables`` (the format, the error, the models in load order), ``dump`` (writing
an archive to a file or a stream), ``s3`` (S3 targets and pruning), and restore's three
steps: ``verify`` (the archive and its manifest), ``stage`` (every file checked against the
manifest, blobs stored), ``load`` (the rows, in one transaction), run by ``restore``.
"""

from .dump import (
    BackupReport,
    _missing,
    archive_name,
    backup,
    backup_to_stream,
    encode_record,
    snapshot,
    table_records,
)
from .restore import restore
from .s3 import S3Location, backup_to_s3, parse_s3_url, prune, s3_client
from .tables import (
    ARCHIVE_PREFIX,
    ARCHIVE_SUFFIX,
    BATCH,
    EXCLUDED,
    FORMAT,
    MANIFEST,
    VERSION,
    BackupError,
    RestoreReport,
    _label,
    backup_models,
    describe,
)
from .verify import check_manifest, existing_rows

__all__ = [
    "ARCHIVE_PREFIX",
    "ARCHIVE_SUFFIX",
    "BATCH",
    "EXCLUDED",
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "S3Location",
    "_label",
    "_missing",
    "archive_name",
    "backup",
    "backup_models",
    "backup_to_s3",
    "backup_to_stream",
    "check_manifest",
    "describe",
    "encode_record",
    "existing_rows",
    "parse_s3_url",
    "prune",
    "restore",
    "s3_client",
    "snapshot",
    "table_records",
]
