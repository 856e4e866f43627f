"""Recording an upload asks storage about its bytes only when a garbage collection may have
removed some since the upload began (``courses/collection_epoch.py``).

Storage is real; ``blobstore.missing`` is wrapped only to count what is asked. Each race is
played on the database the suite runs on (SQLite, or PostgreSQL in its pass): the
collection runs for real (``gc_blobs``), or is left as a killed one leaves the record.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection, transaction

from courses import blobstore, collection_epoch, services, storage_checks, storage_locks
from courses.collection_models import CollectionRecord
from courses.exceptions import Conflict, Unavailable
from courses.models import Blob, Submission
from tests.harness.uploads import make_upload

NOW = dt.timedelta(0)


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """Every hash recording asked storage about (real storage answers)."""
    hashes: list[str] = []
    real = blobstore.missing

    def counting(shas):
        shas = list(shas)
        hashes.extend(shas)
        return real(shas)

    monkeypatch.setattr(blobstore, "missing", counting)
    return hashes


def _submit(people, released, text: str) -> Submission:
    return services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=make_upload({"answer.txt": text.encode(), "notes.txt": f"{text} notes".encode()}),
    )


def _stage(text: str) -> services.StagedBundle:
    return services.stage_bundle(upload=make_upload({"new.txt": text.encode()}))


def _record(staged: services.StagedBundle) -> None:
    with transaction.atomic():
        services.record_bundle(kind="submission", staged=staged)


# --- no collection since the ticket: storage is not asked ---------------------------------


@pytest.mark.storage
def test_an_upload_with_no_collection_since_it_began_asks_storage_nothing(
    backend, released, people, asked
):
    storage_checks.gc_blobs(grace=NOW)  # one finished before: its epoch is the ticket's
    submission = _submit(people, released, "first")
    assert asked == []
    shas = list(submission.bundle.entries.values_list("blob_id", flat=True))
    assert len(shas) == 2 and all(blobstore.exists(sha) for sha in shas)


def test_a_dry_run_between_the_puts_and_the_record_changes_nothing(released, people, asked):
    staged = _stage("dry")
    storage_checks.gc_blobs(grace=NOW, dry_run=True)
    _record(staged)
    assert asked == []
    assert not CollectionRecord.objects.exists()


# --- a collection since the ticket: storage is asked ------------------------------------


@pytest.mark.storage
def test_a_collection_between_the_puts_and_the_record_makes_the_upload_retry(
    backend, released, people, asked
):
    """The collection removes the upload's bytes (orphans until recorded): 409 retry."""
    staged = _stage("collected")
    sha = staged.entries[0].sha256
    assert storage_checks.gc_blobs(grace=NOW).files == [sha]
    with pytest.raises(Conflict, match="send it again"):
        _record(staged)
    assert asked == [sha]
    assert not Blob.objects.filter(sha256=sha).exists()


@pytest.mark.parametrize("collection", ["running", "finished"])
def test_a_collection_started_after_the_ticket_makes_recording_ask(
    collection, released, people, asked
):
    staged = _stage(f"asked {collection}")
    if collection == "running":
        collection_epoch._start()
    else:
        storage_checks.gc_blobs()  # a full run that spares these young bytes
    _record(staged)
    assert asked == [staged.entries[0].sha256]


def test_a_killed_collection_makes_uploads_ask_until_a_later_one_finishes(released, people, asked):
    collection_epoch._start()  # killed after its mark: running stays set
    assert str(CollectionRecord.objects.get()) == "collection 1 (running)"
    first = _submit(people, released, "after the kill")
    assert sorted(asked) == sorted(first.bundle.entries.values_list("blob_id", flat=True))
    asked.clear()
    storage_checks.gc_blobs()
    _submit(people, released, "after the next collection")
    assert asked == []


def test_a_reference_to_stored_bytes_found_while_a_collection_ran_is_confirmed(
    released, people, asked
):
    """A file sent without bytes (the release's own) whose row was read while a collection
    ran: its bytes are asked for when recording."""
    collection_epoch._start()
    sha = next(iter(released.release.entries.values_list("blob_id", flat=True)))
    entry = released.release.entries.get(blob_id=sha)
    upload = services.Upload(
        manifest=[{"path": "same.txt", "size": entry.blob.size, "sha256": sha}]
    )
    staged = services.stage_bundle(upload=upload, readable_shas=[sha])
    assert staged.ticket == collection_epoch.Ticket(epoch=1, running=True)
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    storage_checks.ownerless_bundles().delete()
    _record(staged)
    assert asked == [sha]


# --- the record of collections ----------------------------------------------------------


def test_a_collection_that_fails_part_way_finishes_its_record(released, people, monkeypatch):
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    storage_checks.ownerless_bundles().delete()

    def storage_down(sha: str) -> bool:
        raise OSError(5, "storage down")

    monkeypatch.setattr(blobstore, "quarantine", storage_down)
    with pytest.raises(OSError):
        storage_checks.gc_blobs(grace=NOW)
    record = CollectionRecord.objects.get()
    assert (record.epoch, record.running, str(record)) == (1, False, "collection 1")


def _end_not_recorded(execute, sql, params, many, context):
    if sql.startswith("UPDATE") and "collectionrecord" in sql and "finished_at" in sql:
        raise OperationalError("server closed the connection unexpectedly")
    return execute(sql, params, many, context)


@pytest.mark.parametrize("body", ["succeeds", "fails"])
def test_a_collection_whose_end_cannot_be_recorded_leaves_uploads_asking(
    body, released, people, asked, monkeypatch
):
    if body == "fails":
        monkeypatch.setattr(storage_checks, "_settle_quarantine", storage_down_now)
    with connection.execute_wrapper(_end_not_recorded):
        with pytest.raises(OSError if body == "fails" else OperationalError):
            storage_checks.gc_blobs(grace=NOW)
    assert CollectionRecord.objects.get().running
    _submit(people, released, "after")
    assert len(asked) == 2


def storage_down_now(*args: object, **kwargs: object) -> None:
    raise OSError(5, "storage down")


def test_a_collection_cut_off_does_not_clear_the_mark_of_a_later_one(db):
    cut = collection_epoch._start()
    later = collection_epoch._start()  # started once the first lost its lock
    collection_epoch._finish(cut)
    assert CollectionRecord.objects.get().running
    collection_epoch._finish(later)
    assert not CollectionRecord.objects.get().running


@pytest.mark.django_db(transaction=True)
def test_collections_run_one_at_a_time(released, people):
    holding, done = threading.Event(), threading.Event()

    def first_collection() -> None:
        try:
            with storage_locks.collector_lock():
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    first = threading.Thread(target=first_collection)
    first.start()
    assert holding.wait(30)
    try:
        with pytest.raises(Unavailable, match="Another collection is running"):
            storage_checks.gc_blobs(grace=NOW)
    finally:
        done.set()
        first.join(30)
    assert not CollectionRecord.objects.exists()
    storage_checks.gc_blobs(grace=NOW)
    assert CollectionRecord.objects.get().epoch == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_collection_on_another_connection_between_puts_and_record_makes_the_upload_retry(
    released, people, asked, monkeypatch
):
    """Another process's collection, committed, while the submission's bytes wait to be
    recorded: they are gone, the submission is refused with 409 retry and records nothing."""
    stage = services.stage_bundle
    raced: list[bool] = []

    def stage_then_collect(**kwargs):
        staged = stage(**kwargs)
        if raced:
            return staged
        raced.append(True)

        def collect() -> None:
            try:
                storage_checks.gc_blobs(grace=NOW)
            finally:
                connection.close()

        collector = threading.Thread(target=collect)
        collector.start()
        collector.join(60)
        return staged

    monkeypatch.setattr(services.bundles, "stage_bundle", stage_then_collect)
    with pytest.raises(Conflict, match="send it again"):
        _submit(people, released, "raced")
    assert len(asked) == 2
    assert not Submission.objects.exists()
    asked.clear()
    _submit(people, released, "sent again")
    assert asked == [] and Submission.objects.count() == 1


def test_an_install_where_only_a_collection_ran_is_still_empty_for_a_restore(db):
    """The record describes this install's collections, not data: backups leave it out,
    and a new install where ``gc_blobs`` already ran still takes a restore."""
    from courses.backup.verify import existing_rows

    storage_checks.gc_blobs(grace=NOW)
    assert CollectionRecord.objects.get().epoch == 1
    assert existing_rows() == {}
