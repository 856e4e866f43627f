"""Restore's middle step: every file after the manifest, read once front to back and checked
against it. Table files are copied into a work directory with their SHA-256 checked; blobs
are staged, checked and put into storage (several at once on an object store)."""

from __future__ import annotations

import tarfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from .. import blobstore
from ..models import blob_storage_name
from ..progress import Progress
from ..storage_locks import io_threads
from .tables import MANIFEST, BackupError, RestoreReport


def stage_members(
    archive: tarfile.TarFile,
    manifest: dict[str, Any],
    *,
    work: Path,
    report: RestoreReport,
    progress: Progress,
) -> None:
    """Verify and store every file the (checked) manifest lists; BackupError for a damaged,
    unexpected or missing one."""
    tables = {table["file"]: table for table in manifest["tables"]}
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
                _stage_table(member.name, handle, tables[member.name], work)
                seen_tables.add(member.name)
            elif member.name.startswith("blobs/"):
                sha = member.name.rsplit("/", 1)[-1]
                puts.submit(_stage_blob(sha, member, handle, expected_blobs))
                seen_blobs.add(sha)
                report.blobs += 1
                report.blob_bytes += member.size
                if report.blobs % 500 == 0:
                    progress(f"  {report.blobs}/{len(expected_blobs)} blobs")
            else:
                raise BackupError(f"The backup holds an unexpected file {member.name}.")
    lost = sorted(set(tables) - seen_tables) + sorted(expected_blobs - seen_blobs)
    if lost:
        raise BackupError(
            f"The backup is incomplete: {len(lost)} file(s) listed in its manifest are "
            f"missing (first: {lost[0]}). Nothing was restored."
        )


def _stage_table(name: str, handle: IO[bytes], table: dict[str, Any], work: Path) -> None:
    """Copy one table file into ``work``, refusing it unless its SHA-256 is the manifest's."""
    with (work / f"{table['model']}.jsonl").open("wb") as out:
        sha, _ = blobstore.hash_copy(handle, out)
    if sha != table["sha256"]:
        raise BackupError(
            f"{name} in the backup is damaged: its SHA-256 is {sha}, "
            f"the manifest says {table['sha256']}. Nothing was restored."
        )


def _stage_blob(
    sha: str, member: tarfile.TarInfo, handle: IO[bytes], expected: set[str]
) -> blobstore.StagedFile:
    """Stage one blob's bytes, refusing a blob the manifest does not list or whose bytes do
    not hash to its name."""
    if sha not in expected or member.name != blob_storage_name(sha):
        raise BackupError(f"The backup holds an unexpected file {member.name}.")
    staged = blobstore.stage(handle)
    if staged.sha256 != sha or staged.size != member.size:
        blobstore.discard(staged)
        raise BackupError(
            f"Blob {sha} in the backup is damaged: its {staged.size} bytes "
            f"hash to {staged.sha256}. Nothing was restored to the database."
        )
    return staged


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
