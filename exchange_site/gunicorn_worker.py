"""gunicorn's thread worker, taking a new connection only while one of its threads is free.

    gunicorn exchange_site.wsgi --worker-class exchange_site.gunicorn_worker.BalancedThreadWorker

gunicorn's ``gthread`` worker accepts every connection it is woken for, whether or not a
thread is free to serve it; the connection then waits in that worker's queue behind the
requests its threads are serving, while another worker may have a thread idle (gunicorn
issues #908 and #3433). Which worker wins an ``accept`` is down to the kernel's wake-up
order, so in a rush the workers' queues differ: at a deadline with sixteen students
submitting at once on two workers, the slowest tenth of the submits had waited in a worker
with 8 requests ahead of them while the other worker had 5 (bench/RESULTS.md, "Connections
to the worker with a free thread").

``BalancedThreadWorker`` stops listening while each of its threads has a request (served or
queued) and listens again as soon as one is done: a new connection waits in the kernel's
listen queue, which every worker takes from, until some worker has a thread for it. A
request on a connection the worker already holds (HTTP keep-alive) is still served by that
worker, as before; nothing else changes (threads, keep-alive, timeouts, graceful restarts).
"""

from __future__ import annotations

import os
import selectors
import threading
from concurrent import futures
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    """A ``gthread`` worker that accepts a connection only while it has a thread free."""

    def init_process(self) -> None:
        # Set up before the parent's init_process, which ends by running the worker.
        self._busy = 0  # requests handed to the threads and not finished (served or queued)
        self._busy_lock = threading.Lock()
        self._listening = True
        self._acceptors: dict[Any, Any] = {}  # while not listening: each socket's acceptor
        # A thread that finishes a request while the worker is full wakes the main loop
        # (which may be waiting in select for up to a second) through this pipe.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        super().init_process()

    def run(self) -> None:
        # The pipe stays open until the process exits: requests still running after the
        # loop ends (a graceful stop) write to it when they finish.
        self.poller.register(self._wake_read, selectors.EVENT_READ, self._woken)
        super().run()

    @property
    def full(self) -> bool:
        """Whether every thread has a request: a new connection would have to wait here."""
        return self._busy >= self.cfg.threads

    def _listen(self, listening: bool) -> None:
        """Unregister the listening sockets from the main loop's poller, or register them
        again with the acceptors gunicorn's ``run`` gave them."""
        if listening == self._listening:
            return
        with self._lock:
            if listening:
                for sock, acceptor in self._acceptors.items():
                    self.poller.register(sock, selectors.EVENT_READ, acceptor)
            else:
                self._acceptors = {sock: self.poller.unregister(sock).data for sock in self.sockets}
            self._listening = listening

    def accept(self, server: Any, listener: Any) -> None:
        # The listening socket may be among the events of a select that also handed the
        # threads their last free slot: leave the connection to another worker.
        if self.full:
            self._listen(False)
            return
        super().accept(server, listener)

    def enqueue_req(self, conn: Any) -> None:
        with self._busy_lock:
            self._busy += 1
        super().enqueue_req(conn)
        if self.full:
            self._listen(False)

    def finish_request(self, fs: futures.Future[Any]) -> None:
        # In the thread that served the request (or the main loop's, if already done).
        with self._busy_lock:
            self._busy -= 1
            freed = self._busy == self.cfg.threads - 1
        super().finish_request(fs)
        if freed:
            try:
                os.write(self._wake_write, b"\0")
            except BlockingIOError:  # the pipe is full: the main loop has been woken already
                pass

    def _woken(self, _: Any) -> None:
        try:
            os.read(self._wake_read, 4096)
        except BlockingIOError:
            pass
        if not self.full:
            self._listen(True)
