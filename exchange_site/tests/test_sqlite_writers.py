"""The SQLite backend's writer lock (exchange_site/sqlite/base.py): write transactions wait
for it in line, across threads and processes, and every way a transaction ends gives it
back."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections, transaction
from django.db.utils import ConnectionDoesNotExist, ConnectionHandler, OperationalError

from exchange_site.sqlite import base

ALIAS = "writers"


def connect(database: str | Path, timeout: float = 5.0) -> base.DatabaseWrapper:
    """This thread's connection to ``database`` under ``ALIAS``, as settings.py sets it up."""
    settings = {
        "ENGINE": "exchange_site.sqlite",
        "NAME": str(database),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": timeout,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
    handler = ConnectionHandler({"default": settings, ALIAS: settings})
    connection = handler[ALIAS]
    connections[ALIAS] = connection
    return connection


def insert(name: str) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO note (name) VALUES (%s)", [name])


def names(database: Path) -> list[str]:
    with sqlite3.connect(database) as plain:
        return [row[0] for row in plain.execute("SELECT name FROM note ORDER BY id")]


def file_locked(database: Path) -> bool:
    """Whether someone holds the writers' lock file (flock: a second open of it conflicts
    even within this process)."""
    fd = os.open(f"{database}.writers-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def database(tmp_path: Path, django_db_blocker) -> Iterator[Path]:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as plain:
        plain.execute("PRAGMA journal_mode=WAL")
        plain.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, name TEXT)")
    with django_db_blocker.unblock():
        yield path
        try:
            connection = connections[ALIAS]
        except ConnectionDoesNotExist:  # only other threads connected
            return
        connection.close()
        del connections[ALIAS]


def test_a_writer_waits_for_another_process_holding_the_lock(database):
    # SQLite itself is free: only the lock file, held by another process, keeps the
    # transaction out, until its timeout; nothing is written. Once released, it goes in.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n",
            f"{database}.writers-lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        connect(database, timeout=0.3)
        with pytest.raises(OperationalError, match="database is locked"):
            with transaction.atomic(using=ALIAS):
                insert("while held")
        assert names(database) == []
        assert not base.writer_lock(str(database)).threads.locked()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        with transaction.atomic(using=ALIAS):
            insert("after")
        assert names(database) == ["after"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_threads_queue_and_the_next_goes_in_when_the_holder_commits(database):
    first_in, first_may_commit, second_in = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer(name: str, entered: threading.Event, wait: threading.Event | None) -> None:
        try:
            connect(database)
            with transaction.atomic(using=ALIAS):
                insert(name)
                entered.set()
                if wait is not None:
                    assert wait.wait(30)
        except BaseException as exc:  # the test thread reports it
            errors.append(exc)
        finally:
            connections[ALIAS].close()

    first = threading.Thread(target=writer, args=("first", first_in, first_may_commit))
    second = threading.Thread(target=writer, args=("second", second_in, None))
    first.start()
    assert first_in.wait(30)
    assert file_locked(database)
    second.start()
    # The second waits behind the first's lock, and does not give up on its own.
    assert not second_in.wait(0.3)
    first_may_commit.set()
    assert second_in.wait(30)
    first.join(30)
    second.join(30)
    assert errors == []
    assert names(database) == ["first", "second"]
    assert not file_locked(database)
    assert not base.writer_lock(str(database)).threads.locked()


def test_a_rollback_and_a_close_give_the_lock_back(database):
    connection = connect(database)
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=ALIAS):
            insert("rolled back")
            assert file_locked(database)
            raise RuntimeError("the view failed")
    assert not file_locked(database)

    # A connection closed in the middle of a transaction (a worker's request cut short).
    with transaction.atomic(using=ALIAS):
        insert("closed")
        assert file_locked(database)
        connection.close()
    assert not file_locked(database)
    assert not base.writer_lock(str(database)).threads.locked()
    assert names(database) == []

    with transaction.atomic(using=ALIAS):
        insert("kept")
    assert names(database) == ["kept"]


def test_a_begin_that_fails_gives_the_lock_back(database):
    # Another program, not taking the lock, holds SQLite's: BEGIN IMMEDIATE gives up after
    # the timeout, and the service's lock is free again for the next writer.
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        connect(database, timeout=0.2)
        with pytest.raises(OperationalError, match="locked"):
            with transaction.atomic(using=ALIAS):
                insert("refused")
        assert not file_locked(database)
        assert not base.writer_lock(str(database)).threads.locked()
    finally:
        other.execute("ROLLBACK")
        other.close()
    with transaction.atomic(using=ALIAS):
        insert("after")
    assert names(database) == ["after"]


def test_an_in_memory_database_takes_no_lock(tmp_path, monkeypatch, django_db_blocker):
    monkeypatch.chdir(tmp_path)
    with django_db_blocker.unblock():
        connection = connect(":memory:")
        try:
            with transaction.atomic(using=ALIAS):
                with connection.cursor() as cursor:
                    cursor.execute("CREATE TABLE note (name TEXT)")
                    cursor.execute("INSERT INTO note VALUES ('x')")
            assert list(tmp_path.iterdir()) == []
        finally:
            del connections[ALIAS]


def test_each_process_has_its_own_lock(monkeypatch, tmp_path):
    # A worker forked after its parent made a lock must not share the parent's open lock
    # file (one flock for both) nor its thread lock.
    database = str(tmp_path / "db.sqlite3")
    parents = base.writer_lock(database)
    assert base.writer_lock(database) is parents
    monkeypatch.setattr(base.os, "getpid", lambda: os.getppid() + 100_000)
    assert base.writer_lock(database) is not parents


def test_waiting_on_another_process_sleeps_briefly(monkeypatch, tmp_path):
    # The file lock is tried again after half a millisecond, then at most every two:
    # a writer behind another process's goes in within 2 ms of its release.
    pauses: list[float] = []
    database = tmp_path / "db.sqlite3"
    holder = os.open(f"{database}.writers-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            os.close(holder)  # released: the next try has it

    monkeypatch.setattr(base.time, "sleep", sleep)
    lock = base.WriterLock(str(database))
    lock.acquire(timeout=30)
    try:
        assert pauses == [0.0005, 0.001, 0.002, 0.002, 0.002, 0.002]
    finally:
        lock.release()
