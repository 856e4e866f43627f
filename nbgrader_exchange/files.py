"""Local files of a bundle: scanning a directory, file entries with their hashes, safe paths.

The rules are nbgrader's (``ignore_patterns``, ``max_file_size``); a path the server sends is
checked before anything is written under it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .errors import ServiceError

CHUNK_SIZE = 1024 * 1024


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


def folder_name(value: Any, what: str) -> str:
    """``value`` (a student's name, a timestamp) as the one folder name the server meant, or
    ServiceError: a name the server sends never places files outside the folder they belong
    in (``..``, a slash, a Windows drive)."""
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or any(ch in value for ch in "/\\\0")
        or value[1:2] == ":"
    ):
        raise ServiceError(
            f"The exchange server sent {what} {value!r}, which is not a folder name."
        )
    return value


def local_path(root: Path, posix_path: str) -> Path:
    """Where a bundle's POSIX path lands under ``root``; refuses paths that would leave it."""
    parts = PurePosixPath(posix_path).parts
    target = Path(root).joinpath(*parts)
    # On Windows a part such as "D:x" starts the path over on another drive.
    if (
        not parts
        or posix_path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or not target.is_relative_to(root)
    ):
        raise ServiceError(f"The exchange server sent an unsafe file path {posix_path!r}.")
    return target
