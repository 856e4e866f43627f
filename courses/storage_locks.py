"""The collection lock keeps a collection, uploads and backups from crossing:

- ``gc_guard()`` (inside a transaction): uploads hold it shared while they record a bundle,
  until their transaction ends. On PostgreSQL it is a transaction-scoped advisory lock; on
  SQLite every write transaction already runs alone (``BEGIN IMMEDIATE``), which is enough.
- ``gc_reader_lock()`` (outside a transaction): backups hold it shared for their whole run,
  taken *before* their snapshot: a PostgreSQL session-level advisory lock, or on SQLite an
  ``flock`` on a file beside the database.
- ``gc_blobs`` takes both exclusively, only by trying (never queueing: a queued exclusive
  request would hold up every upload behind it while a long backup runs).
- ``collector_lock()``: held by a collection for its whole run, so collections run one at a
  time (the record of collections, ``courses/collection_epoch.py``, relies on it). A second
  collection is refused at once.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from . import blobstore
from .exceptions import Unavailable

# Arbitrary constant naming the collection lock among PostgreSQL advisory locks.
GC_LOCK_KEY = 7_307_211_042
GC_RUN_LOCK_KEY = 7_307_211_043
GC_LOCK_WAIT_SECONDS = 600
IO_THREADS = 8


def _busy() -> Unavailable:
    return Unavailable(
        f"A backup or uploads held the storage lock for {GC_LOCK_WAIT_SECONDS} seconds; "
        "run gc_blobs again later."
    )


@contextmanager
def gc_guard(*, exclusive: bool = False) -> Iterator[None]:
    """Inside a transaction: hold the collection lock until the transaction ends
    (PostgreSQL advisory, transaction-scoped; SQLite's write transactions run one at a time).

    Uploads hold it shared; a collection takes it exclusively but only by trying.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if not exclusive:
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [GC_LOCK_KEY])
            else:
                deadline = time.monotonic() + GC_LOCK_WAIT_SECONDS
                while True:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [GC_LOCK_KEY])
                    if cursor.fetchone()[0]:
                        break
                    if time.monotonic() > deadline:
                        raise _busy()
                    time.sleep(0.2)
    yield


def _lock_file_path(kind: str = "gc") -> Path:
    """The SQLite database's lock file: beside a database file, or per process in the temp
    directory for an in-memory database (tests)."""
    name = str(connection.settings_dict["NAME"])
    if connection.is_in_memory_db():
        return Path(tempfile.gettempdir()) / f"exchange-{kind}-{os.getpid()}.lock"
    return Path(f"{name}.{kind}-lock")


@contextmanager
def _file_lock(*, exclusive: bool) -> Iterator[None]:
    """An ``flock`` on the SQLite database's lock file; exclusive only by trying."""
    path = _lock_file_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if exclusive:
            deadline = time.monotonic() + GC_LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _busy() from None
                    time.sleep(0.2)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing drops the lock


@contextmanager
def gc_reader_lock() -> Iterator[None]:
    """Outside a transaction: hold the collection lock shared until the block ends (backups).

    Taken before the reader's snapshot, so nothing the snapshot references can be removed
    while the reader copies it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock_shared(%s)", [GC_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [GC_LOCK_KEY])
        return
    if connection.vendor == "sqlite":
        with _file_lock(exclusive=False):
            yield
        return
    yield  # pragma: no cover - other databases


def _already_running() -> Unavailable:
    return Unavailable("Another collection is running; run gc_blobs again once it has finished.")


@contextmanager
def collector_lock() -> Iterator[None]:
    """Held for a whole collection, outside its transactions: a PostgreSQL session-level
    advisory lock, or on SQLite an ``flock`` on a second file beside the database. Either
    goes with the collection's process (or connection) when it is killed. Only tried:
    Unavailable when another collection holds it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [GC_RUN_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise _already_running()
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [GC_RUN_LOCK_KEY])
            except DatabaseError:  # pragma: no cover - the lock went with the connection
                pass
        return
    fd = os.open(_lock_file_path("gc-run"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _already_running() from None
        yield
    finally:
        os.close(fd)  # closing drops the lock


@contextmanager
def _collecting() -> Iterator[None]:
    """One transaction of a collection, holding every form of the lock exclusively.

    On SQLite the file lock is taken before ``BEGIN IMMEDIATE``: waiting for a backup while
    holding SQLite's write lock would hold up every upload.
    """
    if connection.vendor == "sqlite":
        with _file_lock(exclusive=True), transaction.atomic():
            yield
        return
    with transaction.atomic(), gc_guard(exclusive=True):
        yield


def io_threads(storage: object) -> int:
    """How many blobs to read or write at once: several for an object store, one on disk."""
    return 1 if blobstore.is_local(storage) else IO_THREADS  # type: ignore[arg-type]
