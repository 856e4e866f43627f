"""Files with user data are private to the service's own account.

Submissions, rosters and backups are personal data: files the exchange creates are 0600 and
its directories 0700, whatever the process umask (a container's default 022 would make
them world-readable). Django's storage gets the same modes through ``FILE_UPLOAD_PERMISSIONS``
and ``FILE_UPLOAD_DIRECTORY_PERMISSIONS``; the SQLite database is made private when the
first connection opens it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# SQLite's side files: the rollback journal, the write-ahead log and its shared memory.
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` whose new directories are 0700 (existing ones are left as they are)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made at the same moment by another upload
        os.chmod(directory, PRIVATE_DIR)


def write_private_text(path: Path | str, text: str) -> None:
    """Write text to a file that only the owner can read (an existing file becomes so)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def make_sqlite_private(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On every new connection (``connection_created``): the SQLite database file and its
    side files are 0600. SQLite gives a new journal the database file's mode, so after the
    first connection every later file starts private."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    name = str(connection.settings_dict["NAME"])
    for path in (name, *(name + suffix for suffix in SQLITE_SIDE_FILES)):
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, PRIVATE_FILE)
        except FileNotFoundError:
            continue
