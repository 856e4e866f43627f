"""``restore``: check the target and the archive, stage every file the manifest lists, then
load the rows in one transaction (see the package docstring)."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from django.db import DatabaseError

from ..exceptions import Conflict
from ..progress import Progress, quiet
from .load import load_tables
from .stage import stage_members
from .tables import BackupError, RestoreReport, _label, backup_models
from .verify import (
    _check_migrations,
    _open_source,
    _read_manifest,
    _reading,
    check_manifest,
    existing_rows,
)


def restore(
    *,
    source: Path | str | None = None,
    stream: IO[bytes] | None = None,
    force: bool = False,
    progress: Progress = quiet,
) -> RestoreReport:
    """Load an archive into this install (see the package docstring).

    The archive is a file, an ``s3://bucket/key`` of the service's S3 endpoint, or a
    ``stream`` read once from front to back (standard input). Refuses a target that already
    holds rows unless ``force``, which first deletes every row of every table the backup
    holds. Nothing is written to the database unless every checksum is right; blobs verified
    before a failure stay in storage as orphans that ``gc_blobs`` removes.
    """
    if (source is None) == (stream is None):
        raise ValueError("restore() takes a source or a stream")
    _refuse_a_target_in_use(force=force)
    by_label = {_label(model): model for model in backup_models()}
    report = RestoreReport()
    work: Path | None = None
    try:
        archive = _open_source(source, stream)
        with archive, _reading("standard input" if stream is not None else str(source)):
            manifest = _checked_manifest(archive, known=set(by_label), report=report)
            # Only now, with every name checked, does the restore write anything.
            work = Path(tempfile.mkdtemp(prefix="exchange-restore-"))
            stage_members(archive, manifest, work=work, report=report, progress=progress)
        progress("Loading the database...")
        load_tables(manifest, by_label, work=work, force=force, report=report, progress=progress)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return report


def _refuse_a_target_in_use(*, force: bool) -> None:
    """A target without the tables, or (unless ``force``) one that holds rows, is refused."""
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


def _checked_manifest(
    archive: tarfile.TarFile, *, known: set[str], report: RestoreReport
) -> dict[str, Any]:
    """The archive's manifest, with every name and number checked against this release."""
    manifest = _read_manifest(archive)
    check_manifest(manifest, known)
    _check_migrations(manifest)
    report.created_at = str(manifest.get("created_at", ""))
    report.source_database = str(manifest.get("database", ""))
    return manifest
