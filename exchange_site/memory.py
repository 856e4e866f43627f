"""A gunicorn worker gives the memory it freed back to the system once it is idle.

After serving requests a worker held about 67 MB, 13 more than after start-up; part of that
was heap that Python had freed but glibc's malloc kept: each thread that allocates gets its
own malloc arena (up to 8 per CPU), freed chunks stay in the arena for reuse, and the top of
a heap is only returned when it is free in one piece. Two measures, both in the worker (the
WSGI entry calls ``lean_malloc`` when gunicorn loads the application in it, before its
request threads start), so they hold for ``make run``, the image, the chart and the hub's
service alike, without an environment variable set before the process starts:

- ``mallopt(M_ARENA_MAX, 2)``: the worker's 4 request threads share two arenas instead of
  each keeping its own (``MALLOC_ARENA_MAX=2`` in the environment does the same, but must be
  set before the interpreter starts);
- ``malloc_trim(0)`` once the worker has started or finished no request for ``QUIET``
  seconds (a daemon thread waits for that): it returns the free pages of every arena to the
  system. Never during a burst of requests, so it costs no CPU under load; at most once per
  ``QUIET`` seconds of activity otherwise (a trim took about 0.1 ms in a worker).

Together they save 7-12 MB in the server after serving requests (bench/RESULTS.md, "Idle
RSS after serving requests"). On a C library without them (musl) nothing is done.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2
QUIET = 1.0  # seconds without a request starting or finishing before a trim
RECEIVER_IDS = ("exchange-malloc-trim-start", "exchange-malloc-trim-end")


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no dynamic C library
        return None


class IdleTrimmer:
    """Calls ``trim`` once no request has started or finished for ``quiet`` seconds, once
    per such quiet spell, from a daemon thread started with the first request (after the
    fork: a thread does not survive one)."""

    def __init__(self, trim: Callable[[], Any], *, quiet: float = QUIET) -> None:
        self.trim = trim
        self.quiet = quiet
        self.trims = 0
        self._last = time.monotonic()
        self._activity = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def activity(self, **_: Any) -> None:
        """A request started or finished (a receiver of Django's request signals)."""
        self._last = time.monotonic()
        self._activity.set()
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="malloc-trim", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._activity.wait()
            while (idle := time.monotonic() - self._last) < self.quiet:
                time.sleep(self.quiet - idle)
            # Cleared once quiet, just before the trim: requests marked from now on set it
            # again and bring another trim after them (a request that finishes marks again).
            self._activity.clear()
            self.trim()
            self.trims += 1


_trimmer: IdleTrimmer | None = None


def lean_malloc() -> IdleTrimmer | None:
    """Limit the malloc arenas and trim the heap when the worker goes idle (glibc only);
    the trimmer, None where the C library has neither function. Once per process."""
    global _trimmer
    libc = _libc()
    if _trimmer is not None or libc is None or not hasattr(libc, "malloc_trim"):
        return _trimmer
    libc.mallopt(M_ARENA_MAX, ARENAS)
    from django.core.signals import request_finished, request_started

    _trimmer = IdleTrimmer(lambda: libc.malloc_trim(0))
    request_started.connect(_trimmer.activity, dispatch_uid=RECEIVER_IDS[0])
    request_finished.connect(_trimmer.activity, dispatch_uid=RECEIVER_IDS[1])
    return _trimmer
