"""Garbage collection never loses referenced bytes.

Each test reproduces one way the service lost files or raised false alarms while
``gc_blobs`` ran beside uploads: the collection dying between its steps, bytes reused by an
upload while a collection removes them, ownerless bundles, temporary files of uploads in
progress, backups without the lock, and ``verify_storage`` while the service works (course
deletion and member removal mid-request: ``test_vanishing_owners.py``). Failures are
injected with ``monkeypatch``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction

from courses import backup, blobstore, collection_epoch, services, storage_checks, storage_locks
from courses.exceptions import Conflict, Unavailable
from courses.models import Blob, Bundle, BundleEntry
from tests.harness.uploads import make_upload

NOW = dt.timedelta(0)
HOUR = dt.timedelta(hours=1)


def _release_blobs(released) -> list[str]:
    return sorted(
        BundleEntry.objects.filter(bundle=released.release).values_list("blob_id", flat=True)
    )


def _unreferenced(released, people) -> list[str]:
    """The release's blobs, left unreferenced by an unrelease and the removal of the
    withdrawn bundle (which gc_blobs does once it has been ownerless past the grace)."""
    shas = _release_blobs(released)
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    storage_checks.ownerless_bundles().delete()
    return shas


# --- rows before bytes --------------------------------------------------------------------


@pytest.mark.storage
def test_gc_dying_after_the_rows_leaves_bytes_as_orphans_never_rows_without_bytes(
    backend, released, people, monkeypatch
):
    shas = _unreferenced(released, people)

    def storage_down(sha: str) -> bool:
        raise OSError(5, "storage down")

    monkeypatch.setattr(blobstore, "quarantine", storage_down)
    with pytest.raises(OSError):
        storage_checks.gc_blobs(grace=NOW)
    # The rows went first; every byte is still there, as orphans, none is referenced.
    assert not Blob.objects.filter(sha256__in=shas).exists()
    assert all(blobstore.exists(sha) for sha in shas)
    assert storage_checks.verify_storage().orphan_files == shas
    monkeypatch.undo()
    assert sorted(storage_checks.gc_blobs(grace=NOW).files) == shas
    assert not any(blobstore.exists(sha) for sha in shas)


@pytest.mark.storage
def test_bytes_moved_while_the_connection_was_lost_are_put_back(
    backend, released, people, monkeypatch
):
    """The lock goes with a cut connection: an upload may have recorded the blob while gc
    moved its bytes, so gc puts them back instead of removing them."""
    shas = _unreferenced(released, people)

    def cut() -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(storage_checks, "_alive", cut)
    with pytest.raises(OperationalError):
        storage_checks.gc_blobs(grace=NOW)
    assert blobstore.exists(shas[0])
    assert list(blobstore.iter_quarantined()) == []


@pytest.mark.storage
def test_a_killed_collection_s_quarantine_is_settled_by_the_next(backend, released):
    # As a collection killed between moving bytes aside and removing them leaves things:
    # bytes whose row an upload recorded meanwhile, and bytes that nothing names.
    referenced = _release_blobs(released)[0]
    orphan, _ = blobstore.store_bytes(b"nothing names these bytes")
    assert blobstore.quarantine(referenced) and blobstore.quarantine(orphan)
    assert storage_checks.verify_storage().missing == [referenced]
    assert storage_checks.gc_blobs(grace=NOW, dry_run=True).restored == []
    report = storage_checks.gc_blobs(grace=NOW)
    assert report.restored == [referenced]
    assert blobstore.exists(referenced) and not blobstore.exists(orphan)
    assert list(blobstore.iter_quarantined()) == []
    assert storage_checks.verify_storage().ok


def _rereleased(released, people):
    return services.release_assignment(
        actor=people["ines"],
        course=released.course,
        code=released.code,
        upload=make_upload({"v2.txt": b"v2"}),
        force=True,
    )


def test_bytes_whose_row_came_back_are_spared(released, people):
    sha = _release_blobs(released)[0]
    with transaction.atomic():
        assert storage_checks._remove_bytes(sha) is False
    assert blobstore.exists(sha)


# --- uploads that reuse bytes confirm them ------------------------------------------------


@pytest.mark.storage
def test_reused_bytes_of_an_unreferenced_row_are_confirmed_when_recording(
    backend, released, people
):
    """The field report's loss: bytes gone under a row that a dying collection left behind;
    an upload that found the bytes earlier must not record a reference to them."""
    data = b'{"cells": []}'
    [sha] = [s for s in _unreferenced(released, people) if blobstore.open_blob(s).read() == data]
    staged = services.stage_bundle(upload=make_upload({"ps1.ipynb": data}))
    # What the killed collection did: marked itself running (after the upload's ticket),
    # then removed the bytes, its row rolled back.
    collection_epoch._start()
    blobstore.delete(sha)
    with pytest.raises(Conflict, match="send it again"), transaction.atomic():
        services.record_bundle(kind="submission", staged=staged)


@pytest.mark.storage
def test_an_upload_after_a_collection_finds_its_bytes(backend, released, people):
    old = _unreferenced(released, people)
    storage_checks.gc_blobs(grace=NOW)
    assignment = _rereleased(released, people)
    submission = services.submit_assignment(
        student=people["sam"],
        assignment=assignment,
        upload=make_upload({"ps1.ipynb": b'{"cells": []}', "big.csv": b"x,y\n" * 1000}),
    )
    shas = set(submission.bundle.entries.values_list("blob_id", flat=True))
    assert shas == set(old)
    assert all(blobstore.exists(sha) for sha in shas)


def test_bytes_collected_while_an_upload_makes_them_fresh_are_put_back_by_it(released, monkeypatch):
    import io

    data = b'{"cells": []}'
    staged = blobstore.stage(io.BytesIO(data))
    target = Path(blobstore.get_storage().path(blobstore.blob_storage_name(staged.sha256)))

    def collected_first(path, *args):
        target.unlink()  # a collection took the bytes between the check and the refresh
        raise FileNotFoundError(path)

    monkeypatch.setattr(blobstore.os, "utime", collected_first)
    blobstore.put(staged)
    assert target.read_bytes() == data


# --- ownerless bundles --------------------------------------------------------------------


def test_ownerless_bundles_are_reported_and_collected_after_the_grace(released, people):
    staged = services.stage_bundle(upload=make_upload({"lost.txt": b"nobody holds me"}))
    with transaction.atomic():
        bundle = services.record_bundle(kind="submission", staged=staged)
    assert storage_checks.verify_storage().ownerless_bundles == [bundle.pk]

    kept = storage_checks.gc_blobs(grace=HOUR)
    assert kept.bundles == [] and kept.kept_recent >= 1
    bundle.refresh_from_db()
    assert bundle.ownerless_since is not None
    assert storage_checks.gc_blobs(grace=HOUR, dry_run=True).bundles == []

    Bundle.objects.filter(pk=bundle.pk).update(ownerless_since=bundle.ownerless_since - 2 * HOUR)
    assert storage_checks.gc_blobs(grace=HOUR, dry_run=True).bundles == [bundle.pk]
    report = storage_checks.gc_blobs(grace=HOUR)
    assert report.bundles == [bundle.pk]
    assert not Bundle.objects.filter(pk=bundle.pk).exists()
    assert storage_checks.verify_storage().ownerless_bundles == []
    # Its blob, unreferenced now, goes once it is old enough too.
    assert storage_checks.gc_blobs(grace=NOW).rows == [staged.entries[0].sha256]


def test_a_dry_run_with_no_grace_names_unstamped_ownerless_bundles(db):
    staged = services.stage_bundle(upload=make_upload({"lost.txt": b"x"}))
    with transaction.atomic():
        bundle = services.record_bundle(kind="release", staged=staged)
    assert storage_checks.gc_blobs(grace=NOW, dry_run=True).bundles == [bundle.pk]
    assert Bundle.objects.get(pk=bundle.pk).ownerless_since is None


# --- temporary files ----------------------------------------------------------------------


@pytest.mark.storage
def test_gc_spares_the_temporary_file_of_an_upload_in_progress(backend, released, people):
    import io

    staged = blobstore.stage(io.BytesIO(b"an upload in progress"))
    old = time.time() - 3 * 86400
    os.utime(staged.temp_path, (old, old))  # a slow upload: its file not touched for long
    assert storage_checks.gc_blobs(grace=NOW).temp_files == []
    assert staged.temp_path.exists()
    blobstore.put(staged)
    assert blobstore.exists(staged.sha256)


@pytest.mark.storage
def test_temporary_files_of_killed_uploads_are_collected_with_an_object_store_too(
    backend, db, settings, tmp_path
):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    directory = blobstore.staging_dir()
    directory.mkdir(parents=True)
    stale = directory / "upload-killed"
    stale.write_bytes(b"left by a killed upload")
    old = time.time() - 3 * 86400
    os.utime(stale, (old, old))
    report = storage_checks.gc_blobs()
    assert report.temp_files == [f"{blobstore.staging_label()}/upload-killed"]
    assert not stale.exists()


# --- backups and verify under load --------------------------------------------------------


def test_gc_waits_for_a_backup_on_sqlite_too(released, people, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's lock; PostgreSQL's is the next test")
    _unreferenced(released, people)
    monkeypatch.setattr(storage_locks, "GC_LOCK_WAIT_SECONDS", 0.3)
    with backup.snapshot():
        with pytest.raises(Unavailable, match="run gc_blobs again later"):
            storage_checks.gc_blobs(grace=NOW)
    assert len(storage_checks.gc_blobs(grace=NOW).rows) == 2


@pytest.mark.storage
def test_quick_verify_raises_no_alarm_for_a_blob_collected_during_the_scan(
    backend, released, people, monkeypatch
):
    """verify reads the referenced list, then a re-release and a collection remove one of
    those blobs before verify looks at it: not damage, not reported."""
    target = _release_blobs(released)[0]
    storage = blobstore.get_storage()
    size, still_missing = storage.size, storage_checks._still_missing

    def collected_meanwhile(name: str) -> int:
        if name.endswith(target):
            blobstore.delete(target)  # the collection's storage side, seen by the scan
        return size(name)

    def rows_collected_too(suspects: list[str]) -> list[str]:
        # ...and its database side, committed before verify looks again (scan threads
        # have connections of their own, so the rows change here, in the test's thread).
        _rereleased(released, people)
        storage_checks.ownerless_bundles().delete()  # the replaced release, collected
        Blob.objects.filter(sha256=target).delete()
        return still_missing(suspects)

    monkeypatch.setattr(storage, "size", collected_meanwhile)
    monkeypatch.setattr(storage_checks, "_still_missing", rows_collected_too)
    report = storage_checks.verify_storage(quick=True)
    assert report.missing == [] and report.ok
    assert not blobstore.exists(target)


def test_a_referenced_blob_really_missing_is_still_reported(released):
    sha = _release_blobs(released)[0]
    blobstore.delete(sha)
    assert storage_checks.verify_storage(quick=True).missing == [sha]
    assert storage_checks.verify_storage().missing == [sha]


def test_sqlite_lock_file_sits_beside_a_database_file(settings, tmp_path, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    monkeypatch.setattr(connection, "is_in_memory_db", lambda: False)
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "db.sqlite3"))
    assert storage_locks._lock_file_path() == Path(str(tmp_path / "db.sqlite3") + ".gc-lock")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_gc_waits_for_a_backup_snapshot_on_postgresql(released, people, monkeypatch):
    shas = _unreferenced(released, people)
    holding, done = threading.Event(), threading.Event()

    def backup_like() -> None:
        try:
            with backup.snapshot():
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    reader = threading.Thread(target=backup_like)
    reader.start()
    assert holding.wait(30)
    monkeypatch.setattr(storage_locks, "GC_LOCK_WAIT_SECONDS", 0.3)
    try:
        with pytest.raises(Unavailable, match="run gc_blobs again later"):
            storage_checks.gc_blobs(grace=NOW)
    finally:
        done.set()
        reader.join(30)
    assert all(blobstore.exists(sha) for sha in shas)
    assert sorted(storage_checks.gc_blobs(grace=NOW).rows) == shas
