"""Backups in S3: one multipart upload per archive, and pruning old archives."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import blobstore
from ..progress import Progress, quiet
from .dump import BackupReport, archive_name, backup_to_stream
from .tables import ARCHIVE_PREFIX, ARCHIVE_SUFFIX, BackupError

# S3 multipart parts: at least 5 MiB each (S3's minimum), held in memory one at a time.
S3_PART_SIZE = 16 * 1024 * 1024


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


def backup_to_s3(*, url: str, progress: Progress = quiet) -> BackupReport:
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


def prune(*, target: str, keep: int, progress: Progress = quiet) -> list[str]:
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
