"""The server's copies of small blobs when the blobs live in S3 (``courses.blob_cache``), on
SeaweedFS: a student's inline feedback is read from the server's disk instead of the store,
a copy whose bytes were altered is never served, the cache keeps to its size, and removing
a blob removes its copy."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat

import pytest

from api.tests.test_feedback_batch import form, post, two  # noqa: F401
from courses import blob_cache, blobstore, services
from courses.models import blob_storage_name
from courses.tests.test_parallel_put import batch_of
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.storage

FEEDBACK_URL = "/api/v1/courses/phys101/assignments/ps1/feedback?inline=true"


def _store(data: bytes, *, keep_copy: bool = True) -> str:
    """Put bytes in the S3 store as an upload of feedback does; their hash."""
    storage = blobstore.get_storage()
    staged = blobstore.stage(io.BytesIO(data))
    blobstore._s3_put(storage, blobstore._s3_client(storage), staged, keep_copy=keep_copy)
    return hashlib.sha256(data).hexdigest()


def _gone_from_the_store(sha256: str) -> None:
    """The object removed behind the service's back (its copy, if any, stays)."""
    blobstore.get_storage().delete(blob_storage_name(sha256))


def _copies() -> set[str]:
    """The hashes the server keeps copies of."""
    root = blob_cache.directory()
    return {p.name for p in root.iterdir()} if root.exists() else set()


def _copy(sha256: str):
    return blob_cache.directory() / sha256


def test_feedback_fetched_inline_comes_from_the_servers_copy(
    s3_storage, people, submission, client_for
):
    # A submission's files are read by the instructor's collect, from the store: no copies
    # (the release's are kept, for students' fetches).
    before = _copies()
    released = {e.blob_id for e in submission.assignment.release.entries.all()}
    submitted = {e.blob_id for e in submission.bundle.entries.all()} - released
    assert before == released and submitted and not submitted & before
    text = b"<p>well argued, sam</p>" * 20
    services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload({"fb.html": text})
    )
    sha = hashlib.sha256(text).hexdigest()
    assert _copies() - before == {sha}
    _gone_from_the_store(sha)
    [feedback] = client_for(people["sam"]).get(FEEDBACK_URL).json()
    assert base64.b64decode(feedback["files"][0]["content"]) == text


def test_a_release_is_fetched_inline_from_the_servers_copies(
    s3_storage, people, course, client_for
):
    notebooks = {f"ps{n}.ipynb": os.urandom(20_000) for n in range(3)}
    services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload(notebooks)
    )
    shas = {hashlib.sha256(data).hexdigest() for data in notebooks.values()}
    assert _copies() == shas
    for sha in shas:
        _gone_from_the_store(sha)
    answer = client_for(people["sam"]).get(
        "/api/v1/courses/phys101/assignments/ps1/release/files?inline=true"
    )
    got = {f["path"]: base64.b64decode(f["content"]) for f in answer.json()["files"]}
    assert got == notebooks


def test_feedback_released_in_batches_is_kept_too(people, two, client_for, s3_storage):  # noqa: F811
    batch = batch_of(two, 3)
    before = _copies()
    assert post(client_for(people["gus"]), form(batch)).status_code == 201
    shas = {entry.sha256 for release in batch for entry in release.files}
    assert _copies() - before == shas
    for sha in shas:
        _gone_from_the_store(sha)
    for release in batch:
        student = client_for(people[release.student_id])
        [feedback] = student.get(FEEDBACK_URL).json()
        assert {f["sha256"] for f in feedback["files"]} <= shas
        assert all("content" in f for f in feedback["files"])


def test_a_blob_read_from_the_store_is_copied_for_the_next_read(s3_storage, settings):
    data = os.urandom(5000)
    sha = _store(data, keep_copy=False)  # as a submission's files
    assert not _copy(sha).exists()
    assert blobstore.read_small([sha]) == {sha: data}
    _gone_from_the_store(sha)
    assert blobstore.read_small([sha]) == {sha: data}
    mode = _copy(sha).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(blob_cache.directory().stat().st_mode) == 0o700


def test_an_altered_copy_is_never_served(s3_storage):
    data = b"the true bytes" * 100
    sha = _store(data)
    _copy(sha).write_bytes(b"what an intruder wrote" * 100)
    # The store is asked instead, and its bytes replace the altered copy.
    assert blobstore.read_small([sha]) == {sha: data}
    assert _copy(sha).read_bytes() == data
    _copy(sha).write_bytes(data[:-1])
    _gone_from_the_store(sha)
    # Neither a sound copy nor the object: the caller offers the file another way.
    assert blobstore.read_small([sha]) == {}
    assert not _copy(sha).exists()


def test_only_small_blobs_are_kept_and_none_when_turned_off(s3_storage, settings):
    large = _store(os.urandom(blob_cache.MAX_FILE_BYTES + 1))
    assert not _copy(large).exists()
    settings.EXCHANGE_BLOB_CACHE_BYTES = 0
    small = _store(b"small")
    assert not _copy(small).exists()
    _gone_from_the_store(small)
    assert blobstore.read_small([small]) == {}


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(
    s3_storage, settings, monkeypatch
):
    settings.EXCHANGE_BLOB_CACHE_BYTES = 40_000
    monkeypatch.setattr(blob_cache, "_added_since_trim", 0)
    first = _store(os.urandom(4000))
    unused = [_store(os.urandom(4000)) for _ in range(5)]
    for sha in unused:
        os.utime(_copy(sha), (1, 1))  # long unused
    assert blob_cache.get(first) is not None  # used just now
    newest = [_store(os.urandom(4000)) for _ in range(6)]
    sizes = [p.stat().st_size for p in blob_cache.directory().iterdir()]
    assert sum(sizes) <= 40_000 * blob_cache.TRIM_TO
    assert all(_copy(sha).exists() for sha in [first, *newest])
    assert not any(_copy(sha).exists() for sha in unused[:3])


def test_a_process_trims_at_its_first_copy(s3_storage, settings, monkeypatch):
    # A server restarted over a full directory (a larger size before, say) trims it at once.
    settings.EXCHANGE_BLOB_CACHE_BYTES = 40_000
    blob_cache.directory().mkdir(mode=0o700)
    for number in range(20):
        (blob_cache.directory() / f"{number:064x}").write_bytes(b"x" * 4000)
    monkeypatch.setattr(blob_cache, "_added_since_trim", None)  # as at a process's start
    sha = _store(b"the first copy")
    sizes = [p.stat().st_size for p in blob_cache.directory().iterdir()]
    assert sum(sizes) <= 40_000 * blob_cache.TRIM_TO
    assert _copy(sha).exists()


def test_a_removed_blob_leaves_no_copy(s3_storage):
    deleted, quarantined = _store(b"deleted"), _store(b"set aside")
    blobstore.delete(deleted)
    assert blobstore.quarantine(quarantined)
    assert not _copy(deleted).exists() and not _copy(quarantined).exists()
    assert blobstore.read_small([deleted, quarantined]) == {}


def test_an_uploads_copy_is_its_staged_file_under_a_second_name(s3_storage):
    # Keeping the copy makes no new file (making one is what costs the kernel): the staged
    # file, checked and sent, is linked into the cache before its own name is removed.
    data = os.urandom(5000)
    storage = blobstore.get_storage()
    staged = blobstore.stage(io.BytesIO(data))
    staged_inode = staged.temp_path.stat().st_ino
    blobstore._s3_put(storage, blobstore._s3_client(storage), staged, keep_copy=True)
    copy = _copy(staged.sha256)
    assert copy.stat().st_ino == staged_inode and copy.stat().st_nlink == 1
    assert not staged.temp_path.exists()
    assert copy.read_bytes() == data and stat.S_IMODE(copy.stat().st_mode) == 0o600
    _gone_from_the_store(staged.sha256)
    assert blobstore.read_small([staged.sha256]) == {staged.sha256: data}


def test_where_no_link_can_be_made_the_copy_is_written(s3_storage, monkeypatch):
    def elsewhere(*_: object, **__: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(blob_cache.os, "link", elsewhere)
    data = os.urandom(5000)
    sha = _store(data)
    assert _copy(sha).read_bytes() == data
    assert [p.name for p in blob_cache.directory().iterdir()] == [sha]  # no temporary left


def test_a_full_disk_costs_the_copy_not_the_upload(s3_storage, monkeypatch):
    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blob_cache.os, "replace", full)
    monkeypatch.setattr(blob_cache.os, "link", full)
    sha = _store(b"stored all the same")
    assert blobstore.exists(sha)
    assert not _copy(sha).exists()
    assert list(blob_cache.directory().iterdir()) == []  # no half-written file either


@pytest.fixture
def local_files(settings, tmp_path):
    """Local storage, whatever the run's (``make test-s3`` puts every test on S3)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "files")},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)


def test_local_storage_makes_no_copies(local_files, people, submission, client_for):
    services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload({"fb.html": b"<p/>"})
    )
    [feedback] = client_for(people["sam"]).get(FEEDBACK_URL).json()
    assert base64.b64decode(feedback["files"][0]["content"]) == b"<p/>"
    assert not blob_cache.directory().exists()
