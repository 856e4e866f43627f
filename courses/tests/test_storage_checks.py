"""verify_storage and gc_blobs on local files and on S3: missing, damaged and orphan blobs,
the grace period, dry runs, stale temporary files, and the lock against uploads."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import F

from courses import blobstore, services, storage_checks, storage_locks
from courses.exceptions import BadArchive, Conflict
from courses.models import Blob, Bundle, BundleEntry, blob_storage_name
from tests.harness.commands import run_command
from tests.harness.uploads import make_upload, manifest_of, tar_gz

NOW = dt.timedelta(0)
HOUR = dt.timedelta(hours=1)


def failed_upload(released, student) -> str:
    """A submission whose second file breaks the manifest: nothing is recorded and no bytes
    are left in storage. Then the first file's bytes are stored without a row, as a process
    killed between storing and recording leaves them. Returns that orphan's SHA-256."""
    good, bad = b"stored before the failure", b"x"
    manifest = manifest_of({"a.txt": good, "b.txt": b"promised other bytes"})
    archive = io.BytesIO(tar_gz({"a.txt": good, "b.txt": bad}))
    with pytest.raises(BadArchive):
        services.submit_assignment(
            student=student,
            assignment=released,
            upload=services.Upload(manifest=json.dumps(manifest), archive=archive),
        )
    assert not blobstore.exists(manifest[0]["sha256"])
    sha256, _size = blobstore.store_bytes(good)
    assert sha256 == manifest[0]["sha256"]
    return sha256


def test_healthy_storage_verifies_clean(backend, released, people):
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    report = storage_checks.verify_storage()
    assert report.ok and report.checked == Blob.objects.count() == 3
    assert report.orphan_files == report.unreferenced_rows == []
    out, err = run_command("verify_storage")
    assert "Checked 3 referenced blob(s): 0 missing, 0 damaged" in out
    assert "Checking 3 referenced blob(s)" in err


def test_orphan_of_a_failed_upload_is_listed_and_collected(backend, released, people):
    orphan = failed_upload(released, people["sam"])
    assert not Blob.objects.filter(sha256=orphan).exists()
    assert blobstore.exists(orphan)
    assert storage_checks.verify_storage().orphan_files == [orphan]
    out, _ = run_command("verify_storage")
    assert f"orphan file (no database row)   {orphan}" in out

    kept = storage_checks.gc_blobs(grace=HOUR)
    assert kept.files == [] and kept.kept_recent == 1 and blobstore.exists(orphan)

    out, _ = run_command("gc_blobs", "--grace", "0", "--dry-run")
    assert f"would delete orphan file {orphan}" in out
    assert blobstore.exists(orphan)

    out, _ = run_command("gc_blobs", "--grace", "0s")
    assert f"deleted orphan file {orphan}" in out
    assert not blobstore.exists(orphan)
    assert storage_checks.verify_storage().orphan_files == []


def test_missing_and_damaged_blobs_are_reported_and_the_command_fails(backend, released):
    entries = list(BundleEntry.objects.filter(bundle=released.release).order_by("path"))
    missing, damaged = entries[0].blob_id, entries[1].blob_id
    blobstore.delete(missing)
    storage = blobstore.get_storage()
    storage.delete(blob_storage_name(damaged))
    storage.save(blob_storage_name(damaged), ContentFile(b"tampered"))

    report = storage_checks.verify_storage()
    assert report.missing == [missing]
    assert [sha for sha, _ in report.corrupt] == [damaged]
    assert "hash to" in report.corrupt[0][1]
    quick = storage_checks.verify_storage(quick=True)
    assert quick.missing == [missing] and "the database says" in quick.corrupt[0][1]

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 referenced file\\(s\\) missing and 1 damaged"):
        call_command("verify_storage", stdout=out, stderr=err)
    assert f"MISSING  {missing}" in out.getvalue()
    assert f"DAMAGED  {damaged}" in out.getvalue()


def test_same_size_damage_is_found_by_the_hash(backend, released):
    entry = BundleEntry.objects.filter(bundle=released.release).select_related("blob").first()
    storage = blobstore.get_storage()
    storage.delete(blob_storage_name(entry.blob_id))
    storage.save(blob_storage_name(entry.blob_id), ContentFile(b"\0" * entry.blob.size))
    assert storage_checks.verify_storage(quick=True).ok
    assert not storage_checks.verify_storage().ok


def test_replaced_release_is_left_for_gc_which_removes_it_and_its_blobs(backend, released, people):
    old_bundle = released.release_id
    old = set(BundleEntry.objects.filter(bundle=released.release).values_list("blob", flat=True))
    services.release_assignment(
        actor=people["ines"],
        course=released.course,
        code="ps1",
        upload=make_upload({"ps1.ipynb": b'{"cells": ["v2"]}'}),
        force=True,
    )
    # The old release stays, ownerless, so that reads in flight still find its files.
    report = storage_checks.verify_storage()
    assert report.ok and report.ownerless_bundles == [old_bundle]
    assert report.unreferenced_rows == [] and report.checked == 3
    out, _ = run_command("verify_storage", "--quick")
    assert f"ownerless bundle (no release, submission or feedback) {old_bundle}" in out
    assert "0 unreferenced blob(s), 1 ownerless bundle(s) (gc_blobs removes those)" in out

    young = storage_checks.gc_blobs(grace=HOUR)
    assert young.bundles == [] and young.rows == []
    assert Bundle.objects.filter(pk=old_bundle).exists()

    out, _ = run_command("gc_blobs", "--grace", "0")
    assert f"deleted ownerless bundle {old_bundle}" in out
    assert not Bundle.objects.filter(pk=old_bundle).exists()
    storage_checks.gc_blobs(grace=NOW)
    assert not Blob.objects.filter(sha256__in=old).exists()
    assert not any(blobstore.exists(sha) for sha in old)
    report = storage_checks.verify_storage()
    assert report.ok and report.checked == 1
    assert report.unreferenced_rows == [] and report.ownerless_bundles == []


def test_blob_stored_again_during_grace_is_spared(released, people):
    """An unreferenced blob whose bytes were just uploaded again is not collected."""
    old = BundleEntry.objects.filter(bundle=released.release, path="ps1.ipynb").get().blob_id
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    Blob.objects.filter(sha256=old).update(created_at=Blob.objects.get(pk=old).created_at - HOUR)
    path = Path(blobstore.get_storage().path(blob_storage_name(old)))
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    blobstore.store_bytes(b'{"cells": []}')  # the same bytes again: fresh
    report = storage_checks.gc_blobs(grace=dt.timedelta(minutes=30))
    assert old not in report.rows and blobstore.exists(old)


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(db):
    tmp = Path(blobstore.get_storage().location) / "tmp"
    tmp.mkdir(parents=True)
    stale, fresh = tmp / "upload-stale", tmp / "upload-fresh"
    stale.write_bytes(b"killed mid-upload")
    fresh.write_bytes(b"in progress")
    os.utime(stale, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    out, _ = run_command("gc_blobs", "--dry-run")
    assert "would delete temporary file tmp/upload-stale" in out and stale.exists()
    report = storage_checks.gc_blobs()
    assert report.temp_files == ["tmp/upload-stale"]
    assert not stale.exists() and fresh.exists()


def test_gc_on_an_empty_install_does_nothing(backend, db):
    report = storage_checks.gc_blobs(grace=NOW)
    assert (report.rows, report.files, report.temp_files) == ([], [], [])
    assert storage_checks.verify_storage().ok


def test_upload_whose_bytes_vanish_before_recording_is_refused(backend, released, people):
    """A collection racing an upload removes its bytes (orphans until recorded): the upload
    fails, records nothing."""
    staged = services.stage_bundle(upload=make_upload({"new.txt": b"fresh bytes"}))
    assert storage_checks.gc_blobs(grace=NOW).files == [staged.entries[0].sha256]
    with pytest.raises(Conflict, match="send it again"), transaction.atomic():
        services.record_bundle(kind="submission", staged=staged)
    assert not Blob.objects.filter(sha256=staged.entries[0].sha256).exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("0s", 0)]
)
def test_parse_age(text, seconds):
    assert storage_checks.parse_age(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "-1h", "h"])
def test_bad_grace_is_refused(text, db):
    with pytest.raises(CommandError, match="is not an age"):
        run_command("gc_blobs", f"--grace={text}")


def test_unreferenced_row_whose_bytes_are_gone_is_collected(backend, released, people):
    old = BundleEntry.objects.filter(bundle=released.release, path="ps1.ipynb").get().blob_id
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    blobstore.delete(old)
    report = storage_checks.gc_blobs(grace=NOW)
    assert old in report.rows and not Blob.objects.filter(pk=old).exists()


def test_orphan_recorded_by_an_upload_meanwhile_is_spared(released, people, monkeypatch):
    orphan = failed_upload(released, people["sam"])
    listing = blobstore.iter_stored_shas

    def listing_then_upload_records():
        yield from listing()
        Blob.objects.create(sha256=orphan, size=25)

    monkeypatch.setattr(blobstore, "iter_stored_shas", listing_then_upload_records)
    report = storage_checks.gc_blobs(grace=NOW)
    assert report.files == [] and blobstore.exists(orphan)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_gc_gives_way_to_a_running_backup_on_postgresql(monkeypatch):
    import threading

    from django.db import connection

    from courses.exceptions import Unavailable

    sha, size = blobstore.store_bytes(b"unreferenced")
    Blob.objects.create(sha256=sha, size=size)
    holding, release = threading.Event(), threading.Event()

    def backup_like() -> None:
        with transaction.atomic(), storage_locks.gc_guard():
            holding.set()
            release.wait(30)
        connection.close()

    reader = threading.Thread(target=backup_like)
    reader.start()
    holding.wait(30)
    monkeypatch.setattr(storage_locks, "GC_LOCK_WAIT_SECONDS", 0.5)
    try:
        with pytest.raises(Unavailable, match="run gc_blobs again later"):
            storage_checks.gc_blobs(grace=NOW)
        # Uploads are not held up meanwhile: the shared lock is granted at once.
        with transaction.atomic(), storage_locks.gc_guard():
            pass
    finally:
        release.set()
        reader.join(30)
    assert storage_checks.gc_blobs(grace=NOW).rows == [sha]


def _poison(sha: str, size: int) -> None:
    """A row left by the manifest hole of earlier releases: intact bytes, a size that lies."""
    Blob.objects.filter(sha256=sha).update(size=size)
    Bundle.objects.filter(entries__blob_id=sha).update(total_size=F("total_size") + 4096)


def test_a_row_whose_size_lies_is_found_by_the_full_check_and_repaired(backend, released):
    entry = BundleEntry.objects.filter(bundle=released.release, path="data/big.csv").get()
    true_size = entry.blob.size
    release_total = released.release.total_size
    _poison(entry.blob_id, true_size + 4096)

    report = storage_checks.verify_storage()
    assert report.wrong_sizes == [(entry.blob_id, true_size + 4096, true_size)]
    assert not report.ok and report.corrupt == [] and report.missing == []
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 file\\(s\\) are intact but recorded with a wrong"):
        call_command("verify_storage", stdout=out, stderr=err)
    assert f"WRONG SIZE  {entry.blob_id}: recorded {true_size + 4096} bytes" in out.getvalue()
    with pytest.raises(CommandError, match="without --quick"):
        run_command("verify_storage", "--quick", "--repair")
    with pytest.raises(ValueError, match="full check"):
        storage_checks.verify_storage(quick=True, repair=True)

    out, _ = run_command("verify_storage", "--repair")
    assert f"repaired size  {entry.blob_id}: was {true_size + 4096} bytes, now {true_size}" in out
    assert "0 with a wrong recorded size, 1 size(s) repaired" in out
    assert Blob.objects.get(pk=entry.blob_id).size == true_size
    assert Bundle.objects.get(pk=released.release_id).total_size == release_total
    assert storage_checks.verify_storage().ok
    assert "0 size(s) repaired" in run_command("verify_storage", "--repair")[0]


def test_damaged_bytes_are_never_repaired_into_a_size(backend, released):
    entry = BundleEntry.objects.filter(bundle=released.release, path="data/big.csv").get()
    storage = blobstore.get_storage()
    storage.delete(blob_storage_name(entry.blob_id))
    storage.save(blob_storage_name(entry.blob_id), ContentFile(b"truncated"))
    report = storage_checks.verify_storage(repair=True)
    assert [sha for sha, _ in report.corrupt] == [entry.blob_id]
    assert report.repaired == [] and Blob.objects.get(pk=entry.blob_id).size == 4000


def test_the_migration_repairs_sizes_of_an_existing_database(backend, released):
    """0006_repair_blob_sizes, run on a database written before manifests were checked."""
    from django.apps import apps

    migration = importlib.import_module("courses.migrations.0006_repair_blob_sizes")
    entries = {e.path: e for e in BundleEntry.objects.filter(bundle=released.release)}
    big, notebook = entries["data/big.csv"].blob_id, entries["ps1.ipynb"].blob_id
    release_total = released.release.total_size
    _poison(big, 4000 + 4096)
    lost = Blob.objects.create(sha256="f" * 64, size=7)  # no bytes: verify_storage's business
    assert migration.repair_blob_sizes(apps, None) == [big]
    assert Blob.objects.get(pk=big).size == 4000
    assert Blob.objects.get(pk=notebook).size == len(b'{"cells": []}')
    assert Bundle.objects.get(pk=released.release_id).total_size == release_total
    assert Blob.objects.get(pk=lost.pk).size == 7
    assert migration.repair_blob_sizes(apps, None) == []


def test_the_migration_does_nothing_on_a_new_install(db):
    from django.apps import apps

    migration = importlib.import_module("courses.migrations.0006_repair_blob_sizes")
    assert migration.repair_blob_sizes(apps, None) == []
