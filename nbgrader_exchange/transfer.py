"""Moving bundles: the multipart upload body, the tar.gz archive, progress, the blob cache.

``BundleTransfers`` is mixed into :class:`~nbgrader_exchange.client.ExchangeClient`: its
uploads and downloads send their requests through the client's ``request`` (retries, errors).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import requests

from . import archive_download
from .errors import ServiceError, failure_reason
from .files import CHUNK_SIZE, FileEntry, local_path, scan_directory
from .gzipper import SAMPLE_SIZE, GzipWriter, level_for

PROGRESS_THRESHOLD = 4 * 1024 * 1024
# An upload's archive is written in memory up to this size, then on disk: a submission's
# notebooks never touch the disk (nor need a writable temporary directory), a data set
# of gigabytes never sits in memory.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


def spool() -> IO[bytes]:
    """Where an upload's archive is written before it is sent (read back from the start)."""
    return tempfile.SpooledTemporaryFile(  # type: ignore[return-value]
        max_size=SPOOL_IN_MEMORY, prefix="nbgrader-exchange-"
    )


# --- progress ------------------------------------------------------------------------------


class Progress:
    """Reports a transfer's progress about every 10% (or 5 seconds), for transfers big enough."""

    def __init__(
        self,
        verb: str,
        total: int,
        report: Callable[[str], None] | None,
        threshold: int = PROGRESS_THRESHOLD,
    ) -> None:
        self.verb = verb
        self.total = total
        self.done = 0
        self._report = report if report is not None and total >= threshold else None
        self._lock = threading.Lock()
        self._next_step = 10
        self._last = time.monotonic()

    def add(self, count: int) -> None:
        if not count:
            return
        with self._lock:
            self.done += count
            if self._report is None:
                return
            percent = int(100 * self.done / self.total) if self.total else 100
            now = time.monotonic()
            if percent >= self._next_step or now - self._last >= 5:
                self._next_step = (percent // 10 + 1) * 10
                self._last = now
                self._report(
                    f"{self.verb} {_mb(self.done)} of {_mb(self.total)} MB ({min(percent, 100)}%)"
                )


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f}"


# --- the upload body -----------------------------------------------------------------------


class MultipartBody:
    """A ``multipart/form-data`` body read from disk in chunks, so uploads never sit in memory.

    Has a length, so requests sends ``Content-Length``; counts bytes into a Progress.
    """

    def __init__(
        self, fields: dict[str, str], archive: IO[bytes] | None, progress: Progress | None
    ) -> None:
        self.boundary = uuid.uuid4().hex
        head = io.BytesIO()
        for name, value in fields.items():
            head.write(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                f"Content-Type: text/plain; charset=utf-8\r\n\r\n".encode()
            )
            head.write(value.encode("utf-8") + b"\r\n")
        self._archive = archive
        archive_size = 0
        if archive is not None:
            archive.seek(0, os.SEEK_END)
            archive_size = archive.tell()
            # The archive is the last part: the server may read it as it arrives instead
            # of spooling the body first (servers that do not know the field ignore it).
            head.write(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="archive_last"'
                "\r\n\r\ntrue\r\n".encode()
            )
            head.write(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="archive"; '
                f'filename="bundle.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'.encode()
            )
            tail = f"\r\n--{self.boundary}--\r\n".encode()
        else:
            tail = f"--{self.boundary}--\r\n".encode()
        self._head = head.getvalue()
        self._tail = tail
        self._length = len(self._head) + archive_size + len(self._tail)
        self._progress = progress
        self.reset()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def reset(self) -> None:
        self._parts: list[IO[bytes]] = [io.BytesIO(self._head)]
        if self._archive is not None:
            self._archive.seek(0)
            self._parts.append(self._archive)
        self._parts.append(io.BytesIO(self._tail))

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        size = CHUNK_SIZE if size is None or size < 0 else size
        while self._parts:
            data = self._parts[0].read(size)
            if data:
                if self._progress is not None:
                    self._progress.add(len(data))
                return data
            self._parts.pop(0)
        return b""

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk


def write_archive(files: Iterable[FileEntry], target: IO[bytes]) -> int:
    """Write ``files`` into ``target`` as a tar.gz, each file compressed only if it shrinks
    (gzipper.py); returns how many were written."""
    count = 0
    gz = GzipWriter(target)
    with tarfile.open(fileobj=gz, mode="w") as archive:  # type: ignore[call-overload]
        for entry in files:
            info = tarfile.TarInfo(entry.path)
            info.size = entry.size
            info.mode = 0o644
            info.mtime = int(time.time())
            with entry.open() as fh:
                gz.level = level_for(fh.read(SAMPLE_SIZE), entry.size)
                fh.seek(0)
                archive.addfile(info, fh)
            count += 1
    gz.close()
    return count


@dataclass
class DownloadStats:
    """What a run of downloads did: files written, bytes fetched, bytes reused locally."""

    files: int = 0
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    reused_files: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class BlobCache:
    """Verified local copies of files by SHA-256, so one run downloads each distinct file once."""

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}
        self._shas: dict[Path, str] = {}  # the other way round, for ``moved``
        self._under_way: dict[str, threading.Event] = {}  # downloads of bundles at once
        self._lock = threading.Lock()

    def claim(self, sha256: str) -> threading.Event | None:
        """None: the caller downloads ``sha256`` and calls ``settle`` when it is done,
        whether it succeeded or not. Otherwise another download (a bundle downloaded at the
        same time) is fetching it: the event is set when that one is settled."""
        with self._lock:
            under_way = self._under_way.get(sha256)
            if under_way is None:
                self._under_way[sha256] = threading.Event()
            return under_way

    def settle(self, sha256: str) -> None:
        with self._lock:
            under_way = self._under_way.pop(sha256, None)
        if under_way is not None:
            under_way.set()

    def get(self, sha256: str) -> Path | None:
        with self._lock:  # not while ``rename`` moves it
            path = self._paths.get(sha256)
            if path is not None and path.is_file():
                return path
        return None

    def add(self, sha256: str, path: Path) -> None:
        with self._lock:
            if sha256 not in self._paths:
                self._paths[sha256] = path
                self._shas[path] = sha256

    def moved(self, old_root: Path, new_root: Path, paths: Iterable[Path]) -> None:
        """The files ``paths``, written under ``old_root``, now live under ``new_root`` (a
        staging directory renamed). Only those are looked up: a collect of N students does
        this once per student (through ``rename``), and going through the whole cache each
        time made the collect's bookkeeping grow with N squared (36 s of CPU at N=2000)."""
        with self._lock:
            self._moved(old_root, new_root, paths)

    def rename(self, old_root: Path, new_root: Path, paths: Iterable[Path]) -> None:
        """``old_root`` renamed to ``new_root`` and ``moved`` told, in one step: a bundle
        downloading at the same time finds each file under one name or the other."""
        with self._lock:
            old_root.rename(new_root)
            self._moved(old_root, new_root, paths)

    def _moved(self, old_root: Path, new_root: Path, paths: Iterable[Path]) -> None:
        for path in paths:
            sha = self._shas.pop(path, None)
            if sha is None:
                continue
            moved_to = new_root / path.relative_to(old_root)
            self._paths[sha] = moved_to
            self._shas[moved_to] = sha

    def add_directory(self, root: Path) -> None:
        """Offer the files already under ``root`` (hashed now) as sources for later copies."""
        if Path(root).is_dir():
            for entry in scan_directory(Path(root)):
                assert entry.source is not None
                self.add(entry.sha256, entry.source)

    def __contains__(self, sha256: str) -> bool:
        return self.get(sha256) is not None


class BundleTransfers:
    """Upload and download of whole bundles, for a client that has ``request`` and ``_json``."""

    api_url: str
    server: str
    transfer_timeout: float
    retries: int
    workers: int
    report: Callable[[str], None] | None
    progress_threshold: int

    def upload_bundle(
        self,
        path: str,
        files: Sequence[FileEntry],
        *,
        what: str = "upload files",
        fields: dict[str, str] | None = None,
        known_shas: Iterable[str] = (),
        known_again: Callable[[], Iterable[str]] | None = None,
    ) -> Any:
        """POST a bundle: the manifest of every file, and an archive of the bytes the server
        lacks (files whose hash is in ``known_shas`` are left out). If the server says it
        lacks some bytes after all (a release changed meanwhile), the upload is sent again:
        leaving out the hashes ``known_again`` gives then (asked once), else, or if the
        server still lacks some, with every file."""
        known = set(known_shas)
        while True:
            try:
                return self._upload(path, files, known, what=what, fields=fields or {})
            except ServiceError as exc:
                if exc.code != "missing_file" or not known:
                    raise
            known = set(known_again()) if known_again is not None else set()
            known_again = None

    def _upload(
        self,
        path: str,
        files: Sequence[FileEntry],
        known: set[str],
        *,
        what: str,
        fields: dict[str, str],
    ) -> Any:
        manifest = json.dumps([entry.manifest() for entry in files])
        to_send: dict[str, FileEntry] = {}
        for entry in files:
            if entry.sha256 not in known and entry.sha256 not in to_send:
                to_send[entry.sha256] = entry
        with spool() as spooled:
            archive = None
            if to_send:
                write_archive(to_send.values(), spooled)
                archive = spooled
            total = sum(entry.size for entry in to_send.values())
            progress = Progress("Uploaded", total, self.report, self.progress_threshold)
            body = MultipartBody({**fields, "manifest": manifest}, archive, progress)
            progress.total = len(body)
            response = self.request(
                "POST", path, what=what, body=body, timeout=self.transfer_timeout
            )
        return self._json(response, what)

    def download_bundle(
        self,
        files: Sequence[dict[str, Any]],
        dest: Path,
        *,
        what: str = "download files",
        cache: BlobCache | None = None,
        skip: Callable[[str], bool] | None = None,
        stats: DownloadStats | None = None,
    ) -> list[Path]:
        """Write a bundle's files under ``dest``, checking each file's size and SHA-256.

        ``files`` are the manifest entries (``path``, ``size``, ``sha256``, ``url``). A file
        whose hash is in ``cache`` is copied from there instead of downloaded, and each
        distinct hash is downloaded once, in parallel: small files in archives of many when
        the entries offer an ``archive_url`` (archive_download.py), others one by one.
        ``skip(path)`` leaves a file out.
        """
        cache = cache if cache is not None else BlobCache()
        stats = stats if stats is not None else DownloadStats()
        wanted = [f for f in files if not (skip and skip(f["path"]))]
        targets = [(f, local_path(dest, f["path"])) for f in wanted]
        first: dict[str, tuple[dict[str, Any], Path]] = {}
        elsewhere: list[threading.Event] = []  # files another bundle is downloading now
        for entry, target in targets:
            sha = entry["sha256"]
            if sha in first or sha in cache:
                continue
            under_way = cache.claim(sha)
            if under_way is None:
                first[sha] = (entry, target)
            else:
                elsewhere.append(under_way)
        try:
            self._download_all(list(first.values()), what=what, cache=cache, stats=stats)
        finally:
            for sha in first:
                cache.settle(sha)
        for under_way in elsewhere:
            under_way.wait()
        written = []
        for entry, target in targets:
            if not _copy_cached(entry, target, cache, stats):
                # The cached copy vanished meanwhile, or its download elsewhere failed.
                self._download_all([(entry, target)], what=what, cache=cache, stats=stats)
            written.append(target)
        with stats.lock:
            stats.files += len(written)
        return written

    def _download_all(
        self,
        items: list[tuple[dict[str, Any], Path]],
        *,
        what: str,
        cache: BlobCache,
        stats: DownloadStats,
    ) -> None:
        """Each (entry, target) of ``items`` downloaded to its target, in parallel, and
        offered to ``cache``."""
        total = sum(entry["size"] for entry, _ in items)
        progress = Progress("Downloaded", total, self.report, self.progress_threshold)

        def fetch(item: tuple[dict[str, Any], Path]) -> None:
            entry, target = item
            if "content" in entry:  # the bytes came with the manifest (``?inline=true``)
                archive_download.write_inline(self.server, item, what=what, progress=progress)
            else:
                self._download_file(entry, target, what=what, progress=progress)
            placed(item)

        def placed(item: tuple[dict[str, Any], Path]) -> None:
            cache.add(item[0]["sha256"], item[1])
            with stats.lock:
                stats.downloaded_files += 1
                stats.downloaded_bytes += item[0]["size"]

        # Files whose bytes came with the manifest are written at once; other small files
        # come in archives of many (when the server offers it), large ones alone.
        for item in [item for item in items if "content" in item[0]]:
            fetch(item)
        batches, single = archive_download.split(item for item in items if "content" not in item[0])
        jobs: list[Callable[[], None]] = [
            partial(
                archive_download.download_batch,
                self,
                batch,
                what=what,
                on_file=placed,
                progress=progress,
            )
            for batch in batches
        ]
        jobs += [partial(fetch, item) for item in single]
        if len(jobs) == 1:
            jobs[0]()
        elif jobs:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
                list(pool.map(lambda job: job(), jobs))

    def download_into_place(
        self,
        files: Sequence[dict[str, Any]],
        dest: Path,
        *,
        what: str,
        cache: BlobCache,
        stats: DownloadStats,
        also: dict[str, str] | None = None,
        replace: bool = False,
    ) -> None:
        """``download_bundle`` into a staging directory beside ``dest`` (with the text files
        ``also``), then renamed to ``dest``, replacing it when ``replace``: ``dest`` is whole
        or absent, never half-written. ``cache`` is told where the files went."""
        staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=dest.parent))
        staging.chmod(0o755)
        try:
            written = self.download_bundle(files, staging, what=what, cache=cache, stats=stats)
            for name, text in (also or {}).items():
                (staging / name).write_text(text)
            if replace:
                shutil.rmtree(dest)
            cache.rename(staging, dest, written)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _download_file(
        self, entry: dict[str, Any], target: Path, *, what: str, progress: Progress
    ) -> None:
        url = urljoin(self.api_url, entry["url"])
        target.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            response = self.request(
                "GET", url, what=what, stream=True, timeout=self.transfer_timeout
            )
            digest = hashlib.sha256()
            size = 0
            fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".download-")
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        progress.add(len(chunk))
                if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
                    raise ServiceError(
                        f"Could not {what}: the file {entry['path']!r} from the exchange server "
                        f"at {self.server} is damaged ({size} bytes, expected {entry['size']}, "
                        "or its SHA-256 does not match)."
                    )
                os.replace(partial, target)
                return
            except requests.RequestException as exc:
                if attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, failure_reason(exc))
                    continue
                raise ServiceError(
                    f"Could not {what}: the download of {entry['path']!r} from the exchange "
                    f"server at {self.server} broke off ({failure_reason(exc)})."
                ) from None
            finally:
                response.close()
                if os.path.exists(partial):
                    os.unlink(partial)


def _copy_cached(
    entry: dict[str, Any], target: Path, cache: BlobCache, stats: DownloadStats
) -> bool:
    """``target`` written from the cache's copy of ``entry``; False if it has none."""
    for _ in range(2):  # a copy may move once: another bundle's staging renamed into place
        source = cache.get(entry["sha256"])
        if source is None:
            return False
        if source == target:
            return True
        try:
            _copy_file(source, target, entry)
        except FileNotFoundError:
            continue
        with stats.lock:
            stats.reused_files += 1
        return True
    return False


def _copy_file(source: Path, target: Path, entry: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".copy-")
    os.close(fd)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
