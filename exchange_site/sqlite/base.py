"""Django's SQLite backend, with write transactions that queue in line.

SQLite lets one writer in at a time. A connection that finds the database locked sleeps in
SQLite's busy handler and tries again after 1, 2, 5, 10, 15, 20, 25 ... up to 100 ms, so
under a deadline rush a waiting submit slept long after the lock was free: in a rush of 200
submits, 16 at once, ``BEGIN IMMEDIATE`` waited 0.05 ms at the median but 109 ms at the
95th percentile and up to 938 ms, for transactions that hold the lock a few milliseconds
(bench/RESULTS.md, "Write transactions in line").

Here a write transaction (``transaction.atomic``, which begins with ``BEGIN IMMEDIATE``)
first takes the service's own writer lock, held until it commits, rolls back or closes: a
thread lock among one process's threads, which hands over as soon as it is released, and an
``flock(2)`` on a file beside the database among processes (the gunicorn workers,
``manage.py`` commands), tried every half to two milliseconds. The file is
``<database>.writers-lock``, beside ``courses/storage_locks.py``'s own. A writer that cannot
have the lock within the database's ``timeout`` gets SQLite's own error, "database is
locked". SQLite's locking is unchanged beneath it: a writer that does not take this lock (a
statement outside ``atomic``, another program) still waits in the busy handler. An
in-memory database (the test suite's) is private to its process and takes no lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

# How long a writer waiting on another process sleeps between tries, at first and at most.
FIRST_PAUSE = 0.0005
LONGEST_PAUSE = 0.002


class WriterLock:
    """One database's writer lock in this process: its threads in line, then the file's
    ``flock`` among processes."""

    def __init__(self, database: str) -> None:
        self.path = f"{database}.writers-lock"
        self.threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the lock; ``OperationalError`` after that."""
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=max(timeout, 0)):
            raise OperationalError("database is locked")
        try:
            self._lock_file(deadline)
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _lock_file(self, deadline: float) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)


_locks: dict[tuple[int, str], WriterLock] = {}
_locks_guard = threading.Lock()


def writer_lock(database: str) -> WriterLock:
    """The process's lock for ``database``: one per process, so a worker forked from a
    process that had one makes its own (a lock file's description shared across a fork
    would let both in at once)."""
    key = (os.getpid(), os.path.abspath(database))
    with _locks_guard:
        found = _locks.get(key)
        if found is None:
            found = _locks[key] = WriterLock(key[1])
        return found


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer: WriterLock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self.is_in_memory_db():
            super()._start_transaction_under_autocommit()
            return
        lock = writer_lock(self.settings_dict["NAME"])
        lock.acquire(float(self.settings_dict["OPTIONS"].get("timeout", 5)))
        self._writer = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        lock, self._writer = self._writer, None
        if lock is not None:
            lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_writer()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_writer()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_writer()
