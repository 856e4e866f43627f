"""The S3 storage backend: django-storages' ``S3Storage`` with one boto3 session per
process instead of one per thread.

django-storages gives every thread its own boto3 session and resource (resources are not
thread-safe). A new session loads botocore's service descriptions again: about 80 ms of
CPU for each of a worker's threads on its first request touching storage, on top of
importing boto3. Sessions made from the same settings are the same in all but that cache,
so the process keeps one, and each thread makes its resource from it (about 6 ms), one
thread at a time (a session is not safe to use from two threads at once).

``warm_up`` makes the worker's first resource in the background when it starts, so the
first request after a deployment does not wait for it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from storages.backends.s3 import S3Storage

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[Any, ...], Any] = {}


class ExchangeS3Storage(S3Storage):
    def _create_session(self) -> Any:
        # Per process (a forked child makes its own) and per settings.
        key = (
            os.getpid(),
            self.access_key,
            self.secret_key,
            self.security_token,
            self.session_profile,
        )
        session = _SESSIONS.get(key)
        if session is None:
            session = _SESSIONS[key] = super()._create_session()
        return session

    @property
    def connection(self) -> Any:
        made = getattr(self._connections, "connection", None)
        if made is not None:
            return made
        with _LOCK:
            return S3Storage.connection.fget(self)  # type: ignore[attr-defined]


def warm_up() -> threading.Thread | None:
    """With this backend configured: make the process's session, a resource and the plan
    of the plain requests (``s3_requests.plan``) in a background thread (imports and
    service descriptions included). None otherwise."""
    from . import blobstore

    storage = blobstore.get_storage()
    if not isinstance(storage, ExchangeS3Storage):
        return None

    def make() -> None:
        try:
            client = storage.connection.meta.client
            # Blobs over the multipart threshold go through s3transfer (blobstore._s3_put).
            import boto3.s3.transfer  # noqa: F401

            # Every other PUT, HEAD and GET goes through the plain requests' plan.
            from . import s3_requests

            s3_requests.plan(storage, client)
        except Exception:  # the first request will say what is wrong, with context
            logger.warning("could not prepare the S3 client in advance", exc_info=True)

    thread = threading.Thread(target=make, name="s3-warm-up", daemon=True)
    thread.start()
    return thread
