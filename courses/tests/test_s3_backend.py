"""The S3 backend keeps one boto3 session per process: every thread's resource is made
from it (and still works on its own), and a worker's first one, with the plan of its
plain requests (courses/s3_requests.py), is made as it starts."""

from __future__ import annotations

import threading
import weakref

from courses import blobstore, s3_backend, s3_requests


def _in_thread(work):
    result: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # asserted by the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []
    return result[0]


def test_threads_make_their_resources_from_one_session_and_each_works(s3_storage):
    storage = blobstore.get_storage()
    assert isinstance(storage, s3_backend.ExchangeS3Storage)
    mine = storage.connection
    theirs = _in_thread(lambda: storage.connection)
    assert mine is not theirs  # resources are not shared between threads
    assert mine.meta.client is not theirs.meta.client
    assert storage._create_session() is storage._create_session()
    # Bytes put through one thread's resource are read through the other's.
    sha, _ = blobstore.store_bytes(b"written here")
    assert _in_thread(lambda: b"".join(blobstore.iter_blob(sha))) == b"written here"
    assert _in_thread(lambda: blobstore.exists(sha))


def test_a_forked_process_makes_its_own_session(s3_storage, monkeypatch):
    storage = blobstore.get_storage()
    here = storage._create_session()
    monkeypatch.setattr(s3_backend.os, "getpid", lambda: -1)
    assert storage._create_session() is not here


def test_warm_up_makes_the_session_in_the_background(s3_storage, monkeypatch):
    monkeypatch.setattr(s3_backend, "_SESSIONS", {})
    monkeypatch.setattr(s3_requests, "_plans", weakref.WeakKeyDictionary())
    thread = s3_backend.warm_up()
    assert thread is not None
    thread.join(timeout=60)
    assert len(s3_backend._SESSIONS) == 1
    # The session it made is the one requests use.
    assert blobstore.get_storage()._create_session() in s3_backend._SESSIONS.values()
    # So is the plan of every upload's PUTs, made from it: the first upload does not wait.
    assert s3_requests._plans.get(blobstore.get_storage()) is not None


def test_warm_up_with_local_storage_does_nothing(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    assert s3_backend.warm_up() is None


def test_a_warm_up_that_fails_is_logged_not_raised(s3_storage, monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("no such endpoint")

    monkeypatch.setattr(s3_backend.ExchangeS3Storage, "_create_session", broken)
    monkeypatch.setattr(blobstore.get_storage()._connections, "connection", None, raising=False)
    thread = s3_backend.warm_up()
    thread.join(timeout=60)
    assert "could not prepare the S3 client" in caplog.text
