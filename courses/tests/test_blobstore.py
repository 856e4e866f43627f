"""Content-addressed storage: one copy per content, listed for checks, safe under races."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from courses import blobstore
from courses.exceptions import BadArchive


def test_same_bytes_are_stored_once_and_read_back():
    sha, size = blobstore.store_bytes(b"hello")
    again, _ = blobstore.store_bytes(b"hello")
    assert sha == again == hashlib.sha256(b"hello").hexdigest() and size == 5
    assert list(blobstore.iter_stored_shas()) == [sha]
    assert b"".join(blobstore.iter_blob(sha)) == b"hello"
    assert blobstore.exists(sha)
    blobstore.delete(sha)
    assert not blobstore.exists(sha)


def test_empty_storage_lists_nothing():
    assert list(blobstore.iter_stored_shas()) == []


def test_stream_that_does_not_match_leaves_no_file():
    with pytest.raises(BadArchive, match="does not match"):
        blobstore.store_stream(io.BytesIO(b"abc"), path="a", size=3, sha256="0" * 64)
    assert list(blobstore.iter_stored_shas()) == []
    temp = blobstore.get_storage().path("tmp")
    assert os.listdir(temp) == []


def test_storing_existing_bytes_refreshes_their_age():
    sha, _ = blobstore.store_bytes(b"shared data")
    path = blobstore.get_storage().path(f"blobs/{sha[:2]}/{sha}")
    os.utime(path, (time.time() - 86400, time.time() - 86400))
    blobstore.store_bytes(b"shared data")
    assert time.time() - os.path.getmtime(path) < 60


def test_a_failing_stream_leaves_no_temporary_file():
    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError("client went away")

    with pytest.raises(OSError):
        blobstore.stage(Broken())
    assert os.listdir(blobstore.get_storage().path("tmp")) == []


@pytest.mark.parametrize("data", [b"x" * 11, b"x" * 9], ids=["longer", "shorter"])
def test_a_file_staged_in_memory_is_checked_against_its_size(data):
    # Read up to one byte past the size it should have: a longer stream is refused, not cut.
    claimed = b"x" * 10
    budget = blobstore.MemoryBudget(1024)
    with pytest.raises(BadArchive, match=f"it has {len(data)} bytes.*the manifest says 10 bytes"):
        blobstore.stage_checked(
            io.BytesIO(data),
            path="a.txt",
            size=10,
            sha256=hashlib.sha256(claimed).hexdigest(),
            memory=budget,
        )
    staged = blobstore.stage_checked(
        io.BytesIO(claimed),
        path="a.txt",
        size=10,
        sha256=hashlib.sha256(claimed).hexdigest(),
        memory=budget,
    )
    assert (staged.temp_path, staged.data, budget.left) == (None, claimed, 1024 - 20)
