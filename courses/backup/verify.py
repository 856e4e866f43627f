"""Restore's checks before it writes anything: the archive opens, its manifest is an
exchange backup's with sane names and numbers, the target has the migrations it needs."""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from . import s3
from .dump import _applied_migrations
from .tables import FORMAT, MANIFEST, VERSION, BackupError, _label, backup_models


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


def _open_source(source: Path | str | None, stream: IO[bytes] | None) -> tarfile.TarFile:
    """The archive to read front to back: a file, an ``s3://`` object or a stream."""
    if stream is not None:
        name = "The archive on standard input"
        opener = lambda: tarfile.open(fileobj=stream, mode="r|*")  # noqa: E731
    elif str(source).startswith("s3://"):
        location = s3.parse_s3_url(str(source))
        client = s3.s3_client()
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
