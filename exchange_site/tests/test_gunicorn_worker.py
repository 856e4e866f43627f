"""gunicorn's thread worker as the service runs it (``exchange_site/gunicorn_worker.py``),
with real gunicorn processes serving a small application that sleeps on request: a new
connection is served by a worker with a thread free instead of waiting behind a busy one, a
worker that was full takes connections again as soon as a thread is done, and a connection
the worker keeps alive is still served by it while it is full."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from exchange_site import gunicorn_conf
from tests.harness import BIN, REPO
from tests.harness.live import worker_options
from tests.harness.ports import free_port
from tests.harness.process import ManagedProcess

pytestmark = pytest.mark.sqlite_only  # no database: once is enough


class SleepyServer(ManagedProcess):
    """gunicorn on 127.0.0.1 serving ``sleepy_wsgi`` with the service's worker class."""

    kind = "gunicorn (sleepy_wsgi)"

    def __init__(self, directory: Path, *, workers: int, threads: int) -> None:
        self.directory = directory
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = directory / "gunicorn.log"

    def command(self) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "exchange_site.tests.sleepy_wsgi:app",
            "--chdir",
            str(REPO),
            "--bind",
            f"127.0.0.1:{self.port}",
            *worker_options(self.workers, self.threads),
            "--keep-alive",
            str(gunicorn_conf.keepalive),
        ]

    def environment(self) -> dict[str, str]:
        return {"SLEEPY_DIR": str(self.directory), "PATH": str(BIN)}

    def is_ready(self) -> bool:
        if len(list(self.directory.glob("ready-*"))) < self.workers:
            return False  # a worker has not loaded the application yet
        self.get()  # raises (not ready yet) until the server answers
        return True

    def get(self, sleep: float = 0, session: Any = requests) -> tuple[int, float]:
        """The pid that answered a request sleeping ``sleep`` s, and when the answer came."""
        answer = session.get(self.url, params={"sleep": sleep}, timeout=30)
        answer.raise_for_status()
        return int(answer.text), time.monotonic()

    def busy_pids(self) -> set[int]:
        """The pids of the workers serving a sleeping request now."""
        return {int(busy.name.removeprefix("busy-")) for busy in self.directory.glob("busy-*")}


def sleeping(server: SleepyServer, pool: ThreadPoolExecutor, seconds: float) -> Future:
    """A request sleeping ``seconds``, started on its own connection; returns once it is
    being served (its future gives the pid and when it was answered)."""
    before = server.busy_pids()
    future = pool.submit(server.get, seconds)
    deadline = time.monotonic() + 10
    while server.busy_pids() <= before:
        assert time.monotonic() < deadline, "the request was not served within 10 s"
        time.sleep(0.01)
    return future


def test_a_new_connection_goes_to_a_worker_with_a_thread_free(tmp_path: Path) -> None:
    """Two workers of one thread. While one serves a 3 s request, twenty requests on new
    connections are each answered at once by the other, and a second 3 s request is served
    by the other at once, not queued behind the first (gunicorn's own thread worker hands a
    connection to whichever worker the kernel wakes, often the busy one). With both busy, a
    request waits and is answered when the first worker is done."""
    with SleepyServer(tmp_path, workers=2, threads=1) as server, ThreadPoolExecutor(2) as pool:
        first = sleeping(server, pool, 3)
        (busy,) = server.busy_pids()
        started = time.monotonic()
        answers = [server.get() for _ in range(20)]
        assert busy not in {pid for pid, _ in answers}
        assert answers[-1][1] - started < 2
        second = sleeping(server, pool, 3)  # fails here if it waits behind the first
        assert len(server.busy_pids()) == 2
        pid, answered = server.get()  # waits for the first worker, the first one free
        assert pid == busy
        assert answered - first.result()[1] < 0.4
        assert second.result()[0] != busy


def test_a_full_worker_takes_connections_again_as_soon_as_a_thread_is_free(
    tmp_path: Path,
) -> None:
    """One worker of one thread: a request on a new connection while it serves another
    waits (in the kernel's listen queue), and is answered right after the first, not when
    the worker's main loop next looks (which may be a second later); a connection the
    worker keeps alive is still served by it while it is full."""
    with SleepyServer(tmp_path, workers=1, threads=1) as server, ThreadPoolExecutor(1) as pool:
        for _ in range(4):
            slow = sleeping(server, pool, 0.5)
            _, answered = server.get()
            _, slow_answered = slow.result()
            assert answered - slow_answered < 0.4
        with requests.Session() as kept:
            server.get(session=kept)  # the connection is kept alive
            slow = sleeping(server, pool, 0.5)
            _, answered = server.get(session=kept)
            _, slow_answered = slow.result()
            assert answered - slow_answered < 0.4
