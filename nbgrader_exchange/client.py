"""The HTTP client of the exchange service: requests, retries, uploads and downloads.

Independent of nbgrader's applications (only ``requests`` and the standard library), so
scripts and benchmarks can drive the service the way the plugin does::

    client = ExchangeClient("http://127.0.0.1:8000", token)
    files = scan_directory(Path("release/ps1"))
    client.upload_bundle("courses/phys101/assignments/ps1/release", files)
    manifest = client.get("courses/phys101/assignments/ps1/release/files")
    client.download_bundle(manifest["files"], Path("ps1"))

Every failure is a :class:`ServiceError` whose message is one sentence naming the server and
what failed. Requests that are safe to repeat are retried with backoff on connection errors
and on 502/503/504; a request that never reached the server is retried whatever its method.
A 429 (a per-person limit) is never retried: its sentence says when to try again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import logging
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
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

API_PREFIX = "api/v1/"
CHUNK_SIZE = 1024 * 1024
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
PROGRESS_THRESHOLD = 4 * 1024 * 1024

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request to the exchange service failed; ``str()`` is one sentence for a person."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# --- local files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its POSIX path in the bundle, size, hash, and where its bytes are."""

    path: str
    size: int
    sha256: str
    source: Path | None = None
    data: bytes | None = None

    def manifest(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}

    def open(self) -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.source is not None
        return open(self.source, "rb")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def entry_from_bytes(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)


def entry_from_file(path: str, source: Path) -> FileEntry:
    return FileEntry(path=path, size=source.stat().st_size, sha256=sha256_of(source), source=source)


def scan_directory(
    root: Path,
    *,
    exclude: Sequence[str] = (),
    include: Sequence[str] = ("*",),
    max_file_size: int | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> list[FileEntry]:
    """The files under ``root`` as nbgrader copies them, with POSIX bundle paths.

    The rules are nbgrader's ``ignore_patterns``: a name matching an ``exclude`` glob is
    skipped (directories too), a file matching no ``include`` glob is skipped, and a file over
    ``max_file_size`` bytes is skipped. ``on_skip(path, reason)`` hears about each skip.
    Symbolic links are followed for files, as ``shutil.copytree`` does.
    """
    entries: list[FileEntry] = []
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        kept = []
        for name in sorted(dirnames):
            if any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
                if on_skip:
                    on_skip(_posix(rel_dir / name), "excluded")
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = _posix(rel_dir / name)
            full = here / name
            if any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
                reason = "excluded"
            elif include and not any(fnmatch.fnmatch(name, pattern) for pattern in include):
                reason = "not included"
            elif not full.is_file():
                reason = "not a regular file"
            elif max_file_size is not None and full.stat().st_size > max_file_size:
                reason = "too large"
            else:
                entries.append(entry_from_file(rel, full))
                continue
            if on_skip:
                on_skip(rel, reason)
    return entries


def _posix(relative: Path) -> str:
    return PurePosixPath(*relative.parts).as_posix()


def local_path(root: Path, posix_path: str) -> Path:
    """Where a bundle's POSIX path lands under ``root``; refuses paths that would leave it."""
    parts = PurePosixPath(posix_path).parts
    if not parts or posix_path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ServiceError(f"The exchange server sent an unsafe file path {posix_path!r}.")
    return Path(root).joinpath(*parts)


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
    """Write ``files`` into ``target`` as a tar.gz; returns how many were written."""
    count = 0
    with tarfile.open(fileobj=target, mode="w:gz", compresslevel=1) as archive:
        for entry in files:
            info = tarfile.TarInfo(entry.path)
            info.size = entry.size
            info.mode = 0o644
            info.mtime = int(time.time())
            with entry.open() as fh:
                archive.addfile(info, fh)
            count += 1
    return count


# --- the client ----------------------------------------------------------------------------


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
        self._lock = threading.Lock()

    def get(self, sha256: str) -> Path | None:
        with self._lock:
            path = self._paths.get(sha256)
        if path is not None and path.is_file():
            return path
        return None

    def add(self, sha256: str, path: Path) -> None:
        with self._lock:
            self._paths.setdefault(sha256, path)

    def moved(self, old_root: Path, new_root: Path) -> None:
        """Files under ``old_root`` now live under ``new_root`` (a staging directory renamed)."""
        with self._lock:
            for sha, path in list(self._paths.items()):
                if path.is_relative_to(old_root):
                    self._paths[sha] = new_root / path.relative_to(old_root)

    def add_directory(self, root: Path) -> None:
        """Offer the files already under ``root`` (hashed now) as sources for later copies."""
        if Path(root).is_dir():
            for entry in scan_directory(Path(root)):
                assert entry.source is not None
                self.add(entry.sha256, entry.source)

    def __contains__(self, sha256: str) -> bool:
        return self.get(sha256) is not None


class ExchangeClient:
    """One user's connection to the exchange service (thread-safe for parallel downloads)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transfer_timeout: float = 600.0,
        retries: int = 3,
        backoff: float = 0.5,
        workers: int = 4,
        report: Callable[[str], None] | None = None,
        progress_threshold: int = PROGRESS_THRESHOLD,
    ) -> None:
        if not url:
            raise ServiceError(
                "No exchange server is configured: set c.Exchange.url in nbgrader_config.py "
                "or the NBGRADER_EXCHANGE_URL environment variable."
            )
        base = url.rstrip("/") + "/"
        if not base.endswith(API_PREFIX):
            base += API_PREFIX
        self.api_url = base
        self.server = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.workers = max(1, workers)
        self.report = report
        self.progress_threshold = progress_threshold
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.workers + 2)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "nbgrader-exchange-plugin"
        self._origin = _origin(self.api_url)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests --------------------------------------------------------------------------

    def url_for(self, path: str) -> str:
        return urljoin(self.api_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        body: MultipartBody | None = None,
        safe: bool | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> requests.Response:
        """Send one request; retry it if safe; raise ServiceError naming ``what`` failed."""
        url = path if "://" in path else self.url_for(path)
        method = method.upper()
        if safe is None:
            safe = method in SAFE_METHODS
        headers: dict[str, str] = {"Accept": "application/json"}
        if self.token and _origin(url) == self._origin:
            headers["Authorization"] = f"token {self.token}"
        data: Any = None
        if body is not None:
            headers["Content-Type"] = body.content_type
            data = body
        attempt = 0
        while True:
            if body is not None:
                body.reset()
            # A request that must not be sent twice goes over a new connection: a kept-alive
            # one may be closed by the server (its idle timeout) just as it is reused, and
            # then nobody can tell whether the request arrived.
            sender = self.session if safe or stream else self._fresh_session()
            try:
                response = sender.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                    stream=stream,
                    timeout=(self.timeout, timeout or self.timeout),
                )
            except requests.RequestException as exc:
                never_sent = _never_sent(exc)
                if attempt < self.retries and (safe or never_sent):
                    attempt += 1
                    self._sleep(attempt, f"{_reason(exc)}")
                    continue
                raise ServiceError(
                    f"Could not {what}: the exchange server at {self.server} "
                    f"{_reason(exc)}. Check the server address (c.Exchange.url or "
                    "NBGRADER_EXCHANGE_URL) or try again in a moment."
                ) from None
            finally:
                if sender is not self.session:
                    sender.close()  # the answer is read already (not streamed)
            if response.status_code in RETRY_STATUSES and safe and attempt < self.retries:
                attempt += 1
                response.close()
                self._sleep(attempt, f"answered {response.status_code}")
                continue
            if response.status_code >= 400:
                raise self._error(response, what)
            return response

    def _fresh_session(self) -> requests.Session:
        """A session like ours but with no connections yet."""
        fresh = requests.Session()
        for name in ("headers", "hooks", "auth", "proxies", "verify", "cert", "trust_env"):
            setattr(fresh, name, getattr(self.session, name))
        return fresh

    def _sleep(self, attempt: int, reason: str) -> None:
        delay = self.backoff * (2 ** (attempt - 1))
        log.debug("exchange server %s %s; retry %d in %.1fs", self.server, reason, attempt, delay)
        time.sleep(delay)

    def _error(self, response: requests.Response, what: str) -> ServiceError:
        status = response.status_code
        code = None
        detail = ""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            code = payload.get("error")
            detail = str(payload.get("detail") or "")
        response.close()
        if status == 401:
            sentence = (
                f"Could not {what}: the exchange server at {self.server} did not accept your "
                "token (check NBGRADER_EXCHANGE_TOKEN, c.Exchange.token or JUPYTERHUB_API_TOKEN)"
            )
        elif status in RETRY_STATUSES:
            sentence = (
                f"Could not {what}: the exchange server at {self.server} is unavailable "
                f"(HTTP {status}); try again in a moment"
            )
        elif status == 429:
            # Never retried here: the person decides, after the wait the server names.
            sentence = f"Could not {what} now: the exchange server at {self.server} said"
            wait = _retry_after(response)
            if not detail:
                detail = "too many requests"
            if wait is not None and "try again" not in detail:
                detail = f"{detail.rstrip('.')}; try again in {wait} seconds"
        else:
            sentence = f"Could not {what}: the exchange server at {self.server} answered {status}"
        if detail:
            sentence += f": {detail.rstrip('.')}"
        return ServiceError(sentence + ".", status=status, code=code)

    def get(self, path: str, *, what: str = "read from the exchange", **params: Any) -> Any:
        """GET a JSON resource."""
        return self._json(self.request("GET", path, what=what, params=params or None), what)

    def post(
        self, path: str, payload: Any, *, what: str = "write to the exchange", safe: bool = False
    ) -> Any:
        response = self.request("POST", path, what=what, json_body=payload, safe=safe)
        return self._json(response, what)

    def _json(self, response: requests.Response, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServiceError(
                f"Could not {what}: {self.server} answered with something that is not the "
                "exchange service's JSON (is the URL right? it should be the service's base URL)."
            ) from None

    def delete(self, path: str, *, what: str = "delete on the exchange", **params: Any) -> None:
        self.request("DELETE", path, what=what, params=params or None)

    # --- bundles ---------------------------------------------------------------------------

    def upload_bundle(
        self,
        path: str,
        files: Sequence[FileEntry],
        *,
        what: str = "upload files",
        fields: dict[str, str] | None = None,
        known_shas: Iterable[str] = (),
    ) -> Any:
        """POST a bundle: the manifest of every file, and an archive of the bytes the server
        lacks (files whose hash is in ``known_shas`` are left out). If the server says it
        lacks some bytes after all (a release changed meanwhile), the upload is sent once
        more with every file."""
        known = set(known_shas)
        try:
            return self._upload(path, files, known, what=what, fields=fields or {})
        except ServiceError as exc:
            if exc.code == "missing_file" and known:
                return self._upload(path, files, set(), what=what, fields=fields or {})
            raise

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
        with tempfile.TemporaryFile(prefix="nbgrader-exchange-") as spool:
            archive = None
            if to_send:
                write_archive(to_send.values(), spool)
                archive = spool
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
        distinct hash is downloaded once, in parallel. ``skip(path)`` leaves a file out.
        """
        cache = cache if cache is not None else BlobCache()
        stats = stats if stats is not None else DownloadStats()
        wanted = [f for f in files if not (skip and skip(f["path"]))]
        targets = [(f, local_path(dest, f["path"])) for f in wanted]
        first: dict[str, tuple[dict[str, Any], Path]] = {}
        for entry, target in targets:
            if entry["sha256"] not in cache:
                first.setdefault(entry["sha256"], (entry, target))
        total = sum(entry["size"] for entry, _ in first.values())
        progress = Progress("Downloaded", total, self.report, self.progress_threshold)

        def fetch(item: tuple[dict[str, Any], Path]) -> None:
            entry, target = item
            self._download_file(entry, target, what=what, progress=progress)
            cache.add(entry["sha256"], target)
            with stats.lock:
                stats.downloaded_files += 1
                stats.downloaded_bytes += entry["size"]

        if first:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(first))) as pool:
                list(pool.map(fetch, first.values()))
        written = []
        for entry, target in targets:
            source = cache.get(entry["sha256"])
            if source is None:  # the cached copy vanished meanwhile
                fetch((entry, target))
            elif source != target:
                _copy_file(source, target, entry)
                with stats.lock:
                    stats.reused_files += 1
            written.append(target)
        stats.files += len(written)
        return written

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
                    self._sleep(attempt, _reason(exc))
                    continue
                raise ServiceError(
                    f"Could not {what}: the download of {entry['path']!r} from the exchange "
                    f"server at {self.server} broke off ({_reason(exc)})."
                ) from None
            finally:
                response.close()
                if os.path.exists(partial):
                    os.unlink(partial)


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


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _retry_after(response: requests.Response) -> int | None:
    """The seconds of a ``Retry-After: <seconds>`` header, or None."""
    raw = response.headers.get("Retry-After", "").strip()
    return int(raw) if raw.isdigit() else None


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request failed before any byte reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "did not answer in time (connection timed out)"
    if isinstance(exc, requests.Timeout):
        return "did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text:
            return "is not reachable (connection refused)"
        if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
            return "is not reachable (unknown host name)"
        return "is not reachable (the connection failed)"
    return f"could not be reached ({type(exc).__name__})"
