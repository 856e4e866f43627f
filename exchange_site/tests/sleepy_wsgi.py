"""A WSGI application for the gunicorn worker's tests: ``/?sleep=S`` answers after S seconds
with the pid of the worker that served it; while it sleeps, ``busy-<pid>`` exists in
``$SLEEPY_DIR``, and ``ready-<pid>`` once the worker has loaded it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

READY = Path(os.environ["SLEEPY_DIR"]) / f"ready-{os.getpid()}"
READY.touch()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("sleep", ["0"])[0])
    busy = Path(os.environ["SLEEPY_DIR"]) / f"busy-{os.getpid()}"
    busy.touch()
    try:
        time.sleep(seconds)
    finally:
        busy.unlink()
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
